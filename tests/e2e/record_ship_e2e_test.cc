// `ember record` shipping its profile, as root, to pyroserver (the Pyroscope
// stand-in): labels from --tag, --service-name and each CI system's
// environment; one profile per --interval of a longer run; and a server that
// is down, which must not change the command's exit code unless
// --upload-required says so.
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e_util.h"
#include "support/pyroserver.h"

namespace ember::e2e {
namespace {

using ember::testing::PyroServer;

class RecordShipE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
  // `ember record` in a clean environment plus `env` (so the CI this test
  // itself may run in adds no labels), shipping a 1 s run of ratio_fp.
  RunResult record(const std::vector<std::string>& env, const std::vector<std::string>& flags,
                   const std::vector<std::string>& command = {}) {
    std::vector<std::string> argv = {"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), {ember_bin(), "record", "-o", tmp_ / "local.folded"});
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("--");
    if (command.empty()) argv.insert(argv.end(), {fixture("ratio_fp"), "1"});
    else argv.insert(argv.end(), command.begin(), command.end());
    return run(argv);
  }
  TempDir tmp_;
};

struct CiCase {
  const char* provider;
  std::vector<std::string> env;
  std::vector<std::string> want;  // in the stand-in's canonical label text
};

TEST_F(RecordShipE2E, EachCiSystemsLabelsAndTheTags) {
  PyroServer srv(PyroServer::Options{});
  ASSERT_TRUE(srv.running());
  const std::vector<CiCase> cases = {
      {"github",
       {"GITHUB_ACTIONS=true", "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
        "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=acme/app", "GITHUB_REF_NAME=main",
        "GITHUB_WORKFLOW=CI", "GITHUB_JOB=test", "GITHUB_RUN_ID=42"},
       {"service_git_ref=\"0123456789abcdef0123456789abcdef01234567\"",
        "service_repository=\"https://github.com/acme/app\"", "ci_branch=\"main\"", "ci_job=\"CI/test\"",
        "ci_run_url=\"https://github.com/acme/app/actions/runs/42\""}},
      {"gitlab",
       {"GITLAB_CI=true", "CI_COMMIT_SHA=feedf00d", "CI_PROJECT_URL=https://gitlab.example.com/g/p",
        "CI_REPOSITORY_URL=https://gitlab-ci-token:SECRET@gitlab.example.com/g/p.git", "CI_COMMIT_REF_NAME=dev",
        "CI_JOB_NAME=unit", "CI_JOB_URL=https://gitlab.example.com/g/p/-/jobs/9"},
       {"service_git_ref=\"feedf00d\"", "service_repository=\"https://gitlab.example.com/g/p\"",
        "ci_branch=\"dev\"", "ci_job=\"unit\""}},
      {"buildkite",
       {"BUILDKITE=true", "BUILDKITE_COMMIT=abc123", "BUILDKITE_REPO=git@github.com:acme/app.git",
        "BUILDKITE_BRANCH=main", "BUILDKITE_LABEL=tests", "BUILDKITE_BUILD_URL=https://buildkite.com/acme/app/builds/5"},
       {"service_git_ref=\"abc123\"", "service_repository=\"https://github.com/acme/app\"", "ci_job=\"tests\""}},
      {"circleci",
       {"CIRCLECI=true", "CIRCLE_SHA1=def456", "CIRCLE_REPOSITORY_URL=git@github.com:acme/app.git",
        "CIRCLE_BRANCH=feature", "CIRCLE_JOB=build", "CIRCLE_BUILD_URL=https://circleci.com/gh/acme/app/3"},
       {"service_git_ref=\"def456\"", "ci_branch=\"feature\"", "ci_run_url=\"https://circleci.com/gh/acme/app/3\""}},
      {"jenkins",
       {"JENKINS_URL=https://ci.example.com/", "GIT_COMMIT=789abc", "GIT_URL=https://git.example.com/team/app.git",
        "GIT_BRANCH=origin/release", "JOB_NAME=app/nightly", "BUILD_URL=https://ci.example.com/job/app/12/"},
       {"service_git_ref=\"789abc\"", "service_repository=\"https://git.example.com/team/app\"",
        "ci_branch=\"release\"", "ci_job=\"app/nightly\""}},
  };
  size_t shipped = 0;
  for (const auto& c : cases) {
    auto r = record(c.env, {"--server", srv.url(), "--tag", "team=perf", "--tag", "suite=e2e"});
    ASSERT_EQ(r.exit_code, 0) << c.provider << ": " << r.err;
    EXPECT_NE(r.err.find("ember: sent 1 profile to"), std::string::npos) << c.provider << ": " << r.err;
    ASSERT_TRUE(srv.wait_profiles(++shipped)) << c.provider << ": " << srv.log();
    auto rec = srv.profiles().back();
    const std::string& labels = rec["labels"];
    for (const auto& w : c.want) EXPECT_NE(labels.find(w), std::string::npos) << c.provider << ": " << labels;
    for (const std::string w : {"service_name=\"ratio_fp\"", "team=\"perf\"", "suite=\"e2e\""})
      EXPECT_NE(labels.find(w), std::string::npos) << c.provider << ": " << labels;
    EXPECT_NE(labels.find("ci_provider=\"" + std::string(c.provider) + "\""), std::string::npos) << labels;
    EXPECT_EQ(labels.find("SECRET"), std::string::npos) << labels;
    EXPECT_GT(std::stoll(rec["samples"]), 50) << c.provider;
  }
  // --no-ci-labels and --service-name.
  auto r = record({"GITHUB_ACTIONS=true", "GITHUB_SHA=abc"},
                  {"--server", srv.url(), "--no-ci-labels", "--service-name", "checkout-tests"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(srv.wait_profiles(++shipped));
  std::string labels = srv.profiles().back()["labels"];
  EXPECT_NE(labels.find("service_name=\"checkout-tests\""), std::string::npos) << labels;
  EXPECT_EQ(labels.find("service_git_ref"), std::string::npos) << labels;
  EXPECT_EQ(labels.find("ci_provider"), std::string::npos) << labels;
}

TEST_F(RecordShipE2E, ALongerRunShipsOneProfilePerInterval) {
  PyroServer srv(PyroServer::Options{});
  ASSERT_TRUE(srv.running());
  auto r = record({}, {"--server", srv.url(), "--interval", "1s"}, {fixture("ratio_fp"), "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(srv.wait_profiles(3)) << r.err;
  size_t n = srv.profiles().size();
  report_figure("profiles_of_a_3s_run", double(n));
  EXPECT_GE(n, 3u);
  EXPECT_LE(n, 5u);
  EXPECT_NE(r.err.find("ember: sent " + std::to_string(n) + " profiles to"), std::string::npos) << r.err;
  // The local file has the whole run.
  EXPECT_TRUE(std::filesystem::exists(tmp_ / "local.folded"));
}

TEST_F(RecordShipE2E, AServerThatIsDownLeavesTheExitCodeAlone) {
  const std::string url = "http://127.0.0.1:" + std::to_string(ember::testing::reserve_port());
  auto ok = record({}, {"--server", url, "--upload-timeout", "2s"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("ember: upload to " + url + " (push) failed: 0 of 1 profile sent"), std::string::npos)
      << ok.err;
  EXPECT_TRUE(std::filesystem::exists(tmp_ / "local.folded"));  // written all the same

  auto failing = record({}, {"--server", url, "--upload-timeout", "1s"}, {"sh", "-c", "exit 7"});
  EXPECT_EQ(failing.exit_code, 7) << failing.err;

  auto required = record({}, {"--server", url, "--upload-timeout", "1s", "--upload-required"});
  EXPECT_EQ(required.exit_code, 3) << required.err;

  auto bad = record({}, {"--tag", "x=1"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--tag needs --server"), std::string::npos) << bad.err;
  auto bad_tag = record({}, {"--server", url, "--tag", "__name__=x"});
  EXPECT_EQ(bad_tag.exit_code, 2);
  EXPECT_NE(bad_tag.err.find("--tag __name__=x: expected KEY=VALUE"), std::string::npos) << bad_tag.err;
}

}  // namespace
}  // namespace ember::e2e
