// open_in_root against a directory laid out as a hostile container would:
// symlinks and ".." paths aimed at a file outside the root. Every case runs
// with openat2 (where the kernel has it) and with the user-space walk, and
// both must open the same file, or refuse the same way.
#include "common/in_root.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace ember {
namespace {

class InRoot : public ::testing::TestWithParam<InRootMode> {
 protected:
  void SetUp() override {
    if (GetParam() == InRootMode::kOpenat2 && !have_openat2()) GTEST_SKIP() << "no openat2 here";
    char tmpl[] = "/tmp/ember-inroot-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    top_ = tmpl;
    // top/outside/canary is the "host" file; top/root is the container.
    mkdir("outside");
    write("outside/canary", "outside");
    root_ = top_ + "/root";
    mkdir("root");
    for (const char* d : {"root/etc", "root/tmp", "root/usr", "root/usr/lib", "root/outside", "root/dir"})
      mkdir(d);
    write("root/etc/canary", "inside");
    write("root/usr/lib/libx.so", "libx");
    root_fd_ = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    if (root_fd_ >= 0) ::close(root_fd_);
    if (!top_.empty()) std::system(("rm -rf '" + top_ + "'").c_str());
  }

  void mkdir(const std::string& rel) { ASSERT_EQ(::mkdir((top_ + "/" + rel).c_str(), 0755), 0) << rel; }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(top_ + "/" + rel) << text;
  }
  void link(const std::string& target, const std::string& rel) {
    ASSERT_EQ(::symlink(target.c_str(), (top_ + "/" + rel).c_str()), 0) << rel;
  }
  // Opens `path` inside the root and returns what it reads ("" if the open
  // failed), with the result in *r.
  std::string read(const std::string& path, InRootResult* r) {
    UniqueFd fd = open_in_root(root_fd_, path, r, GetParam());
    if (!fd.valid()) return "";
    char buf[64];
    ssize_t n = ::pread(fd.get(), buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, size_t(n)) : "";
  }

  std::string top_, root_;
  int root_fd_ = -1;
};

TEST_P(InRoot, PlainPathsOpen) {
  InRootResult r;
  EXPECT_EQ(read("/usr/lib/libx.so", &r), "libx");
  EXPECT_EQ(r, InRootResult::kOpened);
  EXPECT_EQ(read("usr//lib/./libx.so", &r), "libx");
  EXPECT_EQ(r, InRootResult::kOpened);
  EXPECT_EQ(read("/usr/lib/../lib/libx.so", &r), "libx");
  EXPECT_EQ(r, InRootResult::kOpened);
}

TEST_P(InRoot, RelativeSymlinksInsideTheRootAreFollowed) {
  link("usr/lib", "root/lib64");
  link("../usr/lib/libx.so", "root/tmp/rel");
  InRootResult r;
  EXPECT_EQ(read("/lib64/libx.so", &r), "libx");
  EXPECT_EQ(r, InRootResult::kOpened);
  EXPECT_EQ(read("/tmp/rel", &r), "libx");
  EXPECT_EQ(r, InRootResult::kOpened);
}

TEST_P(InRoot, AnAbsoluteSymlinkIsTakenFromTheRootAndCounted) {
  // The host would open its own /etc/canary; the container means its own.
  link("/etc/canary", "root/tmp/perf-1.map");
  link("/usr/lib", "root/lib");
  uint64_t before = in_root_count(InRootResult::kKeptInRoot);
  InRootResult r;
  EXPECT_EQ(read("/tmp/perf-1.map", &r), "inside");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  EXPECT_EQ(read("/lib/libx.so", &r), "libx");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  EXPECT_EQ(in_root_count(InRootResult::kKeptInRoot), before + 2);
}

