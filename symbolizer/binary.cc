#include "symbolizer/binary.h"

#include <lzma.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "symbolizer/debug_file.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/demangle.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/frame_cache.h"
#include "symbolizer/go_pclntab.h"

namespace ember {

namespace {

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


// Gathers function symbols from one or more symbol tables, then sorts,
// deduplicates and sizes them.
// Bounds the GOT slots read from one file's relocations (a workload's file).
constexpr size_t kMaxPltSlots = 1 << 20;

class SymbolCollector {
 public:
  explicit SymbolCollector(std::string* pool) : pool_(pool) {}

  // Adds every function symbol of `file`'s SHT_SYMTAB (or SHT_DYNSYM).
  // False if the file has no such table.
  bool add(const ElfFile& file, Elf64_Word type) {
    Elf* elf = file.elf();
    Elf_Scn* scn = nullptr;
    Elf_Scn* table = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr shdr;
      if (gelf_getshdr(scn, &shdr) && shdr.sh_type == type) table = scn;
    }
    if (!table) return false;
    GElf_Shdr shdr;
    gelf_getshdr(table, &shdr);
    Elf_Data* data = elf_getdata(table, nullptr);
    size_t count = shdr.sh_entsize ? shdr.sh_size / shdr.sh_entsize : 0;
    // Section end addresses bound zero-sized symbols: `_init` must not
    // swallow the .plt that follows it.
    struct SectionInfo {
      uint64_t end = UINT64_MAX;
      bool code = false;
    };
    std::unordered_map<size_t, SectionInfo> sections;
    for (size_t i = 0; data && i < count; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, int(i), &sym)) continue;
      int stype = GELF_ST_TYPE(sym.st_info);
      if (stype != STT_FUNC && stype != STT_GNU_IFUNC && stype != STT_NOTYPE) continue;
      if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (!name || !*name) continue;
      auto [sec, inserted] = sections.try_emplace(sym.st_shndx);
      if (inserted) {
        Elf_Scn* sc = elf_getscn(elf, sym.st_shndx);
        GElf_Shdr sh;
        if (sc && gelf_getshdr(sc, &sh)) {
          sec->second.end = sh.sh_addr + sh.sh_size;
          sec->second.code = (sh.sh_flags & SHF_EXECINSTR) != 0;
        }
      }
      // Untyped labels name code written in assembly (the dynamic loader's
      // _start and _dl_start_user), but only in code sections, and never
      // local labels or ARM/AArch64 mapping symbols ($x, $d).
      bool label = stype == STT_NOTYPE;
      if (label && (!sec->second.code || name[0] == '.' || name[0] == '$')) continue;
      pending_.push_back(Pending{Symbol{sym.st_value, sym.st_size, intern(name),
                                        uint8_t(GELF_ST_BIND(sym.st_info))},
                                 sec->second.end, label});
    }
    return true;
  }

  // Names the PLT stubs of `file` (x86-64) `sym@plt`, as objdump and perf
  // do. A stub has no symbol of its own, so a sample in one (a frameless
  // call through the PLT, caught mid-jump) would show as module+offset even
  // with every debug file present. Each stub jumps through a GOT slot
  // (`jmp *disp(%rip)`, possibly after endbr64 or with a bnd prefix), and the
  // dynamic relocation of that slot (JUMP_SLOT or GLOB_DAT) names the
  // function. Covers .plt (lazy binding), .plt.sec (IBT) and .plt.got. The
  // file is a workload's: every read is bounded by the section's data.
  void add_plt(const ElfFile& file) {
    Elf* elf = file.elf();
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh) || eh.e_machine != EM_X86_64) return;
    std::unordered_map<uint64_t, std::string> slots;  // GOT slot -> function
    std::unordered_map<uint64_t, uint64_t> ifunc_slots;  // GOT slot -> IFUNC resolver address
    // A crafted file can point many section headers at the same bytes: the
    // work is bounded by relocations read and stubs named, not per section.
    size_t relocs_left = 4 * kMaxPltSlots;
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr rel;
      if (!gelf_getshdr(scn, &rel) || rel.sh_type != SHT_RELA || rel.sh_entsize == 0) continue;
      Elf_Scn* symscn = elf_getscn(elf, rel.sh_link);
      GElf_Shdr symsh;
      if (!symscn || !gelf_getshdr(symscn, &symsh) || symsh.sh_type != SHT_DYNSYM) continue;
      Elf_Data* rdata = elf_getdata(scn, nullptr);
      Elf_Data* sdata = elf_getdata(symscn, nullptr);
      if (!rdata || !sdata) continue;
      size_t n = rdata->d_size / sizeof(Elf64_Rela);
      for (size_t i = 0; i < n && relocs_left > 0 && slots.size() < kMaxPltSlots; ++i, --relocs_left) {
        GElf_Rela r;
        if (!gelf_getrela(rdata, int(i), &r)) break;
        auto type = GELF_R_TYPE(r.r_info);
        if (type == R_X86_64_IRELATIVE) {  // a call to a local IFUNC (libc's memcpy)
          if (ifunc_slots.size() < kMaxPltSlots) ifunc_slots.emplace(r.r_offset, uint64_t(r.r_addend));
          continue;
        }
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
        GElf_Sym sym;
        if (!gelf_getsym(sdata, int(GELF_R_SYM(r.r_info)), &sym)) continue;
        const char* name = elf_strptr(elf, symsh.sh_link, sym.st_name);
        if (name && *name) slots.emplace(r.r_offset, name);
      }
    }
    // An IFUNC slot is named after the function whose resolver it runs.
    if (!ifunc_slots.empty()) {
      std::unordered_map<uint64_t, uint32_t> by_address;
      for (const auto& p : pending_) by_address.emplace(p.sym.start, p.sym.name);
      for (const auto& [slot, resolver] : ifunc_slots) {
        auto it = by_address.find(resolver);
        if (it != by_address.end()) slots.emplace(slot, std::string(pool_->c_str() + it->second));
      }
    }
    if (slots.empty()) return;
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) return;
    size_t stubs_left = kMaxPltSlots;
    std::unordered_set<std::string> seen;  // each PLT section once (the first, like a linker's)
    scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr && stubs_left > 0) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR)) continue;
      const char* sname = elf_strptr(elf, shstrndx, sh.sh_name);
      if (!sname || (std::strcmp(sname, ".plt") != 0 && std::strcmp(sname, ".plt.sec") != 0 &&
                     std::strcmp(sname, ".plt.got") != 0))
        continue;
      if (!seen.insert(sname).second) continue;
      Elf_Data* d = elf_getdata(scn, nullptr);
      if (!d || !d->d_buf) continue;
      const auto* bytes = static_cast<const uint8_t*>(d->d_buf);
      uint64_t entsize = sh.sh_entsize >= 8 && sh.sh_entsize <= 32 ? sh.sh_entsize : 16;
      for (uint64_t off = 0; off + entsize <= d->d_size && stubs_left > 0; off += entsize) {
        // The lazy-binding entry (.plt's first: push GOT[1]; jmp *GOT[2])
        // jumps to the dynamic linker's resolver.
        if (off == 0 && std::strcmp(sname, ".plt") == 0 && entsize >= 12 && bytes[0] == 0xff &&
            bytes[1] == 0x35) {
          pending_.push_back(Pending{Symbol{sh.sh_addr, entsize, intern("_dl_runtime_resolve@plt"),
                                            uint8_t(STB_LOCAL)},
                                     sh.sh_addr + sh.sh_size, false});
          --stubs_left;
          continue;
        }
        for (uint64_t i = off; i + 6 <= off + entsize; ++i) {
          if (bytes[i] != 0xff || bytes[i + 1] != 0x25) continue;
          int32_t disp;
          std::memcpy(&disp, bytes + i + 2, sizeof(disp));
          uint64_t slot = sh.sh_addr + i + 6 + uint64_t(int64_t(disp));
          auto it = slots.find(slot);
          if (it != slots.end()) {
            pending_.push_back(Pending{Symbol{sh.sh_addr + off, entsize, intern(it->second + "@plt"),
                                              uint8_t(STB_LOCAL)},
                                       sh.sh_addr + sh.sh_size, false});
            --stubs_left;
          }
          break;
        }
      }
    }
  }

  std::vector<Symbol> finish() {
    const std::string& pool = *pool_;
    auto name_at = [&pool](uint32_t off) { return std::string_view(pool.c_str() + off); };
    std::sort(pending_.begin(), pending_.end(), [&](const Pending& pa, const Pending& pb) {
      const Symbol& a = pa.sym;
      const Symbol& b = pb.sym;
      if (a.start != b.start) return a.start < b.start;
      if (pa.label != pb.label) return !pa.label;  // a typed function over a label
      if (binding_rank(a.binding) != binding_rank(b.binding))
        return binding_rank(a.binding) < binding_rank(b.binding);
      if ((a.size == 0) != (b.size == 0)) return a.size != 0;
      auto na = name_at(a.name), nb = name_at(b.name);
      if (na.size() != nb.size()) return na.size() < nb.size();
      return na < nb;
    });
    // Keep the preferred symbol per address.
    pending_.erase(std::unique(pending_.begin(), pending_.end(),
                               [](const Pending& a, const Pending& b) { return a.sym.start == b.sym.start; }),
                   pending_.end());
    std::vector<Symbol> out;
    out.reserve(pending_.size());
    for (size_t i = 0; i < pending_.size(); ++i) {
      Symbol sym = pending_[i].sym;
      if (sym.size == 0) {
        // Hand-written assembly often has no size: extend to the next symbol,
        // but never past the end of its section.
        uint64_t next = i + 1 < pending_.size() ? pending_[i + 1].sym.start : UINT64_MAX;
        uint64_t end = std::min(next, pending_[i].limit);
        sym.size = end > sym.start && end != UINT64_MAX ? end - sym.start : 1;
      }
      out.push_back(sym);
    }
    return out;
  }

 private:
  struct Pending {
    Symbol sym;
    uint64_t limit;
    bool label = false;  // STT_NOTYPE
  };
  uint32_t intern(std::string_view name) {
    auto it = interned_.find(name);
    if (it != interned_.end()) return it->second;
    uint32_t off = uint32_t(pool_->size());
    pool_->append(name);
    pool_->push_back('\0');
    // Keys point into the pool, which may reallocate: keep our own copy.
    keys_.emplace_back(name);
    interned_.emplace(keys_.back(), off);
    return off;
  }
  std::string* pool_;
  std::vector<Pending> pending_;
  std::deque<std::string> keys_;
  std::unordered_map<std::string_view, uint32_t> interned_;
};

