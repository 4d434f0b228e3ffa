// CI labels from each CI system's documented environment variables, and
// repository URLs reduced to their web form.
#include "agent/config/ci_labels.h"

#include <gtest/gtest.h>

#include <map>

namespace ember {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

EnvGetter env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(CiLabels, NoCiNoLabels) {
  EXPECT_TRUE(ci_labels(env_of({})).empty());
  EXPECT_TRUE(ci_labels(env_of({{"HOME", "/root"}, {"GITHUB_ACTIONS", "false"}, {"CI", "true"}})).empty());
}

TEST(CiLabels, GitHubActions) {
  // A pull_request run: GITHUB_HEAD_REF is the PR's branch.
  Labels want = {{"service_git_ref", "ffac537e6cbbf934b08745a378932722df287a53"},
                 {"service_repository", "https://github.com/octo-org/octo-repo"},
                 {"ci_provider", "github"},
                 {"ci_branch", "feature-x"},
                 {"ci_job", "CI/test"},
                 {"ci_run_url", "https://github.com/octo-org/octo-repo/actions/runs/1658821493/attempts/2"}};
  EXPECT_EQ(ci_labels(env_of({{"GITHUB_ACTIONS", "true"},
                              {"GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53"},
                              {"GITHUB_SERVER_URL", "https://github.com"},
                              {"GITHUB_REPOSITORY", "octo-org/octo-repo"},
                              {"GITHUB_HEAD_REF", "feature-x"},
                              {"GITHUB_REF_NAME", "42/merge"},
                              {"GITHUB_WORKFLOW", "CI"},
                              {"GITHUB_JOB", "test"},
                              {"GITHUB_RUN_ID", "1658821493"},
                              {"GITHUB_RUN_ATTEMPT", "2"}})),
            want);
  // A push: no head ref (GitHub sets it empty), the branch is the ref name.
  auto push = ci_labels(env_of({{"GITHUB_ACTIONS", "true"}, {"GITHUB_HEAD_REF", ""}, {"GITHUB_REF_NAME", "main"},
                                {"GITHUB_SHA", "abc"}}));
  EXPECT_EQ(push, (Labels{{"service_git_ref", "abc"}, {"ci_provider", "github"}, {"ci_branch", "main"}}));
}

TEST(CiLabels, GitLabNeverReadsTheTokenBearingRepositoryUrl) {
  auto l = ci_labels(env_of({{"GITLAB_CI", "true"},
                             {"CI_COMMIT_SHA", "1ecfd275763eff1d6b4844ea3168962458c9f27a"},
                             {"CI_PROJECT_URL", "https://gitlab.example.com/group/project"},
                             {"CI_REPOSITORY_URL", "https://gitlab-ci-token:SECRET@gitlab.example.com/group/project.git"},
                             {"CI_COMMIT_REF_NAME", "main"},
                             {"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "fix-leak"},
                             {"CI_JOB_NAME", "unit tests"},
                             {"CI_JOB_URL", "https://gitlab.example.com/group/project/-/jobs/123"}}));
  EXPECT_EQ(l, (Labels{{"service_git_ref", "1ecfd275763eff1d6b4844ea3168962458c9f27a"},
                       {"service_repository", "https://gitlab.example.com/group/project"},
                       {"ci_provider", "gitlab"},
                       {"ci_branch", "fix-leak"},
                       {"ci_job", "unit tests"},
                       {"ci_run_url", "https://gitlab.example.com/group/project/-/jobs/123"}}));
  for (const auto& [k, v] : l) EXPECT_EQ(v.find("SECRET"), std::string::npos) << k;
}

TEST(CiLabels, BuildkiteCircleCiAndJenkins) {
  EXPECT_EQ(ci_labels(env_of({{"BUILDKITE", "true"},
                              {"BUILDKITE_COMMIT", "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d"},
                              {"BUILDKITE_REPO", "git@github.com:acme-inc/my-project.git"},
                              {"BUILDKITE_BRANCH", "main"},
                              {"BUILDKITE_LABEL", ":hammer: Tests"},
                              {"BUILDKITE_BUILD_URL", "https://buildkite.com/acme-inc/my-project/builds/1514"},
                              {"BUILDKITE_JOB_ID", "e44f9784-e20e-4b93-a21d-f41fd5869db9"}})),
            (Labels{{"service_git_ref", "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d"},
                    {"service_repository", "https://github.com/acme-inc/my-project"},
                    {"ci_provider", "buildkite"},
                    {"ci_branch", "main"},
                    {"ci_job", ":hammer: Tests"},
                    {"ci_run_url",
                     "https://buildkite.com/acme-inc/my-project/builds/1514#e44f9784-e20e-4b93-a21d-f41fd5869db9"}}));
  EXPECT_EQ(ci_labels(env_of({{"CIRCLECI", "true"},
                              {"CIRCLE_SHA1", "d7c9a1"},
                              {"CIRCLE_REPOSITORY_URL", "git@github.com:org/repo.git"},
                              {"CIRCLE_BRANCH", "dev"},
                              {"CIRCLE_JOB", "build"},
                              {"CIRCLE_BUILD_URL", "https://circleci.com/gh/org/repo/77"}})),
            (Labels{{"service_git_ref", "d7c9a1"},
                    {"service_repository", "https://github.com/org/repo"},
                    {"ci_provider", "circleci"},
                    {"ci_branch", "dev"},
                    {"ci_job", "build"},
                    {"ci_run_url", "https://circleci.com/gh/org/repo/77"}}));
  EXPECT_EQ(ci_labels(env_of({{"JENKINS_URL", "https://ci.example.com/"},
                              {"GIT_COMMIT", "5f3c2b"},
                              {"GIT_URL", "https://bot:pass@git.example.com/team/app.git"},
                              {"GIT_BRANCH", "origin/release-1.2"},
                              {"JOB_NAME", "app/nightly"},
                              {"BUILD_URL", "https://ci.example.com/job/app/job/nightly/12/"}})),
            (Labels{{"service_git_ref", "5f3c2b"},
                    {"service_repository", "https://git.example.com/team/app"},
                    {"ci_provider", "jenkins"},
                    {"ci_branch", "release-1.2"},
                    {"ci_job", "app/nightly"},
                    {"ci_run_url", "https://ci.example.com/job/app/job/nightly/12/"}}));
}

TEST(CiLabels, RepositoryWebUrls) {
  EXPECT_EQ(repository_web_url("https://github.com/org/repo"), "https://github.com/org/repo");
  EXPECT_EQ(repository_web_url("https://github.com/org/repo.git/"), "https://github.com/org/repo");
  EXPECT_EQ(repository_web_url("git@github.com:org/repo.git"), "https://github.com/org/repo");
  EXPECT_EQ(repository_web_url("ssh://git@git.example.com:2222/team/app.git"), "https://git.example.com/team/app");
  EXPECT_EQ(repository_web_url("https://user:token@gitlab.com/g/sub/p.git"), "https://gitlab.com/g/sub/p");
  EXPECT_EQ(repository_web_url("http://git.local:8080/x/y"), "http://git.local:8080/x/y");
  EXPECT_EQ(repository_web_url("  https://github.com/org/repo\n"), "https://github.com/org/repo");
  EXPECT_EQ(repository_web_url("file:///srv/git/repo"), "");
  EXPECT_EQ(repository_web_url("/srv/git/repo"), "");
  EXPECT_EQ(repository_web_url("https://github.com/"), "");
  EXPECT_EQ(repository_web_url(""), "");
  // Credentials never survive, however the URL spells them.
  EXPECT_EQ(repository_web_url("oauth2:TOKEN@gitlab.com/g/p.git"), "https://gitlab.com/g/p");
  EXPECT_EQ(repository_web_url("https://u:p/w@host/r"), "https://host/r");
  EXPECT_EQ(repository_web_url("https://host/r.git?private_token=SECRET#x"), "https://host/r");
  EXPECT_EQ(repository_web_url("https://host/a b"), "");
  EXPECT_EQ(repository_web_url("git@host:org/x:y"), "");
}

}  // namespace
}  // namespace ember
