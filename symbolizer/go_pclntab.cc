#include "symbolizer/go_pclntab.h"

#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace ember {
namespace {

constexpr uint32_t kMagic116 = 0xFFFFFFFA;  // Go 1.16, 1.17
constexpr uint32_t kMagic118 = 0xFFFFFFF0;  // Go 1.18, 1.19
constexpr uint32_t kMagic120 = 0xFFFFFFF1;  // Go 1.20 and later

// Indexes from cmd/internal/objabi/funcdata.go (stable since Go 1.12).
constexpr uint32_t kPcdataInlTreeIndex = 2;
constexpr uint32_t kFuncdataInlTree = 3;

// Inline depth is bounded by the compiler's budget; this only stops a loop
// on a corrupt table.
constexpr int kMaxInlineDepth = 256;

// Word index of moduledata.gofunc: pcHeader, six slices (3 words each),
// findfunctab, minpc, maxpc, text..enoptrbss (10), [covctrs, ecovctrs since
// 1.20], end, gcdata, gcbss, types, etypes, rodata, gofunc.
constexpr uint64_t kModuledataText = 22;
constexpr uint64_t kModuledataFtabLen = 17;
constexpr uint64_t kModuledataFuncnametab = 1;
constexpr uint64_t kModuledataGofunc118 = 38;
constexpr uint64_t kModuledataGofunc120 = 40;

constexpr char kBuildInfoMagic[] = "\xff Go buildinf:";  // 14 bytes

uint32_t load32(const uint8_t* p, bool be) {
  if (be) return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
  return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0];
}

uint64_t load_word(const uint8_t* p, uint32_t size, bool be) {
  if (size == 4) return load32(p, be);
  uint64_t hi = load32(p, be), lo = load32(p + 4, be);
  return be ? (hi << 32 | lo) : (lo << 32 | hi);
}