bool has_section_type(const ElfFile& file, Elf64_Word type) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(file.elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) && shdr.sh_type == type) return true;
  }
  return false;
}

// The ELF image inside .gnu_debugdata (xz-compressed MiniDebugInfo).
Result<std::unique_ptr<ElfFile>> mini_debug_info(const ElfFile& file) {
  std::string_view xz;
  if (!file.section(".gnu_debugdata", &xz)) return Errorf("no .gnu_debugdata");
  lzma_stream strm = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&strm, UINT64_MAX, 0) != LZMA_OK) return Errorf("lzma init failed");
  std::vector<char> out(xz.size() * 4 + 4096);
  strm.next_in = reinterpret_cast<const uint8_t*>(xz.data());
  strm.avail_in = xz.size();
  lzma_ret rc;
  for (;;) {
    strm.next_out = reinterpret_cast<uint8_t*>(out.data()) + strm.total_out;
    strm.avail_out = out.size() - strm.total_out;
    rc = lzma_code(&strm, LZMA_FINISH);
    if (rc == LZMA_STREAM_END) break;
    if (rc != LZMA_OK && rc != LZMA_BUF_ERROR) break;
    if (strm.avail_out == 0) out.resize(out.size() * 2);
    else if (rc == LZMA_BUF_ERROR) break;
  }
  size_t n = strm.total_out;
  lzma_end(&strm);
  if (rc != LZMA_STREAM_END) return Errorf("%s: corrupt .gnu_debugdata", file.name().c_str());
  out.resize(n);
  return ElfFile::from_buffer(std::move(out), file.name() + ":.gnu_debugdata");
}

}  // namespace

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
  SymbolCollector c(&bin->pool_);
  if (c.add(file, SHT_SYMTAB)) bin->symbol_source_ = ".symtab";
  else if (c.add(file, SHT_DYNSYM)) bin->symbol_source_ = ".dynsym";
  c.add_plt(file);
  bin->symbols_ = c.finish();
  bin->symbols_.shrink_to_fit();
  return bin;
}

