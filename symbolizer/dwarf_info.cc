#include "symbolizer/dwarf_info.h"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>
#include <cstring>

#include "symbolizer/demangle.h"

namespace ember {

// One compile unit, parsed.
struct DwarfInfo::Unit {
  // addr, line (never negative), file (index into files), end (of a
  // sequence: no line from here). The decoder's type, so its rows move in.
  using Row = LineTable::Row;
  struct Scope {
    uint32_t name;       // index into names
    uint32_t call_file;  // index into files (inlined calls)
    uint32_t call_line;
    uint32_t end;        // index after this scope's subtree (preorder)
    uint32_t range_first, range_count;
  };
  struct TopRange {
    uint64_t lo, hi;
    uint32_t scope;
  };
  std::vector<Row> rows;
  std::vector<std::string> files;
  std::vector<Scope> scopes;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<TopRange> top;  // subprogram ranges, sorted by lo
  std::vector<std::string> names;  // linkage name (mangled) or plain name
  std::vector<bool> name_is_linkage;
  std::vector<std::string> demangled;  // filled lazily per name
  std::unordered_map<std::string, uint32_t> file_ids, name_ids;
  // libdw hands out the same pointer for the same file entry or .debug_str
  // string, so most lookups stop here instead of hashing the text. Only
  // valid while parsing (the strings belong to libdw's handle).
  std::unordered_map<const char*, uint32_t> file_by_ptr, name_by_ptr;

  uint32_t file_id(const char* f) {
    auto [p, fresh] = file_by_ptr.try_emplace(f, 0);
    if (!fresh) return p->second;
    std::string s = f ? f : "";
    auto [it, inserted] = file_ids.try_emplace(s, uint32_t(files.size()));
    if (inserted) files.push_back(std::move(s));
    return p->second = it->second;
  }
  uint32_t name_id(const char* n, bool linkage) {
    auto [p, fresh] = name_by_ptr.try_emplace(n, 0);
    if (!fresh) return p->second;
    auto [it, inserted] = name_ids.try_emplace(n ? n : "", uint32_t(names.size()));
    if (inserted) {
      names.push_back(it->first);
      name_is_linkage.push_back(linkage);
    }
    return p->second = it->second;
  }
  bool contains(const Scope& s, uint64_t a) const {
    for (uint32_t i = 0; i < s.range_count; ++i) {
      const auto& r = ranges[s.range_first + i];
      if (a >= r.first && a < r.second) return true;
    }
    return false;
  }
  size_t bytes() const {
    size_t b = rows.capacity() * sizeof(Row) + scopes.capacity() * sizeof(Scope) +
               ranges.capacity() * 16 + top.capacity() * sizeof(TopRange);
    for (const auto& f : files) b += f.capacity() + 48;
    for (const auto& n : names) b += n.capacity() + 48;
    return b;
  }
};

namespace {

// The name a debugger shows: the linkage name when there is one (C++, Rust),
// else DW_AT_name, looking through abstract origins and specifications.
std::pair<const char*, bool> die_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* s = nullptr;
  if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
      dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
    s = dwarf_formstring(&attr);
  if (s) return {s, true};
  if (dwarf_attr_integrate(die, DW_AT_name, &attr)) s = dwarf_formstring(&attr);
  return {s ? s : "", false};
}

// The attributes of a subprogram or inlined-call DIE that scopes need,
// gathered in one pass over the DIE (dwarf_attr would rescan it for each).
struct ScopeAttrs {
  Dwarf_Attribute low_pc, high_pc, ranges, linkage, mips_linkage, name, origin, spec, call_file,
      call_line;
  bool has_low_pc = false, has_high_pc = false, has_ranges = false, has_linkage = false,
       has_mips_linkage = false, has_name = false, has_origin = false, has_spec = false,
       has_call_file = false, has_call_line = false;

  explicit ScopeAttrs(Dwarf_Die* die) { dwarf_getattrs(die, collect, this, 0); }

