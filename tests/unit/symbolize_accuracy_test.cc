// Symbolization accuracy against llvm-symbolizer --inlining: for thousands of
// addresses spread over binaries built here with -O2 -g (C and C++ with heavy
// inlining; Rust and Go when their compilers exist), Ember's function names
// and inline chains must agree on every address, and file:line on at least
// 99%. Every mismatch is printed.
//
// Names are compared as the binary spells them (linkage names, with clone
// suffixes such as .cold), via llvm-symbolizer --no-demangle: that checks what
// DWARF resolution found, not the dialect of two demanglers (LLVM writes
// 'lambda'(...) where libstdc++'s __cxa_demangle, which Ember uses like
// eu-addr2line, writes {lambda(...)#1}).
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>

#include "unit/reference_tools.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/binary.h"

namespace ember {
namespace {

using reftools::Frame;
using reftools::run_capture;

std::string fixture(const std::string& name) { return std::string(FIXTURE_DIR) + "/" + name; }

// Every `step`-th instruction address of the binary's .text.
std::vector<uint64_t> instruction_addresses(const std::string& path, size_t want) {
  std::string dis = run_capture("objdump -d --no-show-raw-insn -j .text '" + path + "'");
  std::vector<uint64_t> all;
  std::istringstream in(dis);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos || line.size() < 3 || line[0] != ' ') continue;
    try {
      all.push_back(std::stoull(line.substr(0, colon), nullptr, 16));
    } catch (...) {
    }
  }
  std::vector<uint64_t> out;
  size_t step = std::max<size_t>(1, all.size() / want);
  for (size_t i = 0; i < all.size(); i += step) out.push_back(all[i]);
  return out;
}

std::string base(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

std::vector<std::vector<Frame>> reference(const std::string& path, const std::vector<uint64_t>& addrs) {
  return reftools::llvm_symbolize(path, addrs, /*demangle=*/false);
}

// A constructor or destructor's ABI variants (complete-object C1/D1,
// base-object C2/D2, unified C4/D4) that GCC emits as aliases of one address
// are one function: spell them alike. Which alias a symbolizer prints depends
// on whether it reads the symbol table or the DIE; the function is the same.
//
// Rust's legacy mangling ends each name with a hash (17h<16 hex>E); rustc
// folds identical functions, so one address has several names differing only
// there. Demangled, they are the same name: compare without the hash.
std::string canonical(std::string name) {
  for (size_t at = name.find("17h"); at != std::string::npos; at = name.find("17h", at + 1)) {
    if (at + 19 < name.size() && name[at + 19] == 'E' &&
        name.find_first_not_of("0123456789abcdef", at + 3) == at + 19)
      name.replace(at, 19, "17h#");
  }
  for (size_t i = 0; i + 2 < name.size(); ++i) {
    if ((name[i] == 'C' || name[i] == 'D') && name[i + 1] >= '0' && name[i + 1] <= '4' &&
        (name[i + 2] == 'E' || name[i + 2] == 'I') && i > 0 &&
        (std::isdigit(static_cast<unsigned char>(name[i - 1])) || std::isalpha(static_cast<unsigned char>(name[i - 1])) ||
         name[i - 1] == '_'))
      name[i + 1] = '*';
  }
  return name;
}

// Symbols at one address are one function under several names (ICF folds
// identical Rust generics; C aliases): llvm-symbolizer names the outermost
// frame from the symbol table and Ember from the DIE when the DIE's name is
// one of those aliases, so either alias is right.
std::map<std::string, uint64_t> symbol_addresses(const std::string& path) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(run_capture("nm --defined-only '" + path + "'"));
  std::string addr, type, name;
  while (in >> addr >> type >> name) {
    try {
      out.emplace(name, std::stoull(addr, nullptr, 16));
    } catch (...) {
    }
  }
  return out;
}

struct Agreement {
  size_t addresses = 0, name_mismatch = 0, line_mismatch = 0, frames = 0;
};