namespace {
// Go marks its binaries: the pclntab section (".data.rel.ro.gopclntab" in
// PIE) or the build-id note and build info, which stripping keeps. Only
// those are worth a pclntab parse.
bool looks_like_go(const ElfFile& f) {
  std::string_view v;
  return f.section(".gopclntab", &v) || f.section(".data.rel.ro.gopclntab", &v) ||
         f.section(".note.go.buildid", &v) || f.section(".go.buildinfo", &v);
}
}  // namespace

Result<std::shared_ptr<Binary>> Binary::load(std::unique_ptr<ElfFile> file, const LoadOptions& opts) {
  auto loaded = load(*file);
  if (!loaded) return loaded.error();
  std::shared_ptr<Binary> bin = std::move(*loaded);
  bin->frame_cache_max_ = opts.frame_cache_addresses;
  bin->go_binary_ = looks_like_go(*file);
  bool own_symtab = has_section_type(*file, SHT_SYMTAB);
  std::string_view dbg_info;
  bool own_dwarf = file->section(".debug_info", &dbg_info);

  std::unique_ptr<ElfFile> debug;
  if (!own_symtab || (opts.dwarf && !own_dwarf)) {
    DebugLookup found = find_debug_file(*file, file->name(), opts.debug);
    std::string path = found.path;
    if (found.fd.valid()) {
      auto d = ElfFile::from_fd(std::move(found.fd), path);
      if (d) debug = std::move(*d);
    } else if (opts.debuginfod) {
      // The agent's own cache directory: a path Ember made.
      path = opts.debuginfod->find_debuginfo(file->build_id(), opts.now_ns);
      if (!path.empty()) {
        auto d = ElfFile::open(path);
        if (d) debug = std::move(*d);
      }
    }
    bin->debug_deferred_ = path.empty() && found.deferred;
    if (debug) bin->debug_file_ = path;
  }
  if (!own_symtab) {
    // Stripped: the debug file's .symtab is the full table. Failing that,
    // MiniDebugInfo holds the local functions .dynsym lacks.
    if (debug && has_section_type(*debug, SHT_SYMTAB)) {
      bin->pool_.clear();
      SymbolCollector c(&bin->pool_);
      c.add(*debug, SHT_SYMTAB);
      c.add_plt(*file);
      bin->symbols_ = c.finish();
      bin->symbol_source_ = "debugfile:.symtab";
    } else if (opts.minidebuginfo) {
      auto mini = mini_debug_info(*file);
      if (mini) {
        bin->pool_.clear();
        SymbolCollector c(&bin->pool_);
        c.add(*file, SHT_DYNSYM);
        c.add(**mini, SHT_SYMTAB);
        c.add_plt(*file);
        bin->symbols_ = c.finish();
        bin->symbol_source_ = ".dynsym+.gnu_debugdata";
      }
    }
    bin->symbols_.shrink_to_fit();
  }
  std::string_view unused;
  bool dwarf_elsewhere = debug && debug->section(".debug_info", &unused);
  if (!own_dwarf && !dwarf_elsewhere && bin->go_binary_) {
    // A stripped Go binary: the runtime's own table names every function.
    auto go = GoPclntab::open(*file);
    if (go) {
      bin->go_ = std::move(*go);
      if (bin->symbols_.empty()) bin->symbol_source_ = ".gopclntab";
      bin->dwarf_source_ = ".gopclntab";
    }
  }
  if (opts.dwarf) {
    std::unique_ptr<ElfFile> holder;
    if (own_dwarf) {
      holder = std::move(file);
      bin->dwarf_source_ = ".debug_info";
    } else if (debug && debug->section(".debug_info", &unused)) {
      holder = std::move(debug);
      bin->dwarf_source_ = "debugfile:" + holder->name();
    }
    if (holder) {
      auto dw = DwarfInfo::open(std::move(holder));
      if (dw) bin->dwarf_ = std::move(*dw);
    }
  }
  return bin;
}

