#include "agent/export/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/files.h"
#include "common/log.h"

namespace ember {

bool WatchedFile::changed() {
  Id now;
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    now.dev = st.st_dev;
    now.ino = st.st_ino;
    now.size = uint64_t(st.st_size);
    now.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  bool differs = !(now == id_);
  id_ = now;
  return differs;
}

Result<SecretFile> SecretFile::open(const std::string& path) {
  SecretFile f(path);
  if (auto st = f.reload(); !st) return st.error();
  return f;
}

Status SecretFile::reload() {
  auto text = read_file(watch_.path());
  if (!text) return Errorf("cannot read %s: %s", watch_.path().c_str(), text.error().message.c_str());
  std::string v = std::move(*text);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ' || v.back() == '\t'))
    v.pop_back();
  for (char c : v)
    if (c == '\n' || c == '\r' || c == '\0')
      return Errorf("%s: the secret has a line break or NUL inside", watch_.path().c_str());
  value_ = std::move(v);
  return {};
}

const std::string& SecretFile::value() {
  if (watch_.changed()) {
    if (auto st = reload(); !st) {
      watch_.forget();  // try again next time
      // Keep sending the previous credential: a half-written rotation
      // should not stop uploads. The message names the path, never content.
      log::write_limited(log::Level::kWarn, ("secret:" + watch_.path()).c_str(), 60.0,
                         "%s; keeping the previous value", st.error().message.c_str());
    } else {
      EMBER_INFO("re-read %s (it changed)", watch_.path().c_str());
    }
  }
  return value_;
}

}  // namespace ember