 private:
  static int collect(Dwarf_Attribute* a, void* arg) {
    auto* s = static_cast<ScopeAttrs*>(arg);
    switch (dwarf_whatattr(a)) {
      case DW_AT_low_pc: s->low_pc = *a, s->has_low_pc = true; break;
      case DW_AT_high_pc: s->high_pc = *a, s->has_high_pc = true; break;
      case DW_AT_ranges: s->ranges = *a, s->has_ranges = true; break;
      case DW_AT_linkage_name: s->linkage = *a, s->has_linkage = true; break;
      case DW_AT_MIPS_linkage_name: s->mips_linkage = *a, s->has_mips_linkage = true; break;
      case DW_AT_name: s->name = *a, s->has_name = true; break;
      case DW_AT_abstract_origin: s->origin = *a, s->has_origin = true; break;
      case DW_AT_specification: s->spec = *a, s->has_spec = true; break;
      case DW_AT_call_file: s->call_file = *a, s->has_call_file = true; break;
      case DW_AT_call_line: s->call_line = *a, s->has_call_line = true; break;
      default: break;
    }
    return DWARF_CB_OK;
  }
};

// Whether functions can be nested in a DIE with this tag. C has no member
// functions, so `c_unit` skips its (many) struct and union members.
bool is_scope_container(int tag, bool c_unit) {
  switch (tag) {
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
      return true;
    case DW_TAG_namespace:
    case DW_TAG_class_type:
    case DW_TAG_structure_type:
    case DW_TAG_union_type:
    case DW_TAG_enumeration_type:  // Rust puts an enum's methods inside it
    case DW_TAG_module:
      return !c_unit;
    default:
      return false;
  }
}

// Bounds-checked little-endian reader over one section's bytes. A read past
// the end yields zeros and clears ok(), so callers check once at the end of
// a step instead of after every field.
class ByteReader {
 public:
  ByteReader(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) {}
  bool ok() const { return ok_; }
  size_t left() const { return size_t(end_ - p_); }
  const uint8_t* pos() const { return p_; }
  const uint8_t* end() const { return end_; }
  void seek(const uint8_t* p) {
    if (p < p_ || p > end_) fail();
    else p_ = p;
  }
  uint64_t fixed(size_t n) {  // n <= 8
    if (left() < n) return fail();
    uint64_t v = 0;
    std::memcpy(&v, p_, n);
    p_ += n;
    return v;
  }
  uint8_t u8() { return uint8_t(fixed(1)); }
  uint64_t uleb() {
    uint64_t v = 0;
    for (unsigned shift = 0; p_ < end_; shift += 7) {
      uint8_t b = *p_++;
      if (shift < 64) v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail();
  }
  int64_t sleb() {
    uint64_t v = 0;
    unsigned shift = 0;
    for (; p_ < end_;) {
      uint8_t b = *p_++;
      if (shift < 64) v |= uint64_t(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) {
        if (shift < 64 && (b & 0x40)) v |= ~uint64_t(0) << shift;
        return int64_t(v);
      }
    }
    return int64_t(fail());
  }
  const char* cstr() {
    const void* nul = std::memchr(p_, 0, left());
    if (!nul) {
      fail();
      return "";
    }
    const char* s = reinterpret_cast<const char*>(p_);
    p_ = static_cast<const uint8_t*>(nul) + 1;
    return s;
  }
  void skip(uint64_t n) {
    if (left() < n) fail();
    else p_ += n;
  }

 private:
  uint64_t fail() {
    ok_ = false;
    p_ = end_;
    return 0;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

// The NUL-terminated string at `off` in a string section, or null.
const char* string_at(std::string_view sec, uint64_t off) {
  if (off >= sec.size() || !std::memchr(sec.data() + off, 0, sec.size() - off)) return nullptr;
  return sec.data() + off;
}

// A section's data by name, unless it is still compressed.
bool raw_section(Elf* elf, const char* wanted, std::string_view* out) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return false;
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (!name || std::strcmp(name, wanted) != 0) continue;
    if (shdr.sh_type == SHT_NOBITS || (shdr.sh_flags & SHF_COMPRESSED)) return false;
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d || !d->d_buf) return false;
    *out = std::string_view(static_cast<const char*>(d->d_buf), d->d_size);
    return true;
  }
  return false;
}

}  // namespace

bool LineSections::from(const ElfFile& file, LineSections* out) {
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(file.elf(), &ehdr) || ehdr.e_ident[EI_DATA] != ELFDATA2LSB ||
      ehdr.e_type == ET_REL)
    return false;
  *out = LineSections{};
  if (!raw_section(file.elf(), ".debug_line", &out->line)) return false;
  raw_section(file.elf(), ".debug_line_str", &out->line_str);
  raw_section(file.elf(), ".debug_str", &out->str);
  return true;
}

