// SecretFile: a credential kept in a file (bearer_token_file,
// basic_auth.password_file), re-read whenever the file changes so a rotated
// token applies without a restart. Kubernetes-style rotation (an atomic
// symlink swap) counts as a change: the file is stat()ed through links.
//
// WatchedFile is the change detector alone (for TLS files, which libcurl
// reads itself).
//
// Each instance belongs to one uploader thread. The value is never logged;
// errors name only the path.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace ember {

class WatchedFile {
 public:
  WatchedFile() = default;
  explicit WatchedFile(std::string path) : path_(std::move(path)) { changed(); }
  // True when the file's identity (device, inode, size, mtime) differs from
  // the previous call's. A missing file is an identity too.
  bool changed();
  // Makes the next changed() true (e.g. after a failed read, to retry).
  void forget() { id_.mtime_ns = -2; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  struct Id {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = -1;
    bool operator==(const Id&) const = default;
  } id_;
};

class SecretFile {
 public:
  // Reads the file once: it must exist and be readable at start.
  static Result<SecretFile> open(const std::string& path);

  // The current value, trailing whitespace trimmed. Re-reads the file if it
  // changed; if it cannot be read now, keeps the last good value.
  const std::string& value();
  const std::string& path() const { return watch_.path(); }

 private:
  explicit SecretFile(const std::string& path) : watch_(path) {}
  Status reload();

  WatchedFile watch_;
  std::string value_;
};

}  // namespace ember
