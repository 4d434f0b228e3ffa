#include "symbolizer/debug_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "common/in_root.h"
#include "common/unique_fd.h"

namespace ember {

std::optional<DebugLink> read_debuglink(const ElfFile& elf) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf.elf(), &shstrndx) != 0) return std::nullopt;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf.elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* name = elf_strptr(elf.elf(), shstrndx, shdr.sh_name);
    if (!name || std::strcmp(name, ".gnu_debuglink") != 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || data->d_size < 5) return std::nullopt;
    const char* p = static_cast<const char*>(data->d_buf);
    size_t n = strnlen(p, data->d_size);
    // The name is NUL-terminated and padded to 4 bytes; the CRC follows.
    size_t crc_off = (n + 4) & ~size_t(3);
    if (n == 0 || crc_off + 4 > data->d_size) return std::nullopt;
    DebugLink link;
    link.name.assign(p, n);
    // A file name, never a path: the workload wrote it, and "../" would walk
    // out of the directories the lookup joins it to.
    if (link.name.find('/') != std::string::npos || link.name == "." || link.name == "..")
      return std::nullopt;
    std::memcpy(&link.crc, p + crc_off, 4);
    return link;
  }
  return std::nullopt;
}

std::optional<uint32_t> file_crc32(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  uLong crc = crc32(0L, Z_NULL, 0);
  unsigned char buf[1 << 16];
  uint64_t off = 0;
  const uint64_t size = uint64_t(st.st_size);  // a file still growing is not read past it
  while (off < size) {
    ssize_t n = ::pread(fd, buf, size_t(std::min<uint64_t>(size - off, sizeof(buf))), off_t(off));
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    crc = crc32(crc, buf, uInt(n));
    off += uint64_t(n);
  }
  return uint32_t(crc);
}

std::optional<uint32_t> file_crc32(const std::string& path) {
  // A regular file only, opened without blocking: a FIFO or a device at a
  // workload's debug path would otherwise hang or never end the read.
  UniqueFd fd = open_in_root(std::string(), path);
  if (!fd.valid()) return std::nullopt;
  return file_crc32(fd.get());
}

namespace {

bool build_id_matches(const UniqueFd& fd, const std::string& name, const std::string& build_id) {
  UniqueFd dup(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) return false;
  auto f = ElfFile::from_fd(std::move(dup), name);
  return f.ok() && (*f)->build_id() == build_id;
}

}  // namespace

bool root_reachable(const std::string& root) {
  return root.empty() || ::access(root.c_str(), X_OK) == 0;
}

DebugLookup find_debug_file(const ElfFile& elf, const std::string& binary_path,
                            const DebugSearch& where) {
  DebugLookup out;
  const bool live = root_reachable(where.root);
  // A gone root: build-id lookups in our own filesystem only (see the header).
  const std::string root = live ? where.root : "";
  auto found = [&](UniqueFd fd, const std::string& inner) {
    out.fd = std::move(fd);
    out.path = root + inner;
    return std::move(out);
  };
  std::string build_id = elf.build_id();
  if (build_id.size() > 2) {
    for (const auto& dir : where.debug_dirs) {
      std::string p = dir + "/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
      UniqueFd fd = open_in_root(root, p);
      if (fd.valid() && build_id_matches(fd, root + p, build_id)) return found(std::move(fd), p);
    }
  }
  if (!live) {
    out.deferred = true;
    return out;
  }
  auto link = read_debuglink(elf);
  if (!link) return out;
  std::string dir = binary_path.substr(0, binary_path.rfind('/'));
  std::vector<std::string> candidates = {dir + "/" + link->name, dir + "/.debug/" + link->name};
  for (const auto& d : where.debug_dirs) candidates.push_back(d + dir + "/" + link->name);
  for (const std::string& candidate : candidates) {
    if (candidate == binary_path) continue;  // a debuglink naming itself
    UniqueFd fd = open_in_root(root, candidate);
    if (!fd.valid()) continue;
    auto crc = file_crc32(fd.get());
    if (crc && *crc == link->crc) return found(std::move(fd), candidate);
  }
  return out;
}

}  // namespace ember