bool LineTable::decode(const LineSections& sec, uint64_t offset, const char* comp_dir) {
  files.clear();
  rows.clear();
  if (offset >= sec.line.size()) return false;
  const auto* base = reinterpret_cast<const uint8_t*>(sec.line.data());
  ByteReader in(base + offset, base + sec.line.size());
  uint64_t length = in.fixed(4);
  size_t offset_size = 4;
  if (length == 0xffffffff) {
    length = in.fixed(8);
    offset_size = 8;
  } else if (length >= 0xfffffff0) {
    return false;
  }
  if (!in.ok() || length > in.left()) return false;
  ByteReader h(in.pos(), in.pos() + length);
  unsigned version = unsigned(h.fixed(2));
  if (version < 2 || version > 5) return false;
  if (version >= 5) {
    h.u8();                       // address size: DW_LNE_set_address says its own
    if (h.u8() != 0) return false;  // segment selectors
  }
  uint64_t header_length = h.fixed(offset_size);
  if (!h.ok() || header_length > h.left()) return false;
  const uint8_t* program = h.pos() + header_length;
  unsigned min_inst = h.u8();
  unsigned max_ops = version >= 4 ? h.u8() : 1;
  bool default_is_stmt = h.u8() != 0;
  (void)default_is_stmt;  // rows carry no is_stmt: lookups use every row
  int line_base = int8_t(h.u8());
  unsigned line_range = h.u8();
  unsigned opcode_base = h.u8();
  if (!h.ok() || max_ops == 0 || line_range == 0 || opcode_base == 0) return false;
  uint8_t arg_count[256] = {};
  for (unsigned i = 1; i < opcode_base; ++i) arg_count[i] = h.u8();

  // Directories, then files named "dir/file" as libdw names them: absolute
  // names as they are, relative ones under their directory when it is known.
  std::vector<const char*> dirs;
  auto add_file = [&](const char* name, uint64_t dir) {
    if (name[0] == '/') {
      files.emplace_back(name);
      return true;
    }
    if (dir >= dirs.size()) return false;
    std::string full;
    if (dirs[dir]) {
      full = dirs[dir];
      full += '/';
    }
    full += name;
    files.push_back(std::move(full));
    return true;
  };
  if (version < 5) {
    dirs.push_back(comp_dir);
    for (;;) {
      const char* d = h.cstr();
      if (!h.ok()) return false;
      if (!*d) break;
      dirs.push_back(d);
    }
    files.emplace_back("???");  // file numbers start at 1
    for (;;) {
      const char* f = h.cstr();
      if (!h.ok()) return false;
      if (!*f) break;
      uint64_t dir = h.uleb();
      h.uleb();  // modification time
      h.uleb();  // size
      if (!h.ok() || !add_file(f, dir)) return false;
    }
  } else {
    // DWARF 5: each table is described by (content type, form) pairs.
    auto read_table = [&](bool is_files) -> bool {
      uint8_t nformats = h.u8();
      std::pair<uint64_t, uint64_t> formats[16];
      if (nformats > 16) return false;
      for (unsigned i = 0; i < nformats; ++i) formats[i] = {h.uleb(), h.uleb()};
      uint64_t count = h.uleb();
      if (!h.ok() || count > h.left()) return false;
      for (uint64_t n = 0; n < count; ++n) {
        const char* path = nullptr;
        uint64_t dir = 0;
        for (unsigned i = 0; i < nformats; ++i) {
          auto [type, form] = formats[i];
          uint64_t v = 0;
          const char* s = nullptr;
          switch (form) {
            case DW_FORM_string: s = h.cstr(); break;
            case DW_FORM_line_strp: s = string_at(sec.line_str, h.fixed(offset_size)); break;
            case DW_FORM_strp: s = string_at(sec.str, h.fixed(offset_size)); break;
            case DW_FORM_udata: v = h.uleb(); break;
            case DW_FORM_data1: v = h.fixed(1); break;
            case DW_FORM_data2: v = h.fixed(2); break;
            case DW_FORM_data4: v = h.fixed(4); break;
            case DW_FORM_data8: v = h.fixed(8); break;
            case DW_FORM_data16: h.skip(16); break;
            case DW_FORM_block: h.skip(h.uleb()); break;
            default: return false;  // e.g. DW_FORM_strx: needs the unit's string offsets
          }
          if (type == DW_LNCT_path) {
            if (!s) return false;
            path = s;
          } else if (type == DW_LNCT_directory_index) {
            if (s) return false;
            dir = v;
          }
        }
        if (!h.ok() || !path) return false;
        if (!is_files) dirs.push_back(path);
        else if (!add_file(path, dir)) return false;
      }
      return h.ok();
    };
    if (!read_table(false) || !read_table(true)) return false;
  }

  // The line-number program: a state machine emitting one row per
  // DW_LNS_copy, special opcode or end of sequence. Compilers spend about
  // four bytes of program per row: reserve that, to grow once at most.
  ByteReader p(program, h.end());
  rows.reserve(p.left() / 4 + 16);
  uint64_t addr = 0;
  unsigned op_index = 0;
  uint32_t file = 1;
  int line = 1;
  auto reset = [&] {
    addr = 0;
    op_index = 0;
    file = 1;
    line = 1;
  };
  auto advance = [&](uint64_t ops) {
    addr += min_inst * ((op_index + ops) / max_ops);
    op_index = unsigned((op_index + ops) % max_ops);
  };
  while (p.left() > 0) {
    uint8_t op = p.u8();
    if (op >= opcode_base) {
      unsigned adj = op - opcode_base;
      advance(adj / line_range);
      line += line_base + int(adj % line_range);
      rows.push_back(Row{addr, line, file, false});
      continue;
    }
    switch (op) {
      case 0: {  // extended opcode
        uint64_t len = p.uleb();
        if (!p.ok() || len == 0 || len > p.left()) return false;
        const uint8_t* next = p.pos() + len;
        switch (p.u8()) {
          case DW_LNE_end_sequence:
            rows.push_back(Row{addr, line, file, true});
            reset();
            break;
          case DW_LNE_set_address:
            if (len - 1 > 8) return false;
            addr = p.fixed(len - 1);
            op_index = 0;
            break;
          case DW_LNE_define_file: {
            const char* f = p.cstr();
            uint64_t dir = p.uleb();
            if (!p.ok() || !add_file(f, dir)) return false;
            break;
          }
          default:  // DW_LNE_set_discriminator and vendor extensions
            break;
        }
        p.seek(next);
        break;
      }
      case DW_LNS_copy: rows.push_back(Row{addr, line, file, false}); break;
      case DW_LNS_advance_pc: advance(p.uleb()); break;
      case DW_LNS_advance_line: line += int(p.sleb()); break;
      case DW_LNS_set_file: file = uint32_t(p.uleb()); break;
      case DW_LNS_const_add_pc: advance((255 - opcode_base) / line_range); break;
      case DW_LNS_fixed_advance_pc:
        addr += p.fixed(2);
        op_index = 0;
        break;
      default:  // column, is_stmt, basic block, prologue, epilogue, isa, unknown
        for (unsigned i = 0; i < arg_count[op]; ++i) p.uleb();
        break;
    }
    if (!p.ok()) return false;
  }
  return true;
}

