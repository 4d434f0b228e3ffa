// LineTable, Ember's .debug_line decoder, against libdw's dwarf_getsrclines:
// for every compile unit of several binaries (DWARF 5 from GCC, DWARF 4 from
// rustc, DWARF 2 from Go, Debian's dwz-processed libc debug file and
// python3.11d when installed), the same file table and, once sorted by
// address as DwarfInfo sorts them, the same rows.
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "symbolizer/dwarf_info.h"
#include "symbolizer/binary.h"

namespace ember {
namespace {

std::string fixture(const std::string& name) { return std::string(FIXTURE_DIR) + "/" + name; }

// The separate debug file of `path` under /usr/lib/debug/.build-id, or "".
std::string debug_file_of(const std::string& path) {
  auto elf = ElfFile::open(path);
  if (!elf) return "";
  std::string id = (*elf)->build_id();
  if (id.size() < 3) return "";
  std::string p = "/usr/lib/debug/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
  return access(p.c_str(), R_OK) == 0 ? p : "";
}

struct Counts {
  size_t units = 0, decoded = 0, rows = 0, mismatches = 0;
};

Counts compare_all_units(const std::string& path) {
  Counts c;
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok()) << path;
  if (!elf) return c;
  Dwarf* dw = dwarf_begin_elf((*elf)->elf(), DWARF_C_READ, nullptr);
  EXPECT_NE(dw, nullptr) << path;
  if (!dw) return c;
  LineSections sections;
  EXPECT_TRUE(LineSections::from(**elf, &sections)) << path;

  Dwarf_Off off = 0, next = 0;
  size_t hsize = 0;
  while (dwarf_nextcu(dw, off, &next, &hsize, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    Dwarf_Attribute attr;
    Dwarf_Word stmt = 0;
    bool has_lines = dwarf_offdie(dw, off + hsize, &cu) && dwarf_attr(&cu, DW_AT_stmt_list, &attr) &&
                     dwarf_formudata(&attr, &stmt) == 0;
    off = next;
    Dwarf_Lines* lines = nullptr;
    size_t nlines = 0;
    if (!has_lines || dwarf_getsrclines(&cu, &lines, &nlines) != 0) continue;
    ++c.units;
    LineTable ours;
    const char* comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr));
    if (!ours.decode(sections, stmt, comp_dir)) {
      ADD_FAILURE() << path << ": unit at 0x" << std::hex << stmt << " not decoded";
      continue;
    }
    ++c.decoded;

    Dwarf_Files* files = nullptr;
    size_t nfiles = 0;
    EXPECT_EQ(dwarf_getsrcfiles(&cu, &files, &nfiles), 0);
    EXPECT_EQ(ours.files.size(), nfiles) << path;
    for (size_t i = 0; i < std::min(nfiles, ours.files.size()); ++i) {
      const char* name = dwarf_filesrc(files, i, nullptr, nullptr);
      EXPECT_EQ(ours.files[i], name ? name : "") << path << " file " << i;
    }

    // libdw sorts rows by address, a sequence's end first at equal
    // addresses, otherwise in table order, and marks the last row as an
    // end: DwarfInfo does the same with ours.
    std::vector<LineTable::Row> rows = ours.rows;
    std::stable_sort(rows.begin(), rows.end(), [](const LineTable::Row& a, const LineTable::Row& b) {
      return a.addr != b.addr ? a.addr < b.addr : (a.end && !b.end);
    });
    if (!rows.empty()) rows.back().end = true;
    EXPECT_EQ(rows.size(), nlines) << path;
    for (size_t i = 0; i < std::min(nlines, rows.size()); ++i) {
      Dwarf_Line* l = dwarf_onesrcline(lines, i);
      Dwarf_Addr addr = 0;
      int line = 0;
      bool end = false;
      dwarf_lineaddr(l, &addr);
      dwarf_lineno(l, &line);
      dwarf_lineendsequence(l, &end);
      const char* file = dwarf_linesrc(l, nullptr, nullptr);
      const auto& r = rows[i];
      std::string our_file = r.file < ours.files.size() ? ours.files[r.file] : "";
      bool same = r.addr == addr && r.end == end && (end || (r.line == line && our_file == (file ? file : "")));
      ++c.rows;
      if (!same && ++c.mismatches <= 10)
        ADD_FAILURE() << path << " row " << i << ": ours 0x" << std::hex << r.addr << std::dec << " "
                      << our_file << ":" << r.line << (r.end ? " end" : "") << ", libdw 0x" << std::hex
                      << addr << std::dec << " " << (file ? file : "") << ":" << line << (end ? " end" : "");
    }
  }
  dwarf_end(dw);
  std::printf("[ info ] %s: %zu units (%zu decoded), %zu rows, %zu mismatches\n", path.c_str(), c.units,
              c.decoded, c.rows, c.mismatches);
  return c;
}