TEST_P(InRoot, DotDotNeverClimbsAboveTheRoot) {
  // From root/tmp, "../../outside/canary" is top/outside/canary to the host.
  link("../../outside/canary", "root/tmp/up");
  link("/../../../../outside/canary", "root/tmp/abs_up");
  InRootResult r;
  // root/outside/canary does not exist: nothing opens, and the attempt counts.
  EXPECT_EQ(read("/tmp/up", &r), "");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  EXPECT_EQ(read("/../outside/canary", &r), "");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  EXPECT_EQ(read("/tmp/abs_up", &r), "");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  // Once the root has a file there, that is what opens.
  write("root/outside/canary", "inside too");
  EXPECT_EQ(read("/tmp/up", &r), "inside too");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  EXPECT_EQ(read("../../outside/canary", &r), "inside too");
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
}

TEST_P(InRoot, MagicLinksAreNotFollowed) {
  // An fd of the host file, named through /proc/self/fd: the host would
  // follow the magic link to it.
  int fd = ::open((top_ + "/outside/canary").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  link("/proc/self/fd/" + std::to_string(fd), "root/tmp/magic");
  InRootResult r;
  EXPECT_EQ(read("/tmp/magic", &r), "");  // root/proc/self/fd/N: not there
  EXPECT_EQ(r, InRootResult::kKeptInRoot);
  ::close(fd);
}

TEST_P(InRoot, OnlyRegularFilesAreOpened) {
  ASSERT_EQ(::mkfifo((root_ + "/tmp/fifo").c_str(), 0644), 0);
  InRootResult r;
  EXPECT_EQ(read("/tmp/fifo", &r), "");  // and it did not block
  EXPECT_EQ(r, InRootResult::kRefused);
  EXPECT_EQ(read("/dir", &r), "");
  EXPECT_EQ(r, InRootResult::kRefused);
  EXPECT_EQ(read("/", &r), "");
  EXPECT_EQ(r, InRootResult::kRefused);
  EXPECT_EQ(read("/usr/lib/libx.so/more", &r), "");
  EXPECT_EQ(r, InRootResult::kMissing);  // ENOTDIR
}

TEST_P(InRoot, LoopsAndLongPathsAreRefused) {
  link("loop", "root/tmp/loop");
  link("b", "root/tmp/a");
  link("a", "root/tmp/b");
  InRootResult r;
  EXPECT_EQ(read("/tmp/loop", &r), "");
  EXPECT_EQ(r, InRootResult::kRefused);
  EXPECT_EQ(read("/tmp/a", &r), "");
  EXPECT_EQ(r, InRootResult::kRefused);
  EXPECT_EQ(read("/" + std::string(5000, 'x'), &r), "");
  EXPECT_EQ(r, InRootResult::kRefused);
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "d/";
  ASSERT_EQ(std::system(("mkdir -p '" + root_ + "/" + deep + "'").c_str()), 0);
  write("root/" + deep + "f", "deep");
  EXPECT_EQ(read(deep + "f", &r), GetParam() == InRootMode::kWalk ? "" : "deep");
  EXPECT_EQ(read(std::string("/etc/canary\0x", 13), &r), "");
  EXPECT_EQ(r, InRootResult::kRefused);
}

TEST_P(InRoot, AGoneRootIsMissing) {
  InRootResult r;
  UniqueFd fd = open_in_root(std::string("/proc/999999999/root"), "/etc/canary", &r, GetParam());
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(r, InRootResult::kMissing);
}

TEST(InRootOwn, OurOwnRootOpensPathsAsGiven) {
  InRootResult r;
  UniqueFd dir = open_in_root(std::string(), "/", &r);
  EXPECT_FALSE(dir.valid());
  EXPECT_EQ(r, InRootResult::kRefused);
  UniqueFd exe = open_in_root(std::string(), "/bin/sh", &r);
  EXPECT_TRUE(exe.valid());
  EXPECT_EQ(r, InRootResult::kOpened);
}

INSTANTIATE_TEST_SUITE_P(Modes, InRoot, ::testing::Values(InRootMode::kOpenat2, InRootMode::kWalk),
                         [](const auto& info) {
                           return std::string(info.param == InRootMode::kWalk ? "walk" : "openat2");
                         });

}  // namespace
}  // namespace ember