Result<std::unique_ptr<DwarfInfo>> DwarfInfo::open(std::unique_ptr<ElfFile> elf) {
  Dwarf* dw = dwarf_begin_elf(elf->elf(), DWARF_C_READ, nullptr);
  if (!dw) return Errorf("%s: no DWARF: %s", elf->name().c_str(), dwarf_errmsg(-1));
  return std::unique_ptr<DwarfInfo>(new DwarfInfo(std::move(elf), dw));
}

DwarfInfo::DwarfInfo(std::unique_ptr<ElfFile> elf, Dwarf* dw) : elf_(std::move(elf)), dw_(dw) {
  // After dwarf_begin_elf: libdw has decompressed what it will read.
  has_line_sections_ = LineSections::from(*elf_, &line_sections_);
  elf_->release_mapped_pages();
}

DwarfInfo::~DwarfInfo() {
  units_.clear();
  if (dw_) dwarf_end(dw_);
}

size_t DwarfInfo::units_parsed() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mu_));
  return units_.size();
}

DwarfInfo::Unit* DwarfInfo::unit_for(uint64_t vaddr) {
  if (!ranges_built_) {
    ranges_built_ = true;
    // Each compile unit's address ranges, straight from its DIE: cheap, and
    // unlike .debug_aranges always present.
    Dwarf_Off off = 0, next = 0;
    size_t hsize = 0;
    while (dwarf_nextcu(dw_, off, &next, &hsize, nullptr, nullptr, nullptr) == 0) {
      Dwarf_Die cu;
      if (dwarf_offdie(dw_, off + hsize, &cu) && dwarf_tag(&cu) == DW_TAG_compile_unit) {
        Dwarf_Addr base, lo, hi;
        ptrdiff_t it = 0;
        while ((it = dwarf_ranges(&cu, it, &base, &lo, &hi)) > 0)
          if (hi > lo) unit_ranges_.push_back(UnitRange{lo, hi, off + hsize});
      }
      off = next;
    }
    std::sort(unit_ranges_.begin(), unit_ranges_.end(),
              [](const UnitRange& a, const UnitRange& b) { return a.lo < b.lo; });
  }
  auto it = std::upper_bound(unit_ranges_.begin(), unit_ranges_.end(), vaddr,
                             [](uint64_t v, const UnitRange& r) { return v < r.lo; });
  // Ranges of different units do not overlap in sane binaries; look back a
  // few in case one range is nested in a wide one.
  for (int back = 0; back < 4 && it != unit_ranges_.begin(); ++back) {
    --it;
    if (vaddr >= it->lo && vaddr < it->hi) {
      auto u = units_.find(it->cu_offset);
      if (u != units_.end()) return u->second.get();
      return parse_unit(it->cu_offset);
    }
  }
  return nullptr;
}

