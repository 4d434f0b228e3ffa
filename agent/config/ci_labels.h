// Labels that say which commit and which CI run a profile came from, read
// from the environment a CI system sets for its jobs: GitHub Actions, GitLab
// CI, Buildkite, CircleCI and Jenkins. `ember record` adds them to what it
// ships, so profiles of the same test suite can be compared commit by commit.
//
// The labels:
//   service_git_ref     the commit (full SHA)           Grafana Pyroscope's
//   service_repository  the repository's web URL         source-code links
//   ci_provider         github | gitlab | buildkite | circleci | jenkins
//   ci_branch           the branch (a pull request's source branch)
//   ci_job              the job's name
//   ci_run_url          a link to the run (the job's page where there is one)
// A label whose variable is unset or empty is left out. Repository URLs are
// reduced to https://host/path: credentials (GitLab's CI_REPOSITORY_URL
// carries a job token, so it is never read), ".git" and scp-style
// "git@host:path" are rewritten.
//
// The environment is passed in (common/env.h), so tests need not set the
// process's own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/env.h"

namespace ember {

// Empty when no known CI system is detected. Label order is the list above.
std::vector<std::pair<std::string, std::string>> ci_labels(const EnvGetter& env);

// "git@github.com:org/repo.git", "https://user:tok@gitlab.com/g/p.git",
// "ssh://git@host:22/org/repo" -> "https://github.com/org/repo", ...; empty
// if it is not a URL.
std::string repository_web_url(const std::string& url);

}  // namespace ember
