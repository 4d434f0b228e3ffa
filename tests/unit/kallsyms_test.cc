#include "symbolizer/kallsyms.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace ember {
namespace {

const char* kKallsyms =
    "ffffffff81000000 T _stext\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81001000 T do_syscall_64\n"
    "ffffffff81002000 t entry_SYSCALL_64_after_hwframe\n"
    "ffffffff81800000 D jiffies\n"
    "ffffffff81003000 W weak_kernel_fn\n"
    "ffffffffc0100000 t nft_do_chain\t[nf_tables]\n"
    "ffffffffc0100800 T nft_register_expr\t[nf_tables]\n"
    "ffffffffc0200000 t bpf_prog_6deef7357e7b4530_ember_sample\t[bpf]\n"
    "ffffffffc0300000 t ext4_iget\t[ext4]\n";

TEST(Kallsyms, ResolvesCoreKernelSymbols) {
  auto ks = Kallsyms::parse(kKallsyms);
  ASSERT_TRUE(ks.ok()) << ks.error().message;
  auto s = (*ks)->lookup(0xffffffff81001234);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->name, "do_syscall_64");
  EXPECT_EQ(s->module, "");
  EXPECT_EQ(s->offset, 0x234u);
  EXPECT_EQ((*ks)->lookup(0xffffffff81003010)->name, "weak_kernel_fn");
}

TEST(Kallsyms, ResolvesModulesAndBpfPrograms) {
  auto ks = Kallsyms::parse(kKallsyms);
  ASSERT_TRUE(ks.ok());
  auto m = (*ks)->lookup(0xffffffffc0100010);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "nft_do_chain");
  EXPECT_EQ(m->module, "nf_tables");
  auto b = (*ks)->lookup(0xffffffffc0200040);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "bpf_prog_6deef7357e7b4530_ember_sample");
  EXPECT_EQ(b->module, "bpf");
  EXPECT_EQ((*ks)->lookup(0xffffffffc0300001)->module, "ext4");
}

TEST(Kallsyms, DataSymbolsNeverClaimCode) {
  auto ks = Kallsyms::parse(kKallsyms);
  ASSERT_TRUE(ks.ok());
  // 0xffffffff81800010 is past `jiffies` (data); the nearest text symbol is
  // weak_kernel_fn, which is more than 1 MiB away: unresolved, not wrong.
  EXPECT_FALSE((*ks)->lookup(0xffffffff81800010).has_value());
  EXPECT_FALSE((*ks)->lookup(0xffffffff80000000).has_value());  // below everything
  EXPECT_FALSE((*ks)->lookup(0xffffffffc0500000).has_value());  // far past the last
}

TEST(Kallsyms, HiddenAddressesLeaveNothingToResolve) {
  // What an unprivileged reader sees with kptr_restrict.
  auto ks = Kallsyms::parse("0000000000000000 T _stext\n0000000000000000 T do_syscall_64\n");
  ASSERT_TRUE(ks.ok());
  EXPECT_FALSE((*ks)->addresses_visible());
  EXPECT_FALSE((*ks)->lookup(0x1000).has_value());
}

TEST(Kallsyms, MalformedLineIsAnError) {
  EXPECT_FALSE(Kallsyms::parse("ffffffff81000000 T ok\nnot a line\n").ok());
  EXPECT_FALSE(Kallsyms::parse("zzzz T bad_address\n").ok());
}

TEST(Kallsyms, LoadsFromAnInjectedProcRoot) {
  char dir[] = "/tmp/ember-kallsyms-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/kallsyms";
  FILE* f = fopen(path.c_str(), "w");
  fputs(kKallsyms, f);
  fclose(f);
  auto ks = Kallsyms::load(dir);
  ASSERT_TRUE(ks.ok()) << ks.error().message;
  EXPECT_EQ((*ks)->size(), 9u);  // text symbols only
  unlink(path.c_str());
  rmdir(dir);
  EXPECT_FALSE(Kallsyms::load("/nonexistent-root").ok());
}

