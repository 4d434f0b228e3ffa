#include "symbolizer/dwarf_info.h"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>

#include "symbolizer/demangle.h"

namespace ember {

// One compile unit, parsed.
struct DwarfInfo::Unit {
  struct Row {
    uint64_t addr;
    uint32_t line;
    uint32_t file;  // index into files
    bool end;       // end of a sequence: no line from here
  };
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

  uint32_t file_id(const char* f) {
    std::string s = f ? f : "";
    auto [it, inserted] = file_ids.try_emplace(s, uint32_t(files.size()));
    if (inserted) files.push_back(std::move(s));
    return it->second;
  }
  uint32_t name_id(const std::string& n, bool linkage) {
    auto [it, inserted] = name_ids.try_emplace(n, uint32_t(names.size()));
    if (inserted) {
      names.push_back(n);
      name_is_linkage.push_back(linkage);
    }
    return it->second;
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
std::pair<std::string, bool> die_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* s = nullptr;
  if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
      dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
    s = dwarf_formstring(&attr);
  if (s) return {s, true};
  if (dwarf_attr_integrate(die, DW_AT_name, &attr)) s = dwarf_formstring(&attr);
  return {s ? s : "", false};
}

bool is_scope_container(int tag) {
  switch (tag) {
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
    case DW_TAG_namespace:
    case DW_TAG_class_type:
    case DW_TAG_structure_type:
    case DW_TAG_union_type:
    case DW_TAG_enumeration_type:  // Rust puts an enum's methods inside it
    case DW_TAG_module:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<std::unique_ptr<DwarfInfo>> DwarfInfo::open(std::unique_ptr<ElfFile> elf) {
  Dwarf* dw = dwarf_begin_elf(elf->elf(), DWARF_C_READ, nullptr);
  if (!dw) return Errorf("%s: no DWARF: %s", elf->name().c_str(), dwarf_errmsg(-1));
  return std::unique_ptr<DwarfInfo>(new DwarfInfo(std::move(elf), dw));
}

DwarfInfo::DwarfInfo(std::unique_ptr<ElfFile> elf, Dwarf* dw) : elf_(std::move(elf)), dw_(dw) {}

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

  // Line table.
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
      unit->rows.push_back(Unit::Row{addr, uint32_t(std::max(lineno, 0)),
                                     unit->file_id(dwarf_linesrc(l, nullptr, nullptr)), end});
    }
    // By address; at equal addresses a sequence's end comes first so the
    // row starting the next sequence wins. Otherwise keep table order: the
    // last row at an address is the one debuggers report.
    std::stable_sort(unit->rows.begin(), unit->rows.end(), [](const Unit::Row& a, const Unit::Row& b) {
      return a.addr != b.addr ? a.addr < b.addr : (a.end && !b.end);
    });
  }
  Dwarf_Files* files = nullptr;
  size_t nfiles = 0;
  if (dwarf_getsrcfiles(&cu, &files, &nfiles) != 0) files = nullptr;

  // Scopes: subprograms with code, and the calls inlined into them, in
  // preorder so a scope's subtree is the run [index + 1, end).
  struct Frame {
    Dwarf_Die die;
    int scope;  // index of the scope this DIE opened, -1 if none
  };
  std::vector<Frame> stack;
  auto add_scope = [&](Dwarf_Die* die, bool inlined) -> int {
    Dwarf_Addr base, lo, hi;
    ptrdiff_t it = 0;
    uint32_t first = uint32_t(unit->ranges.size());
    while ((it = dwarf_ranges(die, it, &base, &lo, &hi)) > 0)
      if (hi > lo) unit->ranges.emplace_back(lo, hi);
    uint32_t count = uint32_t(unit->ranges.size()) - first;
    if (count == 0) return -1;  // a declaration, or code optimized away
    Unit::Scope s{};
    auto [name, linkage] = die_name(die);
    s.name = unit->name_id(name, linkage);
    s.range_first = first;
    s.range_count = count;
    if (inlined) {
      Dwarf_Attribute attr;
      Dwarf_Word w = 0;
      if (dwarf_attr(die, DW_AT_call_file, &attr) && dwarf_formudata(&attr, &w) == 0 && files) {
        const char* f = dwarf_filesrc(files, w, nullptr, nullptr);
        s.call_file = unit->file_id(f);
      } else {
        s.call_file = unit->file_id("");
      }
      if (dwarf_attr(die, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &w) == 0)
        s.call_line = uint32_t(w);
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
    Dwarf_Die die = stack.back().die;
    int tag = dwarf_tag(&die);
    int opened = -1;
    bool descend = false;
    if (tag == DW_TAG_subprogram) {
      opened = add_scope(&die, false);
      // Even without code: a function's local classes (lambda closures)
      // have member functions with code of their own.
      descend = true;
    } else if (tag == DW_TAG_inlined_subroutine) {
      opened = add_scope(&die, true);
      descend = opened >= 0;  // inlined calls live only inside code
    } else if (is_scope_container(tag)) {
      descend = true;
    }
    Dwarf_Die kid;
    if (descend && dwarf_haschildren(&die) && dwarf_child(&die, &kid) == 0) {
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