DwarfInfo::Unit* DwarfInfo::parse_unit(uint64_t cu_offset) {
  auto unit = std::make_unique<Unit>();
  Dwarf_Die cu;
  if (!dwarf_offdie(dw_, cu_offset, &cu)) return nullptr;
  int lang = dwarf_srclang(&cu);
  bool c_unit = lang == DW_LANG_C89 || lang == DW_LANG_C || lang == DW_LANG_C99 ||
                lang == DW_LANG_C11 || lang == 0x2c /* DW_LANG_C17 */;

  // By address; at equal addresses a sequence's end comes first so the
  // row starting the next sequence wins. Otherwise keep table order: the
  // last row at an address is the one debuggers report.
  auto row_less = [](const Unit::Row& a, const Unit::Row& b) {
    return a.addr != b.addr ? a.addr < b.addr : (a.end && !b.end);
  };

  // Line table: Ember's decoder when the sections allow, else libdw's.
  LineTable table;
  bool own_table = false;
  std::vector<uint32_t> table_files;  // the table's file index -> unit file id
  Dwarf_Attribute attr;
  Dwarf_Word stmt_list = 0;
  if (has_line_sections_ && dwarf_attr(&cu, DW_AT_stmt_list, &attr) &&
      dwarf_formudata(&attr, &stmt_list) == 0) {
    const char* comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr));
    own_table = table.decode(line_sections_, stmt_list, comp_dir);
  }
  Dwarf_Files* files = nullptr;
  if (own_table) {
    table_files.reserve(table.files.size());
    for (const auto& f : table.files) table_files.push_back(unit->file_id(f.c_str()));
    uint32_t no_file = unit->file_id(nullptr);
    auto& rows = unit->rows;
    rows = std::move(table.rows);
    for (auto& r : rows) {
      r.line = std::max(r.line, 0);
      r.file = r.file < table_files.size() ? table_files[r.file] : no_file;
    }
    if (!std::is_sorted(rows.begin(), rows.end(), row_less)) {
      // Each sequence is in address order already (DWARF requires it), so
      // ordering whole sequences by their start is usually enough, and much
      // cheaper than sorting rows.
      struct Run {
        uint64_t start;
        size_t first, count;
      };
      std::vector<Run> runs;
      for (size_t i = 0; i < rows.size();) {
        size_t j = i;
        while (j < rows.size() && !rows[j].end) ++j;
        if (j < rows.size()) ++j;  // the sequence's end row
        runs.push_back(Run{rows[i].addr, i, j - i});
        i = j;
      }
      std::stable_sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.start < b.start; });
      std::vector<Unit::Row> by_run;
      by_run.reserve(rows.size());
      for (const Run& r : runs)
        by_run.insert(by_run.end(), rows.begin() + ptrdiff_t(r.first), rows.begin() + ptrdiff_t(r.first + r.count));
      if (std::is_sorted(by_run.begin(), by_run.end(), row_less)) rows.swap(by_run);
      else std::stable_sort(rows.begin(), rows.end(), row_less);  // overlapping sequences
    }
    // As libdw does: nothing past the unit's highest row has a line, even
    // if the compiler forgot the end of a sequence there.
    if (!rows.empty()) rows.back().end = true;
  } else {
    Dwarf_Lines* lines = nullptr;
    size_t nlines = 0;
    if (dwarf_getsrclines(&cu, &lines, &nlines) == 0) {
      unit->rows.reserve(nlines);
      for (size_t i = 0; i < nlines; ++i) {
        Dwarf_Line* l = dwarf_onesrcline(lines, i);
        Dwarf_Addr addr;
        int lineno = 0;
        bool end = false;
        if (!l || dwarf_lineaddr(l, &addr) != 0) continue;
        dwarf_lineno(l, &lineno);
        dwarf_lineendsequence(l, &end);
        unit->rows.push_back(Unit::Row{addr, std::max(lineno, 0),
                                       unit->file_id(dwarf_linesrc(l, nullptr, nullptr)), end});
      }
      // libdw returns rows in this order already: check before sorting.
      if (!std::is_sorted(unit->rows.begin(), unit->rows.end(), row_less))
        std::stable_sort(unit->rows.begin(), unit->rows.end(), row_less);
    }
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(&cu, &files, &nfiles) != 0) files = nullptr;
  }

  // Scopes: subprograms with code, and the calls inlined into them, in
  // preorder so a scope's subtree is the run [index + 1, end).
  struct Frame {
    Dwarf_Die die;
    int scope;  // index of the scope this DIE opened, -1 if none
  };
  std::vector<Frame> stack;
  // die_name() of the DIEs that inlined calls and out-of-line instances
  // point at (DW_AT_abstract_origin or DW_AT_specification), as (linkage
  // name, plain name), either null: one inline function is inlined in many
  // places, so its name is looked up once per unit.
  std::unordered_map<Dwarf_Off, std::pair<const char*, const char*>> origin_names;
  auto origin_name = [&](Dwarf_Attribute* ref) -> std::pair<const char*, const char*> {
    Dwarf_Die target;
    if (!dwarf_formref_die(ref, &target)) return {nullptr, nullptr};
    auto [it, fresh] = origin_names.try_emplace(dwarf_dieoffset(&target));
    if (fresh) {
      Dwarf_Attribute attr;
      const char* linkage = nullptr;
      if (dwarf_attr_integrate(&target, DW_AT_linkage_name, &attr) ||
          dwarf_attr_integrate(&target, DW_AT_MIPS_linkage_name, &attr))
        linkage = dwarf_formstring(&attr);
      const char* name = dwarf_attr_integrate(&target, DW_AT_name, &attr) ? dwarf_formstring(&attr) : nullptr;
      it->second = {linkage, name};
    }
    return it->second;
  };
  // Exactly die_name(die), from the attributes already gathered: the
  // linkage name if the DIE or its origin chain has one, else the name.
  auto scope_name = [&](Dwarf_Die* die, ScopeAttrs& a) -> std::pair<const char*, bool> {
    if (a.has_linkage || a.has_mips_linkage) {
      if (a.has_origin || a.has_spec) return die_name(die);  // rare: keep libdw's walk
      const char* s = dwarf_formstring(a.has_linkage ? &a.linkage : &a.mips_linkage);
      if (s) return {s, true};
    } else if (a.has_origin || a.has_spec) {
      auto [linkage, name] = origin_name(a.has_origin ? &a.origin : &a.spec);
      if (linkage) return {linkage, true};
      if (!a.has_name) return {name ? name : "", false};
    }
    const char* s = a.has_name ? dwarf_formstring(&a.name) : nullptr;
    return {s ? s : "", false};
  };
  auto add_scope = [&](Dwarf_Die* die, bool inlined) -> int {
    ScopeAttrs a(die);
    uint32_t first = uint32_t(unit->ranges.size());
    Dwarf_Addr lo = 0, hi = 0;
    if (a.has_low_pc && a.has_high_pc && !a.has_ranges && dwarf_formaddr(&a.low_pc, &lo) == 0) {
      // What dwarf_highpc computes: an address, or an offset from low_pc.
      Dwarf_Word w = 0;
      if (dwarf_whatform(&a.high_pc) == DW_FORM_addr) {
        if (dwarf_formaddr(&a.high_pc, &hi) != 0) hi = 0;
      } else if (dwarf_formudata(&a.high_pc, &w) == 0) {
        hi = lo + w;
      }
      if (hi > lo) unit->ranges.emplace_back(lo, hi);
    } else if (a.has_ranges || a.has_low_pc || a.has_high_pc || a.has_origin || a.has_spec) {
      // Range lists, and anything unusual: libdw's own reading.
      Dwarf_Addr base;
      ptrdiff_t it = 0;
      while ((it = dwarf_ranges(die, it, &base, &lo, &hi)) > 0)
        if (hi > lo) unit->ranges.emplace_back(lo, hi);
    }
    uint32_t count = uint32_t(unit->ranges.size()) - first;
    if (count == 0) return -1;  // a declaration, or code optimized away
    Unit::Scope s{};
    auto [name, linkage] = scope_name(die, a);
    s.name = unit->name_id(name, linkage);
    s.range_first = first;
    s.range_count = count;
    if (inlined) {
      Dwarf_Word w = 0;
      if (a.has_call_file && dwarf_formudata(&a.call_file, &w) == 0 && (own_table || files)) {
        if (own_table)
          s.call_file = w < table_files.size() ? table_files[w] : unit->file_id(nullptr);
        else
          s.call_file = unit->file_id(dwarf_filesrc(files, w, nullptr, nullptr));
      } else {
        s.call_file = unit->file_id("");
      }
      if (a.has_call_line && dwarf_formudata(&a.call_line, &w) == 0) s.call_line = uint32_t(w);
    }
    int idx = int(unit->scopes.size());
    unit->scopes.push_back(s);
    if (!inlined)
      for (uint32_t i = 0; i < count; ++i)
        unit->top.push_back(Unit::TopRange{unit->ranges[first + i].first,
                                           unit->ranges[first + i].second, uint32_t(idx)});
    return idx;
  };

  Dwarf_Die child;
  if (dwarf_child(&cu, &child) == 0) stack.push_back(Frame{child, -1});
  // Iterative preorder walk. Each stack entry is the DIE being visited at its
  // depth, and the scope it opened; leaving a level closes that scope.
  while (!stack.empty()) {
    // On the stack entry itself: libdw caches the DIE's abbreviation in it,
    // which dwarf_siblingof then reuses.
    Dwarf_Die* die = &stack.back().die;
    int tag = dwarf_tag(die);
    int opened = -1;
    bool descend = false;
    if (tag == DW_TAG_subprogram) {
      opened = add_scope(die, false);
      // Even without code: a function's local classes (lambda closures)
      // have member functions with code of their own. C has none, so a C
      // declaration's parameters are not worth visiting.
      descend = opened >= 0 || !c_unit;
    } else if (tag == DW_TAG_inlined_subroutine) {
      opened = add_scope(die, true);
      descend = opened >= 0;  // inlined calls live only inside code
    } else if (is_scope_container(tag, c_unit)) {
      descend = true;
    }
    Dwarf_Die kid;
    if (descend && dwarf_haschildren(die) && dwarf_child(die, &kid) == 0) {
      stack.back().scope = opened;
      stack.push_back(Frame{kid, -1});
      continue;
    }
    if (opened >= 0) unit->scopes[size_t(opened)].end = uint32_t(unit->scopes.size());
    // Next sibling, popping finished levels (and closing their scopes).
    for (;;) {
      Dwarf_Die sib;
      if (dwarf_siblingof(&stack.back().die, &sib) == 0) {
        stack.back().die = sib;
        stack.back().scope = -1;
        break;
      }
      stack.pop_back();
      if (stack.empty()) break;
      int s = stack.back().scope;
      if (s >= 0) unit->scopes[size_t(s)].end = uint32_t(unit->scopes.size());
    }
  }
  std::sort(unit->top.begin(), unit->top.end(),
            [](const Unit::TopRange& a, const Unit::TopRange& b) { return a.lo < b.lo; });
  unit->demangled.resize(unit->names.size());
  // The interning maps only serve parsing.
  unit->file_ids = {};
  unit->name_ids = {};
  unit->file_by_ptr = {};
  unit->name_by_ptr = {};
  unit->rows.shrink_to_fit();
  unit->scopes.shrink_to_fit();
  unit->ranges.shrink_to_fit();
  bytes_.fetch_add(unit->bytes(), std::memory_order_relaxed);
  Unit* raw = unit.get();
  units_.emplace(cu_offset, std::move(unit));
  return raw;
}