// The R_*_RELATIVE type of a machine (the relocations a PIE loader applies
// by adding the load bias to the addend).
uint32_t relative_type(uint16_t machine) {
  switch (machine) {
    case EM_X86_64: return R_X86_64_RELATIVE;
    case EM_AARCH64: return R_AARCH64_RELATIVE;
    case EM_PPC64: return R_PPC64_RELATIVE;
    case EM_S390: return R_390_RELATIVE;
    case EM_RISCV: return 3;      // R_RISCV_RELATIVE
    case 258: return 3;           // EM_LOONGARCH, R_LARCH_RELATIVE
    case EM_386: return R_386_RELATIVE;
    case EM_ARM: return R_ARM_RELATIVE;
    case EM_MIPS: return R_MIPS_REL32;
    default: return ~0u;
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

struct GoPclntab::Func {
  uint64_t off = 0;     // file offset of the _func
  uint64_t fixed = 0;   // size of its fixed part (pcdata offsets follow)
  uint64_t entry = 0;   // address
  int32_t nameoff = 0;
  uint32_t pcfile = 0, pcln = 0, npcdata = 0, cu_offset = 0;
  uint8_t nfuncdata = 0;
  uint32_t pcsp = 0;
  uint8_t func_id = 0, flag = 0;
};

// Everything open() needs that the finished table does not keep.
class GoPclntabBuilder {
 public:
  GoPclntabBuilder(GoPclntab* t, Elf* elf) : t_(t), elf_(elf) {}

  Status build(const ElfFile& file);

 private:
  struct Reloc {
    uint64_t vaddr, addend;
  };
  struct Section {
    uint64_t addr = 0, offset = 0, size = 0;
    bool found = false;
  };

  void read_sections();
  void read_dynamic_relocations();
  bool reloc_at(uint64_t vaddr, uint64_t* addend) const;
  bool word_at_vaddr(uint64_t vaddr, uint64_t* v) const;  // relocation-aware, open time
  bool vaddr_to_offset(uint64_t vaddr, uint64_t* off) const;
  uint64_t offset_to_vaddr(uint64_t off) const;
  bool exec_contains(uint64_t vaddr) const;

  Status parse_header(uint64_t off, uint64_t size_limit);
  bool find_by_scan();
  bool validate_functab() const;
  void find_gofunc();
  bool try_moduledata(uint64_t md);
  void read_build_info();

  GoPclntab* t_;
  Elf* elf_;
  GElf_Ehdr ehdr_{};
  struct Load {
    uint64_t vaddr, memsz, offset, filesz;
    bool exec, write;
  };
  std::vector<Load> loads_;
  bool have_sections_ = false;
  Section pclntab_, text_, buildinfo_;
  std::vector<Reloc> relocs_;  // all RELATIVE relocations, sorted by vaddr
};

// ---------------------------------------------------------------------------
// open

Result<std::unique_ptr<GoPclntab>> GoPclntab::open(const ElfFile& file) {
  Elf* elf = file.elf();
  size_t raw_size = 0;
  char* raw = elf_rawfile(elf, &raw_size);
  if (!raw || raw_size < 64) return Errorf("%s: cannot read the ELF image", file.name().c_str());
  std::unique_ptr<GoPclntab> t(new GoPclntab());
  if (file.fd() >= 0) {
    void* m = ::mmap(nullptr, raw_size, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (m != MAP_FAILED) {
      t->image_ = static_cast<const uint8_t*>(m);
      t->image_size_ = raw_size;
      t->unmap_ = true;
    }
  }
  GoPclntabBuilder b(t.get(), elf);
  if (!t->image_) {
    // An in-memory image (or mmap refused): decide first whether it is Go
    // at all, from libelf's view, before copying it.
    t->image_ = reinterpret_cast<const uint8_t*>(raw);
    t->image_size_ = raw_size;
    Status probe = b.build(file);
    if (!probe) return probe.error();
    t->owned_.assign(raw, raw + raw_size);
    t->image_ = t->owned_.data();
    return t;
  }
  Status s = b.build(file);
  if (!s) return s.error();
  return t;
}

GoPclntab::~GoPclntab() {
  if (unmap_) ::munmap(const_cast<uint8_t*>(image_), image_size_);
}

size_t GoPclntab::memory_bytes() const {
  return sizeof(*this) + segments_.capacity() * sizeof(Segment) +
         relocs_.capacity() * sizeof(relocs_[0]) + owned_.capacity() + go_version_.capacity();
}

Status GoPclntabBuilder::build(const ElfFile& file) {
  const char* name = file.name().c_str();
  if (!gelf_getehdr(elf_, &ehdr_)) return Errorf("%s: no ELF header", name);
  t_->big_endian_ = ehdr_.e_ident[EI_DATA] == ELFDATA2MSB;
  const uint32_t elf_ptr = ehdr_.e_ident[EI_CLASS] == ELFCLASS64 ? 8 : 4;

  size_t phnum = 0;
  if (elf_getphdrnum(elf_, &phnum) == 0) {
    for (size_t i = 0; i < phnum; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf_, int(i), &ph) || ph.p_type != PT_LOAD) continue;
      if (ph.p_offset > t_->image_size_) continue;
      uint64_t filesz = std::min<uint64_t>(ph.p_filesz, t_->image_size_ - ph.p_offset);
      loads_.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, filesz, (ph.p_flags & PF_X) != 0,
                        (ph.p_flags & PF_W) != 0});
      t_->segments_.push_back({ph.p_vaddr, filesz, ph.p_offset});
    }
  }
  t_->segments_.shrink_to_fit();

  read_sections();
  if (have_sections_ && !pclntab_.found && !buildinfo_.found)
    return Errorf("%s: not a Go binary (no .gopclntab section)", name);

  read_dynamic_relocations();
  if (pclntab_.found) {
    Status s = parse_header(pclntab_.offset, pclntab_.size);
    if (!s) return Errorf("%s: %s", name, s.error().message.c_str());
    t_->pcln_vaddr_ = pclntab_.addr;
    t_->source_ = "section";
  } else if (find_by_scan()) {
    t_->source_ = "scan";
  } else {
    return Errorf("%s: not a Go binary (no pclntab found)", name);
  }
  if (t_->ptr_size_ != elf_ptr)
    return Errorf("%s: pclntab pointer size %u does not match the ELF class", name, t_->ptr_size_);

  // Entry addresses: Go 1.18+ stores offsets from textStart.
  if (t_->format_ != GoPclntab::Format::kGo116) {
    uint64_t field = t_->pcln_vaddr_ + 8 + 2 * uint64_t(t_->ptr_size_);
    uint64_t text = 0;
    if (!word_at_vaddr(field, &text)) return Errorf("%s: truncated pclntab header", name);
    if ((text == 0 || !exec_contains(text)) && text_.found) text = text_.addr;
    t_->text_start_ = text;
    if (text_.found && (text < text_.addr || text >= text_.addr + text_.size))
      return Errorf("%s: pclntab textStart 0x%llx is outside .text [0x%llx, 0x%llx)", name,
                    (unsigned long long)text, (unsigned long long)text_.addr,
                    (unsigned long long)(text_.addr + text_.size));
  }
  if (t_->format_ == GoPclntab::Format::kGo116 && ehdr_.e_type == ET_DYN) {
    t_->relocs_.clear();
    uint64_t lo = t_->pcln_vaddr_, hi = lo + t_->pcln_size_;
    for (const Reloc& r : relocs_)
      if (r.vaddr >= lo && r.vaddr < hi) t_->relocs_.emplace_back(r.vaddr, r.addend);
    t_->relocs_.shrink_to_fit();
  }
  if (!validate_functab()) return Errorf("%s: pclntab function table is inconsistent", name);

  if (t_->format_ != GoPclntab::Format::kGo116) find_gofunc();
  read_build_info();
  return Status();
}

