// FrameCache (describe()'s per-address answers) on its own, and through
// Binary::describe: a cached answer must be exactly the uncached one.
#include "symbolizer/frame_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "symbolizer/dwarf_info.h"
#include "symbolizer/binary.h"

namespace ember {
namespace {

std::string fixture(const std::string& name) { return std::string(FIXTURE_DIR) + "/" + name; }

SourceFrame frame(std::string fn, std::string file, int line, bool inlined, std::string sys = "") {
  SourceFrame f;
  f.function = std::move(fn);
  f.system_name = std::move(sys);
  f.file = std::move(file);
  f.line = line;
  f.inlined = inlined;
  return f;
}

// "<prefix><n><suffix>", spelled out: GCC 12 warns (-Wrestrict, wrongly)
// about "literal" + std::to_string(n).
std::string numbered(const char* prefix, uint64_t n, const char* suffix = "") {
  std::string s(prefix);
  s += std::to_string(n);
  s += suffix;
  return s;
}

std::string str(const std::vector<SourceFrame>& frames) {
  std::string s;
  for (const auto& f : frames) {
    s += f.function;
    s += '|';
    s += f.system_name;
    s += '|';
    s += f.file;
    s += numbered(":", uint64_t(f.line), f.inlined ? " inlined\n" : "\n");
  }
  return s;
}

TEST(FrameCache, RemembersFramesPerAddress) {
  FrameCache c;
  std::vector<SourceFrame> out;
  EXPECT_FALSE(c.get(0x1000, &out));
  std::vector<SourceFrame> two = {frame("inner", "/src/a.h", 12, true),
                                  frame("outer(int)", "/src/a.cc", 40, false, "_Z5outeri")};
  c.put(0x1000, two);
  c.put(0x2000, {});  // "nothing known" is an answer too
  c.put(0x3000, {frame("outer(int)", "/src/a.cc", 41, false, "_Z5outeri")});
  EXPECT_EQ(c.size(), 3u);

  ASSERT_TRUE(c.get(0x1000, &out));
  EXPECT_EQ(str(out), str(two));
  ASSERT_TRUE(c.get(0x2000, &out));
  EXPECT_TRUE(out.empty());
  // Reusing `out`: a shorter answer drops the extra frame, strings are
  // overwritten, not appended.
  ASSERT_TRUE(c.get(0x1000, &out));
  ASSERT_TRUE(c.get(0x3000, &out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].function, "outer(int)");
  EXPECT_EQ(out[0].system_name, "_Z5outeri");
  EXPECT_EQ(out[0].line, 41);
  EXPECT_FALSE(out[0].inlined);
  EXPECT_FALSE(c.get(0x1001, &out));

  // The first answer for an address stays.
  c.put(0x3000, {frame("other", "", 0, false)});
  ASSERT_TRUE(c.get(0x3000, &out));
  EXPECT_EQ(out[0].function, "outer(int)");
}

TEST(FrameCache, GrowsAndKeepsEverythingBelowTheBound) {
  FrameCache c(100000);
  for (uint64_t a = 0; a < 50000; ++a)
    c.put(0x400000 + a * 5, {frame(numbered("f", a % 97), numbered("file", a % 13, ".c"), int(a), false)});
  EXPECT_EQ(c.size(), 50000u);
  std::vector<SourceFrame> out;
  for (uint64_t a = 0; a < 50000; ++a) {
    ASSERT_TRUE(c.get(0x400000 + a * 5, &out)) << a;
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].line, int(a));
    EXPECT_EQ(out[0].function, numbered("f", a % 97));
  }
  // The table (16 bytes a slot, at most half full) and about 30 bytes of
  // record per answer, each at most doubled by vector growth.
  EXPECT_LT(c.memory_bytes(), size_t(50000) * 100);
}

TEST(FrameCache, StartsOverWhenFull) {
  FrameCache c(4);
  for (uint64_t a = 1; a <= 4; ++a) c.put(a, {frame("f", "x.c", int(a), false)});
  EXPECT_EQ(c.size(), 4u);
  size_t full = c.memory_bytes();
  c.put(5, {frame("g", "y.c", 5, false)});
  EXPECT_EQ(c.size(), 1u);
  std::vector<SourceFrame> out;
  EXPECT_FALSE(c.get(1, &out));
  ASSERT_TRUE(c.get(5, &out));
  EXPECT_EQ(out[0].function, "g");
  EXPECT_LE(c.memory_bytes(), full);
  c.clear();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.get(5, &out));
}

TEST(FrameCache, BoundsItsBytes) {
  // Each answer below takes a 20-byte header and 10 bytes of strings.
  FrameCache c(1000, 100);
  std::vector<SourceFrame> out;
  for (uint64_t a = 1; a <= 3; ++a) c.put(a, {frame("fn", "file.c", int(a), false)});
  EXPECT_EQ(c.size(), 3u);
  c.put(4, {frame("fn", "file.c", 4, false)});  // would pass 100 bytes: starts over
  EXPECT_EQ(c.size(), 1u);
  ASSERT_TRUE(c.get(4, &out));
  EXPECT_EQ(out[0].line, 4);
  // An answer larger than the whole budget is not kept, and drops nothing.
  c.put(5, {frame(std::string(200, 'x'), "big.c", 5, false)});
  EXPECT_FALSE(c.get(5, &out));
  EXPECT_TRUE(c.get(4, &out));
}

// Every instruction-ish address of a fixture: describe() through the cache
// (twice: the miss, then the hit) equals describe() on a Binary without one,
// in both modes, and the mode not cached stays uncached.
TEST(FrameCache, BinaryDescribeSameWithAndWithoutCache) {
  Binary::LoadOptions with, without;
  with.dwarf = without.dwarf = true;
  without.frame_cache_addresses = 0;
  auto a = ElfFile::open(fixture("inline_heavy_cxx"));
  auto b = ElfFile::open(fixture("inline_heavy_cxx"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto cached = Binary::load(std::move(*a), with);
  auto plain = Binary::load(std::move(*b), without);
  ASSERT_TRUE(cached.ok() && plain.ok());
  ASSERT_TRUE((*cached)->has_dwarf());
  std::vector<uint64_t> addrs;
  for (const Symbol& s : (*plain)->symbols())
    for (uint64_t off = 0; off < s.size && off < 400; off += 3) addrs.push_back(s.start + off);
  std::sort(addrs.begin(), addrs.end());
  addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
  ASSERT_GT(addrs.size(), 500u);
  std::vector<SourceFrame> x, y;
  size_t inlined = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (uint64_t v : addrs) {
      (*cached)->describe(v, true, true, &x);
      (*plain)->describe(v, true, true, &y);
      ASSERT_EQ(str(x), str(y)) << std::hex << v << " pass " << pass;
      inlined += x.size() > 1;
    }
  }
  EXPECT_GT(inlined, 0u);
  EXPECT_EQ((*cached)->cached_addresses(), addrs.size());
  EXPECT_EQ((*plain)->cached_addresses(), 0u);
  // Another mode: answered correctly, not cached.
  for (uint64_t v : addrs) {
    (*cached)->describe(v, false, false, &x);
    (*plain)->describe(v, false, false, &y);
    ASSERT_EQ(str(x), str(y)) << std::hex << v;
  }
  EXPECT_EQ((*cached)->cached_addresses(), addrs.size());
  EXPECT_GT((*cached)->memory_bytes(), (*plain)->memory_bytes());
}

}  // namespace
}  // namespace ember
