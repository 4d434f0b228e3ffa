// ElfFile owns an open ELF (fd + libelf handle): sections and the build-id
// note, nothing parsed beyond that. What Ember keeps of an ELF once parsed is
// a Binary (symbolizer/binary.h).
#pragma once

#include <gelf.h>
#include <libelf.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ember {

class ElfFile {
 public:
  // Takes ownership of `fd`. `name` is used in error messages only.
  static Result<std::unique_ptr<ElfFile>> from_fd(UniqueFd fd, std::string name);
  static Result<std::unique_ptr<ElfFile>> open(const std::string& path);
  // Parses an ELF image in memory (e.g. the vDSO); `data` must outlive this.
  static Result<std::unique_ptr<ElfFile>> from_memory(const void* data, size_t size,
                                                      std::string name);
  // Same, owning the bytes (e.g. a decompressed MiniDebugInfo image).
  static Result<std::unique_ptr<ElfFile>> from_buffer(std::vector<char> data, std::string name);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  Elf* elf() const { return elf_; }
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }

  // The NT_GNU_BUILD_ID note as lowercase hex, or "" if there is none.
  std::string build_id() const;
  // A section's bytes, if it is present with contents (not NOBITS).
  bool section(const char* name, std::string_view* data, uint64_t* addr = nullptr) const;
  // Gives back the pages of the mapped file that this process holds, once
  // what was needed from them is copied out (libdw decompresses every
  // compressed DWARF section into the heap when it opens a file). The bytes
  // stay valid: a later read faults them in again from the page cache. On
  // this machine libc's debug file (4.1 MB, compressed sections) otherwise
  // stayed resident in the agent for good. Only for files opened by fd.
  void release_mapped_pages() const;

 private:
  ElfFile(UniqueFd fd, Elf* elf, std::string name)
      : fd_(std::move(fd)), elf_(elf), name_(std::move(name)) {}
  UniqueFd fd_;
  Elf* elf_ = nullptr;
  std::string name_;
  std::vector<char> owned_;  // backing bytes for from_buffer()
};

// A PT_LOAD program header.
struct LoadSegment {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  bool executable = false;
};

// Where separate debug files are looked for (symbolizer/debug_file.h).
struct DebugSearch {
  std::string root;  // the process's root ("" = the agent's own)
  std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
};

}  // namespace ember