void GoPclntabBuilder::read_sections() {
  size_t shnum = 0, shstrndx = 0;
  if (elf_getshdrnum(elf_, &shnum) != 0 || shnum == 0) return;
  if (elf_getshdrstrndx(elf_, &shstrndx) != 0) return;
  have_sections_ = true;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* n = elf_strptr(elf_, shstrndx, sh.sh_name);
    if (!n) continue;
    std::string_view name(n);
    Section* s = nullptr;
    if (name == ".gopclntab" || ends_with(name, ".gopclntab")) s = &pclntab_;
    else if (name == ".text") s = &text_;
    else if (name == ".go.buildinfo") s = &buildinfo_;
    if (!s || s->found || sh.sh_type == SHT_NOBITS) continue;
    if (sh.sh_offset > t_->image_size_ || sh.sh_size > t_->image_size_ - sh.sh_offset) continue;
    s->addr = sh.sh_addr;
    s->offset = sh.sh_offset;
    s->size = sh.sh_size;
    s->found = true;
  }
}

void GoPclntabBuilder::read_dynamic_relocations() {
  if (ehdr_.e_type != ET_DYN) return;  // executables carry no RELATIVE relocations
  size_t phnum = 0;
  if (elf_getphdrnum(elf_, &phnum) != 0) return;
  const bool is64 = ehdr_.e_ident[EI_CLASS] == ELFCLASS64;
  const uint32_t word = is64 ? 8 : 4;
  const bool be = t_->big_endian_;
  uint64_t rela = 0, relasz = 0, relaent = is64 ? 24 : 12;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf_, int(i), &ph) || ph.p_type != PT_DYNAMIC) continue;
    if (ph.p_offset > t_->image_size_) continue;
    uint64_t n = std::min<uint64_t>(ph.p_filesz, t_->image_size_ - ph.p_offset) / (2 * word);
    const uint8_t* d = t_->image_ + ph.p_offset;
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t tag = load_word(d + k * 2 * word, word, be);
      uint64_t val = load_word(d + k * 2 * word + word, word, be);
      if (tag == DT_NULL) break;
      if (tag == DT_RELA) rela = val;
      if (tag == DT_RELASZ) relasz = val;
      if (tag == DT_RELAENT && val) relaent = val;
    }
  }
  uint64_t off;
  if (!rela || !relasz || !vaddr_to_offset(rela, &off)) return;
  if (off > t_->image_size_) return;
  relasz = std::min<uint64_t>(relasz, t_->image_size_ - off);
  const uint32_t rel_type = relative_type(ehdr_.e_machine);
  for (uint64_t p = off; p + relaent <= off + relasz; p += relaent) {
    const uint8_t* r = t_->image_ + p;
    uint64_t r_offset = load_word(r, word, be);
    uint64_t r_info = load_word(r + word, word, be);
    uint64_t addend = load_word(r + 2 * word, word, be);
    uint32_t type = is64 ? uint32_t(r_info & 0xffffffff) : uint32_t(r_info & 0xff);
    uint64_t sym = is64 ? r_info >> 32 : r_info >> 8;
    if (sym != 0 || (rel_type != ~0u && type != rel_type)) continue;
    relocs_.push_back({r_offset, addend});
  }
  std::sort(relocs_.begin(), relocs_.end(),
            [](const Reloc& a, const Reloc& b) { return a.vaddr < b.vaddr; });
}

bool GoPclntabBuilder::reloc_at(uint64_t vaddr, uint64_t* addend) const {
  auto it = std::lower_bound(relocs_.begin(), relocs_.end(), vaddr,
                             [](const Reloc& r, uint64_t v) { return r.vaddr < v; });
  if (it == relocs_.end() || it->vaddr != vaddr) return false;
  *addend = it->addend;
  return true;
}

bool GoPclntabBuilder::word_at_vaddr(uint64_t vaddr, uint64_t* v) const {
  if (reloc_at(vaddr, v)) return true;
  const uint8_t* p = t_->at_vaddr(vaddr, t_->ptr_size_);
  if (!p) return false;
  *v = load_word(p, t_->ptr_size_, t_->big_endian_);
  return true;
}

