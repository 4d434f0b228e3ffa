#include <gtest/gtest.h>

#include <algorithm>
#include <sys/sysmacros.h>

#include "symbolizer/process_maps.h"

namespace ember {
namespace {

const char* kMaps =
    "55d7f0760000-55d7f0764000 r--p 00000000 fe:00 247230                     /usr/bin/dash\n"
    "55d7f0764000-55d7f0777000 r-xp 00004000 fe:00 247230                     /usr/bin/dash\n"
    "55d7f17b4000-55d7f17d5000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f1c2a228000-7f1c2a27d000 r-xp 00028000 fe:00 262151                     /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f1c2a400000-7f1c2a401000 r-xp 00000000 08:11 99                         /tmp/my lib.so (deleted)\n"
    "7f1c2a500000-7f1c2a501000 rwxp 00000000 00:00 0 \n"
    "7ffd4b3f6000-7ffd4b3f8000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST(ProcMaps, ParsesEveryField) {
  auto maps = parse_proc_maps(kMaps);
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  ASSERT_EQ(maps->size(), 8u);
  const MapEntry& text = (*maps)[1];
  EXPECT_EQ(text.start, 0x55d7f0764000u);
  EXPECT_EQ(text.end, 0x55d7f0777000u);
  EXPECT_EQ(text.offset, 0x4000u);
  EXPECT_TRUE(text.readable);
  EXPECT_FALSE(text.writable);
  EXPECT_TRUE(text.executable);
  EXPECT_FALSE(text.shared);
  EXPECT_EQ(text.dev_major, 0xfeu);
  EXPECT_EQ(text.dev_minor, 0u);
  EXPECT_EQ(text.dev(), makedev(0xfe, 0));
  EXPECT_EQ(text.inode, 247230u);
  EXPECT_EQ(text.path, "/usr/bin/dash");
  EXPECT_TRUE(text.is_file());
  EXPECT_FALSE((*maps)[2].is_file());  // [heap]
  EXPECT_EQ((*maps)[5].path, "");       // anonymous executable memory (JIT)
  EXPECT_EQ((*maps)[6].path, "[vdso]");
}

TEST(ProcMaps, KeepsSpacesAndMarksDeletedFiles) {
  auto maps = parse_proc_maps(kMaps);
  ASSERT_TRUE(maps.ok());
  const MapEntry& del = (*maps)[4];
  EXPECT_EQ(del.path, "/tmp/my lib.so (deleted)");
  EXPECT_TRUE(del.deleted());
  EXPECT_EQ(del.clean_path(), "/tmp/my lib.so");
  EXPECT_EQ(del.dev_major, 8u);
  EXPECT_EQ(del.dev_minor, 0x11u);
}

TEST(ProcMaps, MalformedLineIsAnErrorWithItsNumber) {
  auto maps = parse_proc_maps("55d7f0760000-55d7f0764000 r--p 00000000 fe:00 1 /a\ngarbage here\n");
  ASSERT_FALSE(maps.ok());
  EXPECT_NE(maps.error().message.find("line 2"), std::string::npos);
}

TEST(ProcMaps, SnapshotFindsTheMappingOfAnAddress) {
  auto maps = parse_proc_maps(kMaps);
  ASSERT_TRUE(maps.ok());
  ProcessSnapshot snap;
  snap.pid = 42;
  snap.proc_root = "/proc";
  for (auto& m : *maps)
    if (m.executable) snap.mappings.push_back(m);
  EXPECT_EQ(snap.find(0x55d7f0764000)->path, "/usr/bin/dash");
  EXPECT_EQ(snap.find(0x55d7f0776fff)->path, "/usr/bin/dash");
  EXPECT_EQ(snap.find(0x55d7f0777000), nullptr);  // end is exclusive
  EXPECT_EQ(snap.find(0x1000), nullptr);
  EXPECT_EQ(snap.find(0x7f1c2a230000)->inode, 262151u);
  EXPECT_EQ(snap.root_path(), "/proc/42/root");  // where open_by_path() resolves "/tmp/my lib.so"
  EXPECT_EQ(snap.map_files_path((*maps)[1]), "/proc/42/map_files/55d7f0764000-55d7f0777000");
}

void code_marker() {}

TEST(ProcMaps, ReadsOurOwnProcess) {
  auto snap = read_process_snapshot("/proc", getpid());
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_TRUE((*snap)->maps_ok);
  EXPECT_FALSE((*snap)->mappings.empty());
  for (const auto& m : (*snap)->mappings) EXPECT_TRUE(m.executable);
  EXPECT_NE((*snap)->find(reinterpret_cast<uint64_t>(&code_marker)),
            nullptr);
}

TEST(ProcMaps, AGoneProcessIsAnError) {
  EXPECT_FALSE(read_process_snapshot("/proc", 0x3fffffff).ok());
}

TEST(ProcMaps, ReadsAFixtureProcTree) {
  // A /proc laid out by hand: the root is injected, never hard-coded.
  char dir[] = "/tmp/ember-proc-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string root = dir;
  ASSERT_EQ(system(("mkdir -p " + root + "/77").c_str()), 0);
  FILE* f = fopen((root + "/77/maps").c_str(), "w");
  fputs(kMaps, f);
  fclose(f);
  f = fopen((root + "/77/comm").c_str(), "w");
  fputs("dash\n", f);
  fclose(f);
  ASSERT_EQ(symlink("/usr/bin/dash", (root + "/77/exe").c_str()), 0);
  auto snap = read_process_snapshot(root, 77);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ((*snap)->comm, "dash");
  EXPECT_EQ((*snap)->exe_path, "/usr/bin/dash");
  EXPECT_EQ((*snap)->mappings.size(), 6u);  // executable ones only
  EXPECT_EQ((*snap)->proc_root, root);
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
}

// A process with 100,000 executable mappings (a hostile one; the kernel
// allows it once vm.max_map_count is raised): the snapshot keeps 16,384,
// the file-backed ones first, and counts the rest.
TEST(ProcMaps, AHundredThousandMappingsAreBounded) {
  char dir[] = "/tmp/ember-proc-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string root = dir;
  ASSERT_EQ(system(("mkdir -p " + root + "/78").c_str()), 0);
  FILE* f = fopen((root + "/78/maps").c_str(), "w");
  for (int i = 0; i < 100000; ++i)
    fprintf(f, "%llx-%llx r-xp 00000000 00:00 0 \n", 0x10000000ull + i * 0x2000ull,
            0x10001000ull + i * 0x2000ull);
  fputs("7f1c2a230000-7f1c2a3b0000 r-xp 00028000 fe:00 262151 /usr/lib/x86_64-linux-gnu/libc.so.6\n", f);
  fclose(f);
  auto snap = read_process_snapshot(root, 78);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  const auto& s = **snap;
  EXPECT_EQ(s.mappings.size(), kMaxSnapshotMappings);
  EXPECT_EQ(s.mappings_dropped, 100001u - kMaxSnapshotMappings);
  ASSERT_NE(s.find(0x7f1c2a230100), nullptr) << "the file-backed mapping must be kept";
  EXPECT_EQ(s.find(0x7f1c2a230100)->inode, 262151u);
  EXPECT_NE(s.find(0x10000100), nullptr);  // the lowest anonymous ones are kept
  EXPECT_TRUE(std::is_sorted(s.mappings.begin(), s.mappings.end(),
                             [](const MapEntry& a, const MapEntry& b) { return a.start < b.start; }));
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
}

}  // namespace
}  // namespace ember
