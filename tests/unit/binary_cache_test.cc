#include "symbolizer/binary_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace ember {
namespace {

std::string fixture(const char* name) { return std::string(FIXTURE_DIR) + "/" + name; }

UniqueFd open_ro(const std::string& path) { return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

TEST(BinaryCache, SecondLookupOfAFileIsAHit) {
  BinaryCache cache({});
  auto a = cache.get(open_ro(fixture("symbols_pie")), "symbols_pie");
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = cache.get(open_ro(fixture("symbols_pie")), "symbols_pie");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());
  auto st = cache.stats();
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_GT(st.bytes, 0u);
}

TEST(BinaryCache, SameBuildIdAtAnotherPathIsParsedOnce) {
  // The same library seen through two containers' roots: different inodes,
  // same build-id.
  std::string copy = "/tmp/ember-cache-copy-" + std::to_string(getpid());
  std::filesystem::copy_file(fixture("symbols_pie"), copy,
                             std::filesystem::copy_options::overwrite_existing);
  BinaryCache cache({});
  auto a = cache.get(open_ro(fixture("symbols_pie")), "orig");
  auto b = cache.get(open_ro(copy), "copy");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().entries, 1u);
  // Both identities now hit without reopening the ELF.
  struct stat st{};
  ::stat(copy.c_str(), &st);
  EXPECT_EQ(cache.find_by_inode(st.st_dev, st.st_ino).get(), a->get());
  unlink(copy.c_str());
}

TEST(BinaryCache, NonElfIsRememberedAsSuch) {
  std::string path = "/tmp/ember-cache-text-" + std::to_string(getpid());
  FILE* f = fopen(path.c_str(), "w");
  fputs("#!/bin/sh\necho not an elf\n", f);
  fclose(f);
  BinaryCache cache({});
  EXPECT_FALSE(cache.get(open_ro(path), path).ok());
  EXPECT_FALSE(cache.get(open_ro(path), path).ok());
  auto st = cache.stats();
  EXPECT_EQ(st.misses, 1u);  // parsed once, then a negative hit
  EXPECT_EQ(st.errors, 1u);
  unlink(path.c_str());
}

TEST(BinaryCache, EvictsLeastRecentlyUsedPastTheBound) {
  BinaryCache::Options opts;
  opts.max_entries = 2;
  BinaryCache cache(opts);
  auto pie = cache.get(open_ro(fixture("symbols_pie")), "pie");
  auto nopie = cache.get(open_ro(fixture("symbols_nopie")), "nopie");
  ASSERT_TRUE(pie.ok() && nopie.ok());
  // Touch pie so nopie is the least recently used.
  ASSERT_TRUE(cache.get(open_ro(fixture("symbols_pie")), "pie").ok());
  auto cxx = cache.get(open_ro(fixture("cxx_names")), "cxx");
  ASSERT_TRUE(cxx.ok());
  auto st = cache.stats();
  EXPECT_EQ(st.entries, 2u);
  EXPECT_EQ(st.evictions, 1u);
  // pie is still cached; nopie must be parsed again.
  uint64_t misses = st.misses;
  ASSERT_TRUE(cache.get(open_ro(fixture("symbols_pie")), "pie").ok());
  EXPECT_EQ(cache.stats().misses, misses);
  ASSERT_TRUE(cache.get(open_ro(fixture("symbols_nopie")), "nopie").ok());
  EXPECT_EQ(cache.stats().misses, misses + 1);
  // An evicted Binary stays valid for whoever still holds it.
  EXPECT_GT((*nopie)->symbol_count(), 0u);
}

TEST(BinaryCache, BoundedByBytesToo) {
  BinaryCache::Options opts;
  opts.max_bytes = 1;  // every parsed binary exceeds this
  BinaryCache cache(opts);
  ASSERT_TRUE(cache.get(open_ro(fixture("symbols_pie")), "pie").ok());
  ASSERT_TRUE(cache.get(open_ro(fixture("cxx_names")), "cxx").ok());
  // The newest entry is kept even alone over the bound; older ones go.
  EXPECT_EQ(cache.stats().entries, 1u);
}

}  // namespace
}  // namespace ember