TEST(Kallsyms, PaddingSymbolsShareTheirFunctionsName) {
  // Linux 6.2+: `__pfx_NAME` covers the padding before NAME. Both resolve to
  // their own names, also when a __pfx_ is not followed by its function.
  auto ks = Kallsyms::parse(
      "ffffffff81000ff0 T __pfx_do_work\n"
      "ffffffff81001000 T do_work\n"
      "ffffffff81001ff0 t __pfx_orphan\n"
      "ffffffff81002000 t something_else\n"
      "ffffffff81002ff0 t __pfx_\n"
      "ffffffff81003000 t __pfx___pfx_x\n"
      "ffffffff81003010 t __pfx_x\n"
      "ffffffff81003020 t x\n");
  ASSERT_TRUE(ks.ok());
  EXPECT_EQ((*ks)->lookup(0xffffffff81000ff4)->name, "__pfx_do_work");
  EXPECT_EQ((*ks)->lookup(0xffffffff81001004)->name, "do_work");
  EXPECT_EQ((*ks)->lookup(0xffffffff81001ff4)->name, "__pfx_orphan");
  EXPECT_EQ((*ks)->lookup(0xffffffff81002004)->name, "something_else");
  EXPECT_EQ((*ks)->lookup(0xffffffff81002ff4)->name, "__pfx_");
  EXPECT_EQ((*ks)->lookup(0xffffffff81003004)->name, "__pfx___pfx_x");
  EXPECT_EQ((*ks)->lookup(0xffffffff81003014)->name, "__pfx_x");
  EXPECT_EQ((*ks)->lookup(0xffffffff81003024)->name, "x");
}

TEST(Kallsyms, ManyNamesSpanBlocksAndReadsSpanChunks) {
  // 20,000 symbols of ~40-byte names: about 800 KiB of names (thirteen
  // 64 KiB name blocks) and a file read in many 64 KiB chunks, lines split
  // across chunk ends. Every symbol must come back by its own address.
  std::string text;
  for (int i = 0; i < 20000; ++i) {
    char line[128];
    snprintf(line, sizeof line, "%016llx %c function_with_a_long_name_number_%06d%s\n",
             0xffffffff81000000ull + uint64_t(i) * 0x40, i % 2 ? 't' : 'T', i,
             i % 1000 == 0 ? "\t[mod_x]" : "");
    text += line;
  }
  text += "ffffffffa0000000 T " + std::string(3000, 'n') + "\n";  // cut, not an error
  text += "ffffffffa0001000 T last_without_newline";
  char dir[] = "/tmp/ember-kallsyms-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/kallsyms";
  FILE* f = fopen(path.c_str(), "w");
  fputs(text.c_str(), f);
  fclose(f);
  auto loaded = Kallsyms::load(dir);
  unlink(path.c_str());
  rmdir(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto parsed = Kallsyms::parse(text);
  ASSERT_TRUE(parsed.ok());
  for (const auto& ks : {*loaded, *parsed}) {
    EXPECT_EQ(ks->size(), 20002u);
    for (int i : {0, 1, 999, 1000, 1001, 12345, 19999}) {
      auto s = ks->lookup(0xffffffff81000000ull + uint64_t(i) * 0x40 + 3);
      ASSERT_TRUE(s.has_value()) << i;
      char want[64];
      snprintf(want, sizeof want, "function_with_a_long_name_number_%06d", i);
      EXPECT_EQ(s->name, want);
      EXPECT_EQ(s->module, i % 1000 == 0 ? "mod_x" : "");
      EXPECT_EQ(s->offset, 3u);
    }
    EXPECT_EQ(ks->lookup(0xffffffffa0000010)->name.size(), 1023u);
    EXPECT_EQ(ks->lookup(0xffffffffa0001010)->name, "last_without_newline");
  }
}

}  // namespace
}  // namespace ember