Agreement compare(const std::string& path, size_t want) {
  Agreement a;
  auto addrs = instruction_addresses(path, want);
  auto ref = reference(path, addrs);
  auto symbols = symbol_addresses(path);
  auto same = [&](const std::string& a, const std::string& b) {
    if (canonical(a) == canonical(b)) return true;
    auto x = symbols.find(a), y = symbols.find(b);
    return x != symbols.end() && y != symbols.end() && x->second == y->second;
  };
  EXPECT_EQ(ref.size(), addrs.size()) << path;
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok());
  Binary::LoadOptions opts;
  opts.dwarf = true;
  auto bin = Binary::load(std::move(*elf), opts);
  EXPECT_TRUE(bin.ok());
  EXPECT_TRUE((*bin)->has_dwarf());
  for (size_t i = 0; i < addrs.size() && i < ref.size(); ++i) {
    std::vector<SourceFrame> ours;
    (*bin)->describe(addrs[i], /*lines=*/true, /*demangle=*/true, &ours);
    const auto& theirs = ref[i];
    bool theirs_unknown = theirs.size() == 1 && theirs[0].function.empty();
    if (theirs_unknown && ours.empty()) continue;  // both: no debug info here (crt)
    ++a.addresses;
    // The name as the binary spells it: the linkage name, or the plain name
    // of a C function.
    auto spelled = [](const SourceFrame& f) { return f.system_name.empty() ? f.function : f.system_name; };
    bool names_ok = ours.size() == theirs.size();
    for (size_t k = 0; names_ok && k < ours.size(); ++k)
      names_ok = same(spelled(ours[k]), theirs[k].function);
    if (!names_ok) {
      if (++a.name_mismatch <= 15) {
        std::string o, t;
        for (const auto& f : ours) o += spelled(f) + " | ";
        for (const auto& f : theirs) t += f.function + " | ";
        ADD_FAILURE() << base(path) << " 0x" << std::hex << addrs[i] << std::dec << "\n  ours:   " << o
                      << "\n  theirs: " << t;
      }
      continue;
    }
    for (size_t k = 0; k < ours.size(); ++k) {
      ++a.frames;
      // No line on either side (code without DWARF: llvm-symbolizer then
      // names the STT_FILE symbol's file, with line 0).
      if (ours[k].line == 0 && theirs[k].line == 0) continue;
      if (base(ours[k].file) != base(theirs[k].file) || ours[k].line != theirs[k].line) {
        if (++a.line_mismatch <= 10)
          std::printf("[ line ] %s 0x%llx frame %zu: ours %s:%d theirs %s:%d\n", base(path).c_str(),
                      (unsigned long long)addrs[i], k, ours[k].file.c_str(), ours[k].line,
                      theirs[k].file.c_str(), theirs[k].line);
      }
    }
  }
  std::printf("[ info ] %s: %zu addresses, %zu frames; %zu name/inline-chain mismatches, %zu line "
              "mismatches (%.3f%% lines agree)\n",
              base(path).c_str(), a.addresses, a.frames, a.name_mismatch, a.line_mismatch,
              a.frames ? 100.0 * double(a.frames - a.line_mismatch) / double(a.frames) : 100.0);
  return a;
}

class Accuracy : public ::testing::Test {
 protected:
  void SetUp() override {
    if (system("command -v llvm-symbolizer >/dev/null") != 0)
      GTEST_SKIP() << "llvm-symbolizer (Debian llvm) is needed as the reference";
  }
};

TEST_F(Accuracy, AgreesWithLlvmSymbolizer) {
  std::vector<std::string> binaries = {fixture("inline_heavy_c"), fixture("inline_heavy_cxx"),
                                       fixture("symbolize_corpus")};
  for (const char* opt : {"sym_rust", "sym_go"})
    if (access(fixture(opt).c_str(), R_OK) == 0) binaries.push_back(fixture(opt));
  Agreement total;
  for (const auto& b : binaries) {
    Agreement a = compare(b, 6000);
    total.addresses += a.addresses;
    total.frames += a.frames;
    total.name_mismatch += a.name_mismatch;
    total.line_mismatch += a.line_mismatch;
  }
  std::printf("[ info ] total: %zu addresses, %zu frames, %zu name mismatches, %zu line mismatches\n",
              total.addresses, total.frames, total.name_mismatch, total.line_mismatch);
  EXPECT_GE(total.addresses, 10000u);
  EXPECT_EQ(total.name_mismatch, 0u);
  EXPECT_LE(double(total.line_mismatch), 0.01 * double(total.frames));
}

}  // namespace
}  // namespace ember