bool GoPclntabBuilder::vaddr_to_offset(uint64_t vaddr, uint64_t* off) const {
  for (const Load& l : loads_) {
    if (vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz) {
      *off = l.offset + (vaddr - l.vaddr);
      return true;
    }
  }
  return false;
}

uint64_t GoPclntabBuilder::offset_to_vaddr(uint64_t off) const {
  for (const Load& l : loads_)
    if (off >= l.offset && off - l.offset < l.filesz) return l.vaddr + (off - l.offset);
  return 0;
}

bool GoPclntabBuilder::exec_contains(uint64_t vaddr) const {
  for (const Load& l : loads_)
    if (l.exec && vaddr >= l.vaddr && vaddr - l.vaddr < l.memsz) return true;
  return false;
}

// Reads and checks the header at file offset `off`; `limit` bounds the table.
Status GoPclntabBuilder::parse_header(uint64_t off, uint64_t limit) {
  GoPclntab& t = *t_;
  if (off > t.image_size_ || limit > t.image_size_ - off || limit < 64)
    return Errorf("pclntab out of bounds");
  const uint8_t* h = t.image_ + off;
  uint32_t magic = load32(h, t.big_endian_);
  if (magic == kMagic116) t.format_ = GoPclntab::Format::kGo116;
  else if (magic == kMagic118) t.format_ = GoPclntab::Format::kGo118;
  else if (magic == kMagic120) t.format_ = GoPclntab::Format::kGo120;
  else if (magic == 0xFFFFFFFB) return Errorf("pclntab of Go 1.2-1.15 (magic 0xfffffffb) is not supported");
  else return Errorf("unknown pclntab magic 0x%08x", magic);
  if (h[4] != 0 || h[5] != 0) return Errorf("bad pclntab header");
  if (h[6] != 1 && h[6] != 2 && h[6] != 4) return Errorf("bad pclntab pc quantum %u", h[6]);
  if (h[7] != 4 && h[7] != 8) return Errorf("bad pclntab pointer size %u", h[7]);
  t.quantum_ = h[6];
  t.ptr_size_ = h[7];
  const uint32_t ps = t.ptr_size_;
  auto word = [&](uint32_t i) { return load_word(h + 8 + uint64_t(i) * ps, ps, t.big_endian_); };
  t.nfunc_ = word(0);
  uint32_t first = t.format_ == GoPclntab::Format::kGo116 ? 2 : 3;  // 1.18 added textStart
  uint64_t offs[5];
  for (uint32_t i = 0; i < 5; ++i) {
    offs[i] = word(first + i);
    if (offs[i] >= limit) return Errorf("pclntab sub-table offset out of bounds");
  }
  // Each table ends where the next begins when the linker's order holds,
  // else at the end of the pclntab.
  auto size_of = [&](int i) {
    uint64_t end = limit;
    for (int k = 0; k < 5; ++k)
      if (offs[k] > offs[i] && offs[k] < end) end = offs[k];
    return end - offs[i];
  };
  t.pcln_off_ = off;
  t.pcln_size_ = limit;
  t.funcname_off_ = off + offs[0];
  t.funcname_size_ = size_of(0);
  t.cutab_off_ = off + offs[1];
  t.cutab_size_ = size_of(1);
  t.filetab_off_ = off + offs[2];
  t.filetab_size_ = size_of(2);
  t.pctab_off_ = off + offs[3];
  t.pctab_size_ = size_of(3);
  t.functab_off_ = off + offs[4];
  t.functab_size_ = limit - offs[4];
  uint64_t entry_size = t.format_ == GoPclntab::Format::kGo116 ? 2 * uint64_t(ps) : 8;
  if (t.nfunc_ == 0 || t.nfunc_ > t.functab_size_ / entry_size - 1)
    return Errorf("pclntab function count %llu out of bounds", (unsigned long long)t.nfunc_);
  return Status();
}

// No section headers: look for a header in the loaded, non-executable
// segments that parses and whose function table checks out.
bool GoPclntabBuilder::find_by_scan() {
  for (const Load& l : loads_) {
    const uint8_t* base = t_->image_ + l.offset;
    for (uint64_t p = 0; p + 64 <= l.filesz; p += 4) {
      uint32_t m = load32(base + p, t_->big_endian_);
      if (m != kMagic118 && m != kMagic120 && m != kMagic116) continue;
      if (base[p + 4] != 0 || base[p + 5] != 0) continue;
      if (!parse_header(l.offset + p, l.filesz - p)) continue;
      t_->pcln_vaddr_ = l.vaddr + p;
      if (t_->format_ != GoPclntab::Format::kGo116) {
        uint64_t text = 0;
        if (!word_at_vaddr(t_->pcln_vaddr_ + 8 + 2 * uint64_t(t_->ptr_size_), &text)) continue;
        t_->text_start_ = text;
      } else if (ehdr_.e_type == ET_DYN) {
        t_->relocs_.clear();
        for (const Reloc& r : relocs_)
          if (r.vaddr >= t_->pcln_vaddr_ && r.vaddr < t_->pcln_vaddr_ + t_->pcln_size_)
            t_->relocs_.emplace_back(r.vaddr, r.addend);
      }
      // The table's true end is unknown here; the segment end bounds it.
      if (validate_functab()) return true;
      t_->relocs_.clear();
    }
  }
  return false;
}

