#include "symbolizer/elf_file.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

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

// Preference when several symbols share an address: global beats weak beats
// local, then the shortest name (usually the public one, e.g. "malloc" over
// "__libc_malloc"), then lexical order for determinism.
int binding_rank(uint8_t b) {
  switch (b) {
    case STB_GLOBAL: return 0;
    case STB_WEAK: return 1;
    default: return 2;
  }
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

Result<std::unique_ptr<ElfFile>> ElfFile::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Errorf("open %s: %s", path.c_str(), std::strerror(errno));
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

Result<std::shared_ptr<Binary>> Binary::load(const ElfFile& file) {
  Elf* elf = file.elf();
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(elf, &ehdr)) return Errorf("%s: no ELF header", file.name().c_str());

  std::shared_ptr<Binary> bin(new Binary());
  bin->path_ = file.name();
  bin->type_ = ehdr.e_type;
  bin->entry_ = ehdr.e_entry;
  bin->build_id_ = file.build_id();

  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return Errorf("%s: no program headers", file.name().c_str());
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf, int(i), &phdr) || phdr.p_type != PT_LOAD) continue;
    bin->segments_.push_back(LoadSegment{phdr.p_vaddr, phdr.p_memsz, phdr.p_offset, phdr.p_filesz,
                                         (phdr.p_flags & PF_X) != 0});
  }

  // Prefer .symtab (everything) over .dynsym (exports only, what survives
  // stripping).
  Elf_Scn* symtab = nullptr;
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    if (shdr.sh_type == SHT_SYMTAB) symtab = scn;
    else if (shdr.sh_type == SHT_DYNSYM) dynsym = scn;
  }
  Elf_Scn* table = symtab ? symtab : dynsym;
  if (table) {
    GElf_Shdr shdr;
    gelf_getshdr(table, &shdr);
    Elf_Data* data = elf_getdata(table, nullptr);
    size_t count = shdr.sh_entsize ? shdr.sh_size / shdr.sh_entsize : 0;
    std::unordered_map<std::string_view, uint32_t> interned;
    // Section end addresses bound zero-sized symbols: `_init` must not
    // swallow the .plt that follows it.
    std::unordered_map<size_t, uint64_t> section_end;
    struct Pending {
      Symbol sym;
      uint64_t limit;
    };
    std::vector<Pending> pending;
    for (size_t i = 0; data && i < count; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, int(i), &sym)) continue;
      int type = GELF_ST_TYPE(sym.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (!name || !*name) continue;
      std::string_view nv(name);
      auto it = interned.find(nv);
      uint32_t off;
      if (it == interned.end()) {
        off = uint32_t(bin->pool_.size());
        bin->pool_.append(nv);
        bin->pool_.push_back('\0');
        interned.emplace(nv, off);
      } else {
        off = it->second;
      }
      auto [sec, inserted] = section_end.try_emplace(sym.st_shndx, UINT64_MAX);
      if (inserted) {
        Elf_Scn* s = elf_getscn(elf, sym.st_shndx);
        GElf_Shdr sh;
        if (s && gelf_getshdr(s, &sh)) sec->second = sh.sh_addr + sh.sh_size;
      }
      pending.push_back(Pending{Symbol{sym.st_value, sym.st_size, off, uint8_t(GELF_ST_BIND(sym.st_info))},
                                sec->second});
    }
    const std::string& pool = bin->pool_;
    auto name_at = [&pool](uint32_t off) { return std::string_view(pool.c_str() + off); };
    std::sort(pending.begin(), pending.end(), [&](const Pending& pa, const Pending& pb) {
      const Symbol& a = pa.sym;
      const Symbol& b = pb.sym;
      if (a.start != b.start) return a.start < b.start;
      if (binding_rank(a.binding) != binding_rank(b.binding))
        return binding_rank(a.binding) < binding_rank(b.binding);
      if ((a.size == 0) != (b.size == 0)) return a.size != 0;
      auto na = name_at(a.name), nb = name_at(b.name);
      if (na.size() != nb.size()) return na.size() < nb.size();
      return na < nb;
    });
    // Keep the preferred symbol per address.
    pending.erase(std::unique(pending.begin(), pending.end(),
                              [](const Pending& a, const Pending& b) { return a.sym.start == b.sym.start; }),
                  pending.end());
    bin->symbols_.reserve(pending.size());
    for (size_t i = 0; i < pending.size(); ++i) {
      Symbol s = pending[i].sym;
      if (s.size == 0) {
        // Hand-written assembly often has no size: extend to the next symbol,
        // but never past the end of its section.
        uint64_t next = i + 1 < pending.size() ? pending[i + 1].sym.start : UINT64_MAX;
        uint64_t end = std::min(next, pending[i].limit);
        s.size = end > s.start && end != UINT64_MAX ? end - s.start : 1;
      }
      bin->symbols_.push_back(s);
    }
    bin->symbols_.shrink_to_fit();
  }
  return bin;
}

size_t Binary::memory_bytes() const {
  return sizeof(*this) + path_.capacity() + build_id_.capacity() +
         segments_.capacity() * sizeof(LoadSegment) + symbols_.capacity() * sizeof(Symbol) +
         pool_.capacity();
}

std::optional<uint64_t> Binary::file_offset_to_vaddr(uint64_t offset) const {
  // An executable segment first: text mappings are what we are asked about.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& s : segments_) {
      if (pass == 0 && !s.executable) continue;
      if (offset >= s.offset && offset < s.offset + std::max(s.filesz, s.memsz))
        return offset - s.offset + s.vaddr;
    }
  }
  return std::nullopt;
}

const Symbol* Binary::lookup(uint64_t vaddr) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                             [](uint64_t a, const Symbol& s) { return a < s.start; });
  if (it == symbols_.begin()) return nullptr;
  --it;
  // Nested symbols (a local label inside a function) can make the nearest
  // start a short one; walk back to any symbol that still covers vaddr.
  for (int back = 0; back < 4; ++back) {
    if (vaddr < it->start + it->size) return &*it;
    if (it == symbols_.begin()) break;
    --it;
  }
  return nullptr;
}

std::string_view Binary::name_of(const Symbol& s) const {
  return std::string_view(pool_.c_str() + s.name);
}

}  // namespace ember