Binary::~Binary() = default;

bool Binary::source_frames(uint64_t vaddr, std::vector<SourceFrame>* out, bool demangle) const {
  if (dwarf_) return dwarf_->lookup(vaddr, out, demangle);
  return go_ && go_->lookup(vaddr, out);
}

namespace {

// "foo(int) [clone .cold]" -> "foo(int)": a function's cold part or a
// specialized clone is still that function.
std::string without_clone_suffix(std::string name) {
  for (;;) {
    size_t at = name.rfind(" [clone ");
    if (at == std::string::npos || name.back() != ']') return name;
    name.erase(at);
  }
}

}  // namespace

void Binary::describe(uint64_t vaddr, bool lines, bool demangle_names,
                      std::vector<SourceFrame>* out) const {
  int mode = (lines ? 1 : 0) | (demangle_names ? 2 : 0);
  if (frame_cache_max_ > 0) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_mode_ == mode && frame_cache_->get(vaddr, out)) return;
  }
  describe_uncached(vaddr, lines, demangle_names, out);
  if (frame_cache_max_ > 0) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_mode_ < 0) {
      cache_mode_ = mode;
      frame_cache_ = std::make_unique<FrameCache>(frame_cache_max_);
    }
    if (cache_mode_ == mode) {
      frame_cache_->put(vaddr, *out);
      cache_bytes_.store(frame_cache_->memory_bytes(), std::memory_order_relaxed);
    }
  }
}