// The entries must be sorted, in executable memory, and each _func must
// point back at its own entry. Checks a sample (every entry for small tables).
bool GoPclntabBuilder::validate_functab() const {
  const GoPclntab& t = *t_;
  uint64_t n = t.nfunc_;
  uint64_t first, last;
  if (!t.func_entry(0, &first) || !t.func_entry(n, &last)) return false;
  if (first > last || !exec_contains(first) || !exec_contains(last - (last > first ? 1 : 0)))
    return false;
  uint64_t step = std::max<uint64_t>(1, n / 512);
  uint64_t prev = first;
  for (uint64_t i = 0; i < n; i += step) {
    GoPclntab::Func f;
    if (!t.func_at(i, &f)) return false;
    uint64_t e;
    if (!t.func_entry(i, &e) || e != f.entry || e < prev || e > last) return false;
    if (f.nameoff < 0 || uint64_t(f.nameoff) >= t.funcname_size_) return false;
    prev = e;
  }
  return true;
}

void GoPclntabBuilder::find_gofunc() {
  const uint32_t ps = t_->ptr_size_;
  // 1. moduledata found through its first word, which points at the header:
  //    as a relocation addend (PIE) or as the stored value.
  for (const Reloc& r : relocs_)
    if (r.addend == t_->pcln_vaddr_ && try_moduledata(r.vaddr)) return;
  //    It lives in .noptrdata: writable segments first.
  for (bool writable : {true, false}) {
    for (const Load& l : loads_) {
      if (l.exec || l.write != writable) continue;
      const uint8_t* base = t_->image_ + l.offset;
      for (uint64_t p = 0; p + ps <= l.filesz; p += ps) {
        if (load_word(base + p, ps, t_->big_endian_) != t_->pcln_vaddr_) continue;
        if (try_moduledata(l.vaddr + p)) return;
      }
    }
  }
  // 2. The go:func.* symbol of an unstripped binary.
  size_t shstrndx = 0;
  if (!have_sections_ || elf_getshdrstrndx(elf_, &shstrndx) != 0) return;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, int(i), &sym)) continue;
      const char* name = elf_strptr(elf_, sh.sh_link, sym.st_name);
      if (name && (std::strcmp(name, "go:func.*") == 0 || std::strcmp(name, "go.func.*") == 0)) {
        t_->gofunc_ = sym.st_value;
        return;
      }
    }
  }
}

bool GoPclntabBuilder::try_moduledata(uint64_t md) {
  const GoPclntab& t = *t_;
  const uint64_t ps = t.ptr_size_;
  uint64_t v;
  if (!word_at_vaddr(md + kModuledataFuncnametab * ps, &v) ||
      v != t.pcln_vaddr_ + (t.funcname_off_ - t.pcln_off_))
    return false;
  if (!word_at_vaddr(md + kModuledataFtabLen * ps, &v) || v != t.nfunc_ + 1) return false;
  if (!word_at_vaddr(md + kModuledataText * ps, &v) || v != t.text_start_) return false;
  uint64_t idx = t.format_ == GoPclntab::Format::kGo118 ? kModuledataGofunc118 : kModuledataGofunc120;
  uint64_t gofunc;
  if (!word_at_vaddr(md + idx * ps, &gofunc) || gofunc == 0) return false;
  uint64_t off;
  if (!vaddr_to_offset(gofunc, &off)) return false;
  t_->gofunc_ = gofunc;
  return true;
}

