// A hostile container: every path Ember takes from it (its perf map, its
// debug link, its build-id debug file) is a symlink or a ".." path aimed at a
// file that exists only on the host and holds canary names. Ember must
// resolve each inside the container's root (common/in_root.h), so no canary
// ever reaches the profile, and count the attempts.
#include <gtest/gtest.h>

#include "e2e_util.h"

namespace ember::e2e {
namespace {

class ContainerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF, chroot)";
  }
};

// `ember record --verbose` prints every nonzero metric as
// "ember:   NAME{LABELS} VALUE"; the value of one, or 0.
uint64_t printed_metric(const std::string& err, const std::string& name_and_labels) {
  const std::string key = "ember:   " + name_and_labels + " ";
  size_t at = err.find(key);
  return at == std::string::npos ? 0 : std::stoull(err.substr(at + key.size()));
}

void sh(const std::string& cmd) {
  auto r = run({"sh", "-c", cmd});
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
}

TEST_F(ContainerE2E, PathsFromAContainerNeverLeadToHostFiles) {
  TempDir tmp;
  const std::string host = tmp / "host", root = tmp / "root", bin = fixture("jailed_workload");
  ASSERT_EQ(::access("/usr/sbin/chroot", X_OK), 0) << "chroot (coreutils) is needed";
  sh("mkdir -p " + host + " " + root + "/tmp " + root + "/.debug");
  // The host's files. The debug file is the workload's own, symbols renamed
  // to canaries (its DWARF still says jailed_leaf: only it could name that).
  sh("objcopy --only-keep-debug " + bin + " " + host + "/jailed_workload.debug");
  sh("objcopy --redefine-sym jailed_leaf=EMBER_CANARY_leaf --redefine-sym jailed_mid=EMBER_CANARY_mid "
     "--redefine-sym main=EMBER_CANARY_main " + host + "/jailed_workload.debug");
  {
    std::ofstream(host + "/perf.map") << "10000000 1000 EMBER_CANARY_perf_map\n";
  }
  // The container: the workload stripped, linked to the host's debug file
  // (objcopy records the name and the CRC of the file it is given)...
  sh("cd " + host + " && objcopy --strip-all --add-gnu-debuglink=jailed_workload.debug " + bin + " " +
     root + "/jailed_workload");
  // ...which each lookup path reaches, the host's way, through a symlink.
  sh("ln -s " + host + "/jailed_workload.debug " + root + "/.debug/jailed_workload.debug");
  sh("ln -s ../../../../../../../../../.." + host + "/jailed_workload.debug " + root +
     "/jailed_workload.debug");
  auto id = run({"sh", "-c", "readelf -n " + bin + " | awk '/Build ID/ {print $3}'"});
  std::string build_id = id.out.substr(0, id.out.find('\n'));
  ASSERT_GT(build_id.size(), 2u) << "the fixture has no build-id";
  const std::string id_dir = root + "/usr/lib/debug/.build-id/" + build_id.substr(0, 2);
  sh("mkdir -p " + id_dir + " && ln -s " + host + "/jailed_workload.debug " + id_dir + "/" +
     build_id.substr(2) + ".debug");

  // The workload makes its /tmp/perf-PID.map a symlink to the host's map.
  auto r = run({ember_bin(), "record", "-F", "499", "--verbose", "-o", tmp / "out.folded", "--",
                "/usr/sbin/chroot", root, "/jailed_workload", host + "/perf.map", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t total = 0, canary = 0;
  std::string example;
  for (const auto& s : parse_folded(read_file(tmp / "out.folded"))) {
    if (s.frames.empty() || s.frames[0] != "jailed_workload") continue;
    total += s.count;
    for (const auto& f : s.frames) {
      if (f.find("EMBER_CANARY") != std::string::npos || f.find("jailed_leaf") != std::string::npos ||
          f.find("jailed_mid") != std::string::npos) {
        canary += s.count;
        if (example.empty()) example = f;
        break;
      }
    }
  }
  const uint64_t kept = printed_metric(r.err, "ember_workload_paths_total{result=\"kept_in_root\"}");
  std::printf("[ info ] %llu samples, %llu with a canary name (e.g. '%s'); paths kept in the root: %llu\n",
              (unsigned long long)total, (unsigned long long)canary, example.c_str(),
              (unsigned long long)kept);
  report_figure("canary_samples", double(canary));
  report_figure("paths_kept_in_root", double(kept));
  ASSERT_GT(total, 500u) << r.err;
  EXPECT_EQ(canary, 0u) << "a host file reached the profile: " << example;
  // At least the perf map, the .debug/ link and the build-id link; the
  // unwinder and the symbolizer may each look up the debug files.
  EXPECT_GE(kept, 3u) << r.err;
}

}  // namespace
}  // namespace ember::e2e