size_t Binary::cached_addresses() const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  return frame_cache_ ? frame_cache_->size() : 0;
}

void Binary::describe_uncached(uint64_t vaddr, bool lines, bool demangle_names,
                               std::vector<SourceFrame>* out) const {
  out->clear();
  const Symbol* sym = lookup(vaddr);
  if (lines) {
    source_frames(vaddr, out, demangle_names);
  } else if (!sym && go_ && go_->lookup(vaddr, out)) {
    // Names only: the real function, as a symbol table would give it.
    SourceFrame outer = std::move(out->back());
    outer.file.clear();
    outer.line = 0;
    out->assign(1, std::move(outer));
  }
  if (out->empty() && !sym) return;
  if (out->empty()) out->push_back(SourceFrame{});
  SourceFrame& outer = out->back();
  // The symbol table names the real (outermost) function: DWARF sometimes
  // has only a short template name, a function's cold part or clone is only
  // told apart by its symbol, and where several symbols share the address
  // (glibc's __GI___qsort_r, qsort_r; a C++ constructor's C1/C2; functions
  // folded by ICF) the table's preferred one, global before weak before
  // local, is the public name, the one llvm-symbolizer prints too. Inlined
  // frames exist only in DWARF.
  if (sym) {
    std::string_view raw = name_of(*sym);
    bool dwarf_names_it = !outer.system_name.empty() && outer.system_name == raw;
    if (!dwarf_names_it) {
      if (demangle_names) outer.function = without_clone_suffix(demangle(raw));
      else outer.function.assign(raw);
      outer.system_name.assign(raw);
    }
  }
  if (outer.function.empty()) out->clear();
}

size_t Binary::memory_bytes() const {
  return sizeof(*this) + path_.capacity() + build_id_.capacity() +
         segments_.capacity() * sizeof(LoadSegment) + symbols_.capacity() * sizeof(Symbol) +
         pool_.capacity() + (dwarf_ ? dwarf_->memory_bytes() : 0) +
         (go_ ? go_->memory_bytes() : 0) +
         cache_bytes_.load(std::memory_order_relaxed);
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