void GoPclntabBuilder::read_build_info() {
  // `off`: file offset of a candidate blob, `avail` bytes readable there.
  auto parse = [&](uint64_t off, uint64_t avail) -> bool {
    const uint8_t* p = t_->image_ + off;
    if (avail < 32 || std::memcmp(p, kBuildInfoMagic, 14) != 0) return false;
    const uint32_t ps = p[14];
    const uint8_t flags = p[15];
    std::string version;
    if (flags & 2) {  // Go 1.18+: varint-prefixed strings right after the header
      uint64_t len = 0, pos = 32;
      for (int shift = 0; pos < avail && shift < 35; shift += 7) {
        uint8_t b = p[pos++];
        len |= uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      if (len == 0 || len > 256 || pos + len > avail) return false;
      version.assign(reinterpret_cast<const char*>(p + pos), len);
    } else {  // before 1.18: a pointer to a Go string header {data, len}
      if (ps != t_->ptr_size_) return false;
      uint64_t blob = offset_to_vaddr(off), hdr = 0, data = 0, len = 0;
      if (!blob || !word_at_vaddr(blob + 16, &hdr) || !word_at_vaddr(hdr, &data) ||
          !word_at_vaddr(hdr + ps, &len) || len == 0 || len > 256)
        return false;
      const uint8_t* s = t_->at_vaddr(data, len);
      if (!s) return false;
      version.assign(reinterpret_cast<const char*>(s), len);
    }
    if (version.rfind("go", 0) != 0 && version.rfind("devel", 0) != 0) return false;
    t_->go_version_ = version;
    return true;
  };
  if (buildinfo_.found && parse(buildinfo_.offset, buildinfo_.size)) return;
  // Without the section: the blob is 16-byte aligned near the start of a
  // writable segment (debug/buildinfo reads the first 64 KiB).
  for (const Load& l : loads_) {
    if (!l.write) continue;
    uint64_t n = std::min<uint64_t>(l.filesz, 64 * 1024);
    for (uint64_t p = 0; p + 32 <= n; p += 16)
      if (t_->image_[l.offset + p] == 0xff && parse(l.offset + p, l.filesz - p)) return;
  }
}

// ---------------------------------------------------------------------------
// Readers

bool GoPclntab::u32_at(uint64_t off, uint32_t* v) const {
  if (off > image_size_ || image_size_ - off < 4) return false;
  *v = load32(image_ + off, big_endian_);
  return true;
}

bool GoPclntab::ptr_at(uint64_t off, uint64_t* v) const {
  if (off > image_size_ || image_size_ - off < ptr_size_) return false;
  *v = load_word(image_ + off, ptr_size_, big_endian_);
  return true;
}

const uint8_t* GoPclntab::at_vaddr(uint64_t vaddr, uint64_t len) const {
  for (const Segment& s : segments_) {
    if (vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) {
      if (s.filesz - (vaddr - s.vaddr) < len) return nullptr;
      return image_ + s.offset + (vaddr - s.vaddr);
    }
  }
  return nullptr;
}

bool GoPclntab::load_ptr(uint64_t vaddr, uint64_t* v) const {
  if (!relocs_.empty()) {
    auto it = std::lower_bound(relocs_.begin(), relocs_.end(), vaddr,
                               [](const std::pair<uint64_t, uint64_t>& r, uint64_t a) {
                                 return r.first < a;
                               });
    if (it != relocs_.end() && it->first == vaddr) {
      *v = it->second;
      return true;
    }
  }
  const uint8_t* p = at_vaddr(vaddr, ptr_size_);
  if (!p) return false;
  *v = load_word(p, ptr_size_, big_endian_);
  return true;
}

bool GoPclntab::func_entry(uint64_t i, uint64_t* entry) const {
  if (format_ == Format::kGo116) {
    uint64_t rel = (functab_off_ - pcln_off_) + i * 2 * uint64_t(ptr_size_);
    if (rel + ptr_size_ > pcln_size_) return false;
    if (relocs_.empty()) return ptr_at(pcln_off_ + rel, entry);
    return load_ptr(pcln_vaddr_ + rel, entry);
  }
  if (i * 8 + 4 > functab_size_) return false;
  uint32_t off;
  if (!u32_at(functab_off_ + i * 8, &off)) return false;
  *entry = text_start_ + off;
  return true;
}

bool GoPclntab::func_at(uint64_t i, Func* f) const {
  uint64_t funcoff;
  if (format_ == Format::kGo116) {
    uint64_t rel = (functab_off_ - pcln_off_) + i * 2 * uint64_t(ptr_size_) + ptr_size_;
    if (rel + ptr_size_ > pcln_size_ || !ptr_at(pcln_off_ + rel, &funcoff)) return false;
  } else {
    uint32_t v;
    if (i * 8 + 8 > functab_size_ || !u32_at(functab_off_ + i * 8 + 4, &v)) return false;
    funcoff = v;
  }
  // _func: entry (a pointer in 1.16, a u32 text offset since 1.18), then u32
  // fields nameoff, args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset,
  // [startLine since 1.20], then funcID, flag, pad, nfuncdata bytes.
  const uint64_t entry_size = format_ == Format::kGo116 ? ptr_size_ : 4;
  const uint64_t nwords = format_ == Format::kGo120 ? 9 : 8;
  f->fixed = entry_size + nwords * 4 + 4;
  if (funcoff >= functab_size_ || functab_size_ - funcoff < f->fixed) return false;
  f->off = functab_off_ + funcoff;
  if (format_ == Format::kGo116) {
    if (relocs_.empty()) {
      if (!ptr_at(f->off, &f->entry)) return false;
    } else if (!load_ptr(pcln_vaddr_ + (f->off - pcln_off_), &f->entry)) {
      return false;
    }
  } else {
    uint32_t e;
    if (!u32_at(f->off, &e)) return false;
    f->entry = text_start_ + e;
  }
  const uint8_t* w = image_ + f->off + entry_size;
  f->nameoff = int32_t(load32(w, big_endian_));
  f->pcfile = load32(w + 16, big_endian_);
  f->pcln = load32(w + 20, big_endian_);
  f->npcdata = load32(w + 24, big_endian_);
  f->cu_offset = load32(w + 28, big_endian_);
  f->nfuncdata = image_[f->off + f->fixed - 1];
  f->pcsp = load32(w + 12, big_endian_);
  f->func_id = image_[f->off + f->fixed - 4];
  f->flag = image_[f->off + f->fixed - 3];
  return true;
}

bool GoPclntab::pcvalue(const Func& f, uint32_t table_off, uint64_t target, int32_t* val) const {
  if (table_off == 0 || table_off >= pctab_size_) return false;
  const uint8_t* p = image_ + pctab_off_ + table_off;
  const uint8_t* end = image_ + pctab_off_ + pctab_size_;
  auto varint = [&](uint32_t* out) {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p >= end) return false;
      uint8_t b = *p++;
      v |= uint32_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;
  };
  uint64_t pc = f.entry;
  int32_t v = -1;
  // Each step: value delta (zig-zag), then pc delta in quanta. The value
  // holds from the previous pc up to (not including) the new one. A zero
  // value delta ends the table, except as the very first step.
  for (;;) {
    bool first = pc == f.entry;
    uint32_t uv, pcdelta;
    if (!varint(&uv)) return false;
    if (uv == 0 && !first) return false;  // past the end: not covered
    v += int32_t((uv >> 1) ^ (0u - (uv & 1)));
    if (!varint(&pcdelta)) return false;
    pc += uint64_t(pcdelta) * quantum_;
    if (target < pc) {
      *val = v;
      return true;
    }
  }
}

