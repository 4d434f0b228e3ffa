// Test helpers around kubeapi (tests/support/kubeapi/main.go), the stand-in
// for the Kubernetes API server's pod endpoints: TLS certificates made with
// openssl, starting the server, and driving it through its /control
// endpoints (add/modify/delete pods, bookmarks, compaction, token rotation,
// failures).
//
// For tests only: blocking, no error recovery beyond returning false.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "support/eventually.h"

namespace ember::testing {

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes a file the way the kubelet updates a projected token: a new file
// renamed over the old one.
inline void write_file_atomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
  }
  std::filesystem::rename(tmp, path);
}

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/ember-kube-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ca.pem signs server.pem (names localhost and 127.0.0.1); wrong-ca.pem
// signs wrong-server.pem with the same names.
class KubeCerts {
 public:
  KubeCerts() {
    std::string script = "set -e\ncd '" + dir_.path() + R"('
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
for p in "" wrong-; do
  key ${p}ca.key
  openssl req -x509 -new -key ${p}ca.key -out ${p}ca.pem -days 2 -subj "/CN=${p}kubernetes-ca" 2>/dev/null
  key ${p}server.key
  openssl req -new -key ${p}server.key -out ${p}server.csr -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in ${p}server.csr -CA ${p}ca.pem -CAkey ${p}ca.key -CAcreateserial \
    -out ${p}server.pem -days 2 -extfile server.ext 2>/dev/null
done
)";
    {
      std::ofstream f(dir_ / "make-certs.sh");
      f << script;
    }
    ok_ = std::system(("sh '" + (dir_ / "make-certs.sh") + "'").c_str()) == 0 &&
          std::filesystem::exists(dir_ / "wrong-server.pem");
  }
  bool ok() const { return ok_; }
  std::string operator/(const std::string& f) const { return dir_ / f; }

 private:
  ScratchDir dir_;
  bool ok_ = false;
};

class KubeApiServer {
 public:
  // Serves HTTPS with cert/key, accepting `token`.
  KubeApiServer(const std::string& cert, const std::string& key, const std::string& control_ca,
                const std::string& token)
      : control_ca_(control_ca) {
    std::vector<std::string> argv = {KUBEAPI_SERVER, "-listen",   "127.0.0.1:0", "-addr-file",
                                     dir_ / "addr",  "-tls-cert", cert,          "-tls-key",
                                     key,            "-token",    token};
    std::string log = dir_ / "server.log";
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    eventually([&] { return std::filesystem::exists(dir_ / "addr"); });
    address_ = slurp(dir_ / "addr");
  }
  ~KubeApiServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool running() const { return !address_.empty(); }
  int port() const { return std::stoi(address_.substr(address_.rfind(':') + 1)); }
  std::string url() const { return "https://localhost:" + std::to_string(port()); }
  std::string log() const { return slurp(dir_ / "server.log"); }

  // POSTs to /control/<what>; true on HTTP 200.
  bool control(const std::string& what, const std::string& body = "") {
    std::string out;
    return control(what, body, &out);
  }
  bool control(const std::string& what, const std::string& body, std::string* out,
               std::chrono::seconds timeout = std::chrono::seconds(5)) {
    if (!client_) {
      TlsOptions tls;
      tls.ca_file = control_ca_;
      auto c = HttpClient::create(tls);
      if (!c.ok()) return false;
      client_ = std::move(*c);
    }
    HttpRequest req;
    req.url = url() + "/control/" + what;
    req.body = &body;
    req.timeout = timeout;
    auto r = client_->post(req, nullptr);
    *out = r.body;
    return r.status == 200;
  }
  // silent: no watch sees the change (see main.go).
  bool put_pod(const nlohmann::json& pod, bool silent = false) {
    return control(silent ? "pod?silent=1" : "pod", pod.dump());
  }
  // `count` copies of `pod`, named NAME-i (silently; see main.go).
  bool put_pods(const nlohmann::json& pod, int count) {
    std::string out;
    return control("pods?count=" + std::to_string(count), pod.dump(), &out, std::chrono::seconds(120));
  }
  bool put_pod_slowly(const nlohmann::json& pod) {  // a large body
    std::string out;
    return control("pod", pod.dump(), &out, std::chrono::seconds(120));
  }
  bool delete_pod(const std::string& ns, const std::string& name, bool silent = false) {
    return control("delete?namespace=" + ns + "&name=" + name + (silent ? "&silent=1" : ""));
  }
  // The pod requests served so far (see main.go's `request`).
  nlohmann::json requests() {
    std::string out;
    if (!control("requests", "", &out)) return nlohmann::json::array();
    auto j = nlohmann::json::parse(out, nullptr, false);
    return j.is_array() ? j : nlohmann::json::array();
  }

 private:
  ScratchDir dir_;
  std::string control_ca_;
  std::unique_ptr<HttpClient> client_;
  pid_t pid_ = -1;
  std::string address_;
};

}  // namespace ember::testing