bool DwarfInfo::line_of(uint64_t vaddr, std::string* file, int* line) {
  std::lock_guard<std::mutex> lock(mu_);
  Unit* u = unit_for(vaddr);
  if (!u) return false;
  auto it = std::upper_bound(u->rows.begin(), u->rows.end(), vaddr,
                             [](uint64_t v, const Unit::Row& r) { return v < r.addr; });
  if (it == u->rows.begin()) return false;
  --it;
  if (it->end) return false;
  *file = u->files[it->file];
  *line = int(it->line);
  return true;
}

bool DwarfInfo::lookup(uint64_t vaddr, std::vector<SourceFrame>* out, bool demangle_names) {
  std::lock_guard<std::mutex> lock(mu_);
  out->clear();
  Unit* u = unit_for(vaddr);
  if (!u) return false;

  // The line in force at vaddr belongs to the innermost frame.
  std::string file;
  int line = 0;
  bool have_row = false;
  auto row = std::upper_bound(u->rows.begin(), u->rows.end(), vaddr,
                              [](uint64_t v, const Unit::Row& r) { return v < r.addr; });
  if (row != u->rows.begin() && !std::prev(row)->end) {
    file = u->files[std::prev(row)->file];
    line = int(std::prev(row)->line);
    have_row = true;
  }

  // The subprogram, then each inlined call containing vaddr, outer to inner.
  std::vector<uint32_t> chain;
  auto top = std::upper_bound(u->top.begin(), u->top.end(), vaddr,
                              [](uint64_t v, const Unit::TopRange& r) { return v < r.lo; });
  // Nested subprograms (rare) overlap: the innermost is the last match.
  // GCC describes a constructor's or destructor's variants (C1/C2, D1/D2)
  // emitted at one address with one DIE each, all with the same range:
  // take the first in DWARF order, as other symbolizers do.
  for (auto it = top; it != u->top.begin();) {
    --it;
    if (vaddr >= it->lo && vaddr < it->hi) {
      uint32_t best = it->scope;
      while (it != u->top.begin() && std::prev(it)->lo == it->lo && std::prev(it)->hi == it->hi) {
        --it;
        best = std::min(best, it->scope);
      }
      chain.push_back(best);
      break;
    }
    if (top - it > 8) break;
  }
  if (!chain.empty()) {
    uint32_t i = chain.back() + 1, end = u->scopes[chain.back()].end;
    while (i < end) {
      const Unit::Scope& s = u->scopes[i];
      if (u->contains(s, vaddr)) {
        chain.push_back(i);
        end = s.end;
        ++i;
      } else {
        i = std::max(s.end, i + 1);
      }
    }
  }
  if (chain.empty()) {
    if (!have_row) return false;
    out->push_back(SourceFrame{"", "", file, line, false});  // a line, but no function DIE
    return true;
  }

  auto name_of = [&](uint32_t scope) -> std::pair<std::string, std::string> {
    uint32_t n = u->scopes[scope].name;
    const std::string& raw = u->names[n];
    if (!u->name_is_linkage[n] || !demangle_names) return {raw, u->name_is_linkage[n] ? raw : ""};
    if (u->demangled[n].empty()) u->demangled[n] = demangle(raw);
    return {u->demangled[n], raw};
  };
  // Innermost first: the deepest scope gets vaddr's line; each outer scope
  // gets the call site of the scope inlined into it.
  for (size_t k = chain.size(); k-- > 0;) {
    SourceFrame f;
    auto [display, system] = name_of(chain[k]);
    f.function = std::move(display);
    f.system_name = std::move(system);
    if (k + 1 == chain.size()) {
      f.file = file;
      f.line = line;
    } else {
      const Unit::Scope& callee = u->scopes[chain[k + 1]];
      f.file = u->files[callee.call_file];
      f.line = int(callee.call_line);
    }
    f.inlined = k > 0;
    out->push_back(std::move(f));
  }
  return true;
}

}  // namespace ember