// The same encoding as pcvalue(), walked to its end instead of to one pc.
bool GoPclntab::pc_ranges(uint64_t entry, uint32_t table_off, uint64_t limit,
                          std::vector<PcRange>* out) const {
  out->clear();
  if (table_off == 0 || table_off >= pctab_size_) return false;
  const uint8_t* p = image_ + pctab_off_ + table_off;
  const uint8_t* end = image_ + pctab_off_ + pctab_size_;
  auto varint = [&](uint32_t* v) {
    *v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p >= end) return false;
      uint8_t b = *p++;
      *v |= uint32_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  uint64_t pc = entry;
  int32_t v = -1;
  for (bool first = true;; first = false) {
    uint32_t uv, pcdelta;
    if (!varint(&uv)) break;
    if (uv == 0 && !first) return true;  // the terminator
    v += int32_t((uv >> 1) ^ (0u - (uv & 1)));
    if (!varint(&pcdelta)) break;
    uint64_t next = pc + uint64_t(pcdelta) * quantum_;
    if (next > limit) break;
    // A step with no pc advance covers no instruction: nothing to report.
    if (next > pc) out->push_back(PcRange{pc, next, v});
    pc = next;
  }
  out->clear();
  return false;
}

bool GoPclntab::function(size_t i, Function* out) const {
  Func f;
  uint64_t next;
  if (i >= nfunc_ || !func_at(i, &f) || !func_entry(i + 1, &next) || next < f.entry) return false;
  out->entry = f.entry;
  out->end = next;
  out->name = name_at(f.nameoff);
  out->func_id = f.func_id;
  out->flag = f.flag;
  out->pcsp = f.pcsp;
  return true;
}

bool GoPclntab::sp_deltas(const Function& f, std::vector<PcRange>* out) const {
  return pc_ranges(f.entry, f.pcsp, f.end, out) && !out->empty();
}

bool GoPclntab::pcdata_off(const Func& f, uint32_t table, uint32_t* off) const {
  if (table >= f.npcdata) return false;
  return u32_at(f.off + f.fixed + uint64_t(table) * 4, off) && *off != 0;
}

