// Finds the separate debug file of a stripped binary, the way gdb and
// elfutils do, in each debug directory in turn (gdb's debug-file-directory):
//   1. <root><dir>/.build-id/<xx>/<rest>.debug, whose build-id must match;
//   2. the .gnu_debuglink name next to the binary, in its .debug/ directory,
//      and under <root><dir>/<binary's directory>, whose CRC32 must match.
// Paths are resolved inside `root` (common/in_root.h), so binaries of other
// mount namespaces are looked up in their own filesystem (a process's root,
// held open by its snapshot), and no symlink there leads to a host file.
//
// A process's root can be gone by the time its binaries are parsed (it
// exited and nothing held its root). Then only build-id lookups are made, in
// the agent's own filesystem: a build-id names the file's contents, so a
// match there is the right file wherever it lives. If that finds nothing the
// lookup is *deferred*, not failed: the caller must not remember "no debug
// file" for this binary, and looks again when a live process maps it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "symbolizer/elf_file.h"

namespace ember {

struct DebugLink {
  std::string name;
  uint32_t crc = 0;
};

// The .gnu_debuglink section of `elf`, if any.
std::optional<DebugLink> read_debuglink(const ElfFile& elf);

// CRC32 of a whole regular file as .gnu_debuglink computes it; nullopt if
// unreadable.
std::optional<uint32_t> file_crc32(int fd);
std::optional<uint32_t> file_crc32(const std::string& path);

struct DebugLookup {
  UniqueFd fd;            // the debug file, opened inside the root; invalid if none
  std::string path;       // its name: the root's path and the path inside it
  bool deferred = false;  // the root was gone: look again with a live root
};

// Is `root` ("" = ours) a directory we can still look into?
bool root_reachable(const std::string& root);

// The debug file of `elf`. `binary_path` is the binary's path inside the
// root (e.g. "/usr/lib/x86_64-linux-gnu/libc.so.6").
DebugLookup find_debug_file(const ElfFile& elf, const std::string& binary_path,
                            const DebugSearch& where);

}  // namespace ember