TEST(LineTable, SameRowsAndFilesAsLibdw) {
  std::vector<std::string> paths = {fixture("inline_heavy_c"), fixture("inline_heavy_cxx"),
                                    fixture("symbolize_corpus")};
  for (const char* opt : {"sym_rust", "sym_go"})  // DWARF 4 and 2, when their compilers exist
    if (access(fixture(opt).c_str(), R_OK) == 0) paths.push_back(fixture(opt));
  std::string libc = debug_file_of("/lib/x86_64-linux-gnu/libc.so.6");  // libc6-dbg
  if (!libc.empty()) paths.push_back(libc);
  if (access("/usr/bin/python3.11d", R_OK) == 0) paths.push_back("/usr/bin/python3.11d");
  Counts total;
  for (const auto& p : paths) {
    Counts c = compare_all_units(p);
    EXPECT_GT(c.units, 0u) << p;
    EXPECT_EQ(c.decoded, c.units) << p;
    total.rows += c.rows;
    total.mismatches += c.mismatches;
  }
  EXPECT_GT(total.rows, 1000u);
  EXPECT_EQ(total.mismatches, 0u);
}

TEST(LineTable, SafeOnTruncatedCorruptAndOutOfRangeInput) {
  auto elf = ElfFile::open(fixture("inline_heavy_c"));
  ASSERT_TRUE(elf.ok());
  Dwarf* dw = dwarf_begin_elf((*elf)->elf(), DWARF_C_READ, nullptr);
  ASSERT_NE(dw, nullptr);
  LineSections sections;
  ASSERT_TRUE(LineSections::from(**elf, &sections));
  LineTable t;
  EXPECT_TRUE(t.decode(sections, 0, nullptr));
  EXPECT_FALSE(t.rows.empty());
  EXPECT_FALSE(t.decode(sections, sections.line.size(), nullptr));
  EXPECT_FALSE(t.decode(sections, sections.line.size() + 100, nullptr));
  // Every prefix of the first table is either rejected or decodes to a
  // prefix of its rows, never reads past the end.
  LineTable full;
  ASSERT_TRUE(full.decode(sections, 0, nullptr));
  for (size_t len = 0; len < std::min<size_t>(sections.line.size(), 400); ++len) {
    LineSections cut = sections;
    cut.line = sections.line.substr(0, len);
    LineTable part;
    if (part.decode(cut, 0, nullptr)) {
      EXPECT_LE(part.rows.size(), full.rows.size());
    }
  }
  // Corrupted bytes anywhere in the section (a damaged or hostile file):
  // decoding fails or succeeds, but stays inside the data and terminates.
  std::string copy(sections.line);
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  size_t decoded = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string bad = copy;
    for (int k = 0; k < 4; ++k) bad[(next() >> 8) % bad.size()] = char(next() >> 16);
    LineSections s = sections;
    s.line = bad;
    LineTable t2;
    decoded += t2.decode(s, 0, nullptr);
  }
  std::printf("[ info ] %zu of 2000 corrupted tables still decoded\n", decoded);
  dwarf_end(dw);
}

}  // namespace
}  // namespace ember
