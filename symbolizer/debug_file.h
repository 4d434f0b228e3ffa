// Finds the separate debug file of a stripped binary, the way gdb and
// elfutils do:
//   1. <root><debug_dir>/.build-id/<xx>/<rest>.debug, whose build-id must match;
//   2. the .gnu_debuglink name next to the binary, in its .debug/ directory,
//      and under <root><debug_dir>/<binary's directory>, whose CRC32 must match.
// `root` prefixes every path so binaries of other mount namespaces are looked
// up in their own filesystem (e.g. "/proc/1234/root").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "symbolizer/elf_file.h"

namespace ember {

struct DebugLink {
  std::string name;
  uint32_t crc = 0;
};

// The .gnu_debuglink section of `elf`, if any.
std::optional<DebugLink> read_debuglink(const ElfFile& elf);

// CRC32 of a whole file as .gnu_debuglink computes it; nullopt if unreadable.
std::optional<uint32_t> file_crc32(const std::string& path);

// The path of `elf`'s debug file, or "" if none is found. `binary_path` is
// the binary's path inside `root` (e.g. "/usr/lib/x86_64-linux-gnu/libc.so.6").
std::string find_debug_file(const ElfFile& elf, const std::string& binary_path,
                            const std::string& root = "",
                            const std::string& debug_dir = "/usr/lib/debug");

}  // namespace ember
