#include "agent/config/ci_labels.h"

#include <optional>

namespace ember {

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// A label value from the environment: trimmed, bounded, empty when unset.
std::string value(const EnvGetter& env, const std::string& name) {
  auto v = env(name);
  if (!v) return "";
  std::string t = trim(*v);
  if (t.size() > 1024) t.resize(1024);
  return t;
}

// The first of `names` that is set and not empty.
std::string first_of(const EnvGetter& env, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string v = value(env, n);
    if (!v.empty()) return v;
  }
  return "";
}

struct Found {
  std::string provider, ref, repository, branch, job, run_url;
};

std::optional<Found> detect(const EnvGetter& env) {
  Found f;
  if (value(env, "GITHUB_ACTIONS") == "true") {
    f.provider = "github";
    f.ref = value(env, "GITHUB_SHA");
    std::string server = value(env, "GITHUB_SERVER_URL"), repo = value(env, "GITHUB_REPOSITORY");
    if (server.empty()) server = "https://github.com";
    if (!repo.empty()) f.repository = server + "/" + repo;
    f.branch = first_of(env, {"GITHUB_HEAD_REF", "GITHUB_REF_NAME"});  // a PR's source branch first
    std::string workflow = value(env, "GITHUB_WORKFLOW"), job = value(env, "GITHUB_JOB");
    f.job = workflow.empty() ? job : job.empty() ? workflow : workflow + "/" + job;
    std::string run = value(env, "GITHUB_RUN_ID");
    if (!repo.empty() && !run.empty()) {
      f.run_url = server + "/" + repo + "/actions/runs/" + run;
      std::string attempt = value(env, "GITHUB_RUN_ATTEMPT");
      if (!attempt.empty()) f.run_url += "/attempts/" + attempt;
    }
    return f;
  }
  if (value(env, "GITLAB_CI") == "true") {
    f.provider = "gitlab";
    f.ref = value(env, "CI_COMMIT_SHA");
    f.repository = value(env, "CI_PROJECT_URL");  // never CI_REPOSITORY_URL: it holds a job token
    f.branch = first_of(env, {"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_BRANCH", "CI_COMMIT_REF_NAME"});
    f.job = value(env, "CI_JOB_NAME");
    f.run_url = first_of(env, {"CI_JOB_URL", "CI_PIPELINE_URL"});
    return f;
  }
  if (value(env, "BUILDKITE") == "true") {
    f.provider = "buildkite";
    f.ref = value(env, "BUILDKITE_COMMIT");
    f.repository = value(env, "BUILDKITE_REPO");
    f.branch = value(env, "BUILDKITE_BRANCH");
    f.job = first_of(env, {"BUILDKITE_LABEL", "BUILDKITE_STEP_KEY"});
    f.run_url = value(env, "BUILDKITE_BUILD_URL");
    std::string job_id = value(env, "BUILDKITE_JOB_ID");
    if (!f.run_url.empty() && !job_id.empty()) f.run_url += "#" + job_id;
    return f;
  }
  if (value(env, "CIRCLECI") == "true") {
    f.provider = "circleci";
    f.ref = value(env, "CIRCLE_SHA1");
    f.repository = value(env, "CIRCLE_REPOSITORY_URL");
    f.branch = value(env, "CIRCLE_BRANCH");
    f.job = value(env, "CIRCLE_JOB");
    f.run_url = value(env, "CIRCLE_BUILD_URL");
    return f;
  }
  if (!value(env, "JENKINS_URL").empty() || (!value(env, "JENKINS_HOME").empty() && !value(env, "BUILD_URL").empty())) {
    f.provider = "jenkins";
    f.ref = value(env, "GIT_COMMIT");  // set by the Git plugin
    f.repository = value(env, "GIT_URL");
    f.branch = first_of(env, {"CHANGE_BRANCH", "BRANCH_NAME", "GIT_BRANCH"});  // multibranch first
    if (starts_with(f.branch, "origin/")) f.branch = f.branch.substr(7);
    f.job = value(env, "JOB_NAME");
    f.run_url = value(env, "BUILD_URL");
    return f;
  }
  return std::nullopt;
}

}  // namespace

std::string repository_web_url(const std::string& raw) {
  std::string s = trim(raw);
  // A query or fragment can carry a token (?private_token=...): never kept.
  s = s.substr(0, s.find_first_of("?#"));
  std::string scheme;
  std::string rest = s;
  if (size_t sep = s.find("://"); sep != std::string::npos) {
    scheme = s.substr(0, sep);
    if (scheme != "http" && scheme != "https" && scheme != "ssh" && scheme != "git" && scheme != "git+ssh")
      return "";
    rest = s.substr(sep + 3);
  }
  // Credentials end at the last '@' (a password may hold '/' or ':').
  if (size_t at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  std::string host, path;
  size_t colon = rest.find(':'), slash = rest.find('/');
  if (scheme.empty() && colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
    host = rest.substr(0, colon);  // scp-style host:path
    path = rest.substr(colon + 1);
  } else {
    host = rest.substr(0, slash);
    path = slash == std::string::npos ? "" : rest.substr(slash + 1);
    // A port names the git transport's server (ssh's 22, say), not the web
    // page's, unless the URL was already http(s).
    if (scheme != "http" && scheme != "https") host = host.substr(0, host.find(':'));
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".git") == 0) path.resize(path.size() - 4);
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (host.empty() || path.empty()) return "";
  // Fail closed: anything left that could be a credential or is not a plain
  // host and path drops the label.
  for (char c : host + path)
    if (c == '@' || c == ' ' || uint8_t(c) < 0x20 || c == 0x7f || c == '\\') return "";
  if (path.find(':') != std::string::npos) return "";
  return (scheme == "http" ? "http" : "https") + std::string("://") + host + "/" + path;
}

std::vector<std::pair<std::string, std::string>> ci_labels(const EnvGetter& env) {
  std::vector<std::pair<std::string, std::string>> out;
  auto found = detect(env);
  if (!found) return out;
  auto add = [&](const char* key, const std::string& v) {
    if (!v.empty()) out.emplace_back(key, v);
  };
  add("service_git_ref", found->ref);
  add("service_repository", repository_web_url(found->repository));
  add("ci_provider", found->provider);
  add("ci_branch", found->branch);
  add("ci_job", found->job);
  add("ci_run_url", found->run_url);
  return out;
}

}  // namespace ember
