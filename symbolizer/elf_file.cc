#include "symbolizer/elf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ember {
namespace {

bool init_libelf() {
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  return ok;
}

std::string to_hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// Looks for NT_GNU_BUILD_ID in one note blob.
std::string find_build_id(Elf_Data* data) {
  size_t off = 0;
  GElf_Nhdr nhdr;
  size_t name_off, desc_off;
  while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
    if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
        std::memcmp(static_cast<const char*>(data->d_buf) + name_off, "GNU", 4) == 0) {
      return to_hex(static_cast<const uint8_t*>(data->d_buf) + desc_off, nhdr.n_descsz);
    }
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<ElfFile>> ElfFile::from_fd(UniqueFd fd, std::string name) {
  if (!init_libelf()) return Errorf("libelf initialization failed");
  Elf* elf = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (!elf) return Errorf("%s: %s", name.c_str(), elf_errmsg(-1));
  if (elf_kind(elf) != ELF_K_ELF) {
    elf_end(elf);
    return Errorf("%s: not an ELF file", name.c_str());
  }
  return std::unique_ptr<ElfFile>(new ElfFile(std::move(fd), elf, std::move(name)));
}

void ElfFile::release_mapped_pages() const {
  if (!fd_.valid()) return;  // memory we do not own (the vDSO) or a buffer
  size_t size = 0;
  char* raw = elf_rawfile(elf_, &size);
  if (!raw || size == 0) return;
  // MADV_PAGEOUT, not MADV_DONTNEED: libelf may have read the file into
  // malloc'd memory instead of mapping it (it falls back when mmap fails),
  // and DONTNEED would zero such pages; PAGEOUT only reclaims, keeping the
  // contents whatever the memory is. Linux 5.4+; older kernels say EINVAL
  // and the pages simply stay.
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (uintptr_t(raw) + page - 1) & ~(page - 1);
  const uintptr_t end = (uintptr_t(raw) + size) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT);
}

Result<std::unique_ptr<ElfFile>> ElfFile::open(const std::string& path) {
  // Paths come from workloads (debug files in a container's root): a FIFO or
  // a device there must not block or feed us forever.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return Errorf("open %s: %s", path.c_str(), std::strerror(errno));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return Errorf("%s: not a regular file", path.c_str());
  return from_fd(std::move(fd), path);
}

Result<std::unique_ptr<ElfFile>> ElfFile::from_memory(const void* data, size_t size,
                                                      std::string name) {
  if (!init_libelf()) return Errorf("libelf initialization failed");
  Elf* elf = elf_memory(static_cast<char*>(const_cast<void*>(data)), size);
  if (!elf) return Errorf("%s: %s", name.c_str(), elf_errmsg(-1));
  if (elf_kind(elf) != ELF_K_ELF) {
    elf_end(elf);
    return Errorf("%s: not an ELF image", name.c_str());
  }
  return std::unique_ptr<ElfFile>(new ElfFile(UniqueFd(), elf, std::move(name)));
}

Result<std::unique_ptr<ElfFile>> ElfFile::from_buffer(std::vector<char> data, std::string name) {
  if (!init_libelf()) return Errorf("libelf initialization failed");
  Elf* elf = elf_memory(data.data(), data.size());
  if (!elf) return Errorf("%s: %s", name.c_str(), elf_errmsg(-1));
  if (elf_kind(elf) != ELF_K_ELF) {
    elf_end(elf);
    return Errorf("%s: not an ELF image", name.c_str());
  }
  std::unique_ptr<ElfFile> f(new ElfFile(UniqueFd(), elf, std::move(name)));
  f->owned_ = std::move(data);  // the vector's buffer does not move with it
  return f;
}

bool ElfFile::section(const char* wanted, std::string_view* data, uint64_t* addr) const {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf_, &shstrndx) != 0) return false;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* name = elf_strptr(elf_, shstrndx, shdr.sh_name);
    if (!name || std::strcmp(name, wanted) != 0) continue;
    if (shdr.sh_type == SHT_NOBITS) return false;
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d || !d->d_buf) return false;
    *data = std::string_view(static_cast<const char*>(d->d_buf), d->d_size);
    if (addr) *addr = shdr.sh_addr;
    return true;
  }
  return false;
}

ElfFile::~ElfFile() {
  if (elf_) elf_end(elf_);
}

std::string ElfFile::build_id() const {
  // Sections first (always present in files); program headers for images
  // whose section headers were stripped.
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) continue;
    std::string id = find_build_id(data);
    if (!id.empty()) return id;
  }
  size_t phnum = 0;
  if (elf_getphdrnum(elf_, &phnum) != 0) return "";
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf_, int(i), &phdr) || phdr.p_type != PT_NOTE) continue;
    Elf_Data* data = elf_getdata_rawchunk(elf_, phdr.p_offset, phdr.p_filesz, ELF_T_NHDR);
    if (!data) continue;
    std::string id = find_build_id(data);
    if (!id.empty()) return id;
  }
  return "";
}

}  // namespace ember