bool GoPclntab::funcdata_addr(const Func& f, uint32_t index, uint64_t* addr) const {
  if (index >= f.nfuncdata) return false;
  uint64_t p = f.off + f.fixed + uint64_t(f.npcdata) * 4;
  if (format_ == Format::kGo116) {
    // Pointers, aligned to the pointer size in memory.
    uint64_t va = pcln_vaddr_ + (p - pcln_off_);
    if (ptr_size_ == 8 && (va & 4)) va += 4;
    va += uint64_t(index) * ptr_size_;
    if (va - pcln_vaddr_ + ptr_size_ > pcln_size_) return false;
    if (relocs_.empty()) {
      if (!ptr_at(pcln_off_ + (va - pcln_vaddr_), addr)) return false;
    } else if (!load_ptr(va, addr)) {
      return false;
    }
    return *addr != 0;
  }
  uint32_t off;
  if (!u32_at(p + uint64_t(index) * 4, &off) || off == ~0u || gofunc_ == 0) return false;
  *addr = gofunc_ + off;
  return true;
}

std::string GoPclntab::name_at(int64_t nameoff) const {
  if (nameoff < 0 || uint64_t(nameoff) >= funcname_size_) return "";
  const char* s = reinterpret_cast<const char*>(image_ + funcname_off_ + nameoff);
  size_t max = funcname_size_ - uint64_t(nameoff);
  return std::string(s, strnlen(s, max));
}

std::string GoPclntab::file_of(const Func& f, int32_t fileno) const {
  if (fileno < 0) return "";
  uint64_t idx = uint64_t(f.cu_offset) + uint64_t(fileno);
  uint32_t off;
  if (idx * 4 + 4 > cutab_size_ || !u32_at(cutab_off_ + idx * 4, &off)) return "";
  if (off == ~0u || off >= filetab_size_) return "";
  const char* s = reinterpret_cast<const char*>(image_ + filetab_off_ + off);
  return std::string(s, strnlen(s, filetab_size_ - off));
}

// ---------------------------------------------------------------------------
// lookup

bool GoPclntab::lookup(uint64_t vaddr, std::vector<SourceFrame>* out) const {
  out->clear();
  uint64_t first, end;
  if (!func_entry(0, &first) || !func_entry(nfunc_, &end)) return false;
  if (vaddr < first || vaddr >= end) return false;
  // The last function whose entry is <= vaddr.
  uint64_t lo = 0, hi = nfunc_;  // invariant: entry(lo) <= vaddr < entry(hi)
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    uint64_t e;
    if (!func_entry(mid, &e)) return false;
    if (e <= vaddr) lo = mid;
    else hi = mid;
  }
  Func f;
  if (!func_at(lo, &f)) return false;
  int32_t fileno, line;
  // Outside the function's line table: the alignment padding after it, or
  // code that is not Go's.
  if (!pcvalue(f, f.pcln, vaddr, &line)) return false;
  if (!pcvalue(f, f.pcfile, vaddr, &fileno)) fileno = -1;

  uint32_t inl_index_table;
  uint64_t inl_tree;
  if (pcdata_off(f, kPcdataInlTreeIndex, &inl_index_table) &&
      funcdata_addr(f, kFuncdataInlTree, &inl_tree)) {
    const bool old = format_ != Format::kGo120;  // 20-byte entries with parent/file/line
    const uint64_t entry_size = old ? 20 : 16;
    uint64_t pc = vaddr;
    int32_t ix;
    for (int depth = 0; depth < kMaxInlineDepth; ++depth) {
      if (!pcvalue(f, inl_index_table, pc, &ix) || ix < 0) break;
      const uint8_t* e = at_vaddr(inl_tree + uint64_t(ix) * entry_size, entry_size);
      if (!e) break;
      int32_t nameoff = int32_t(load32(e + (old ? 12 : 4), big_endian_));
      int32_t parent_pc = int32_t(load32(e + (old ? 16 : 8), big_endian_));
      std::string name = name_at(nameoff);
      out->push_back(SourceFrame{name, name, file_of(f, fileno), line < 0 ? 0 : line, true});
      // The caller's position is that of an instruction at the call site.
      pc = f.entry + uint64_t(int64_t(parent_pc));
      if (!pcvalue(f, f.pcln, pc, &line)) {
        line = old ? int32_t(load32(e + 8, big_endian_)) : 0;
        fileno = old ? int32_t(load32(e + 4, big_endian_)) : -1;
      } else if (!pcvalue(f, f.pcfile, pc, &fileno)) {
        fileno = -1;
      }
    }
  }
  std::string name = name_at(f.nameoff);
  out->push_back(SourceFrame{name, name, file_of(f, fileno), line < 0 ? 0 : line, false});
  return true;
}

}  // namespace ember
