// Test helpers around pyroserver (tests/support/pyroserver/main.go), the
// Pyroscope stand-in: start it (now, or later on a reserved port), change how
// it answers, and read back what it recorded.
//
// Every helper is for tests only: blocking, no error recovery beyond
// assertions.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "e2e/e2e_util.h"
#include "support/eventually.h"
#include "support/scrape.h"

namespace ember::testing {

using Record = std::map<std::string, std::string>;

// Parses one record line: key="value" pairs, values quoted as Go's
// strconv.Quote does.
inline Record parse_record(const std::string& line) {
  Record r;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t eq = line.find('=', i);
    if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') break;
    std::string key = line.substr(i, eq - i);
    std::string value;
    size_t j = eq + 2;
    while (j < line.size() && line[j] != '"') {
      char c = line[j++];
      if (c != '\\' || j >= line.size()) {
        value += c;
        continue;
      }
      char e = line[j++];
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case 'x': {
          value += char(std::stoi(line.substr(j, 2), nullptr, 16));
          j += 2;
          break;
        }
        case 'u':
        case 'U': {
          size_t n = e == 'u' ? 4 : 8;
          uint32_t cp = uint32_t(std::stoul(line.substr(j, n), nullptr, 16));
          j += n;
          if (cp < 0x80) {
            value += char(cp);
          } else if (cp < 0x800) {
            value += char(0xC0 | (cp >> 6));
            value += char(0x80 | (cp & 0x3F));
          } else if (cp < 0x10000) {
            value += char(0xE0 | (cp >> 12));
            value += char(0x80 | ((cp >> 6) & 0x3F));
            value += char(0x80 | (cp & 0x3F));
          } else {
            value += char(0xF0 | (cp >> 18));
            value += char(0x80 | ((cp >> 12) & 0x3F));
            value += char(0x80 | ((cp >> 6) & 0x3F));
            value += char(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: value += e;
      }
    }
    r[key] = value;
    i = j + 1;
  }
  return r;
}


class PyroServer {
 public:
  struct Options {
    std::string listen = "127.0.0.1:0";
    std::string tls_cert, tls_key, client_ca;  // HTTPS, and mTLS with client_ca
    std::string ca_for_control;                // CA to trust when calling /control over HTTPS
    std::string mode = "ok";
  };

  explicit PyroServer(Options opts) : opts_(std::move(opts)) {
    std::filesystem::create_directories(dir_.path() + "/saved");
    std::vector<std::string> argv = {PYROSERVER,          "-listen",    opts_.listen,
                                     "-addr-file",        dir_ / "addr", "-records",
                                     dir_ / "records.txt", "-save-dir", dir_ / "saved",
                                     "-mode",             opts_.mode};
    if (!opts_.tls_cert.empty()) {
      argv.insert(argv.end(), {"-tls-cert", opts_.tls_cert, "-tls-key", opts_.tls_key});
      if (!opts_.client_ca.empty()) argv.insert(argv.end(), {"-client-ca", opts_.client_ca});
    }
    proc_ = std::make_unique<e2e::Proc>(argv, "/dev/null", dir_ / "server.log");
    eventually([&] { return std::filesystem::exists(dir_ / "addr"); }, std::chrono::seconds(5));
    address_ = e2e::read_file(dir_ / "addr");
  }
  PyroServer() : PyroServer(Options{}) {}
  ~PyroServer() { stop(); }

  void stop() {
    if (proc_) {
      proc_->signal(SIGTERM);
      proc_->wait(std::chrono::seconds(10));
      proc_.reset();
    }
  }
  bool running() const { return !address_.empty(); }
  const std::string& address() const { return address_; }  // host:port
  int port() const { return std::stoi(address_.substr(address_.rfind(':') + 1)); }
  std::string url() const { return (opts_.tls_cert.empty() ? "http://" : "https://") + address_; }
  std::string log() const { return e2e::read_file(dir_ / "server.log"); }

  // e.g. set_mode("mode=status&code=500"), set_mode("mode=hang").
  bool set_mode(const std::string& query) {
    TlsOptions tls;
    tls.ca_file = opts_.ca_for_control;
    auto c = HttpClient::create(tls);
    if (!c) return false;
    HttpRequest req;
    req.url = url() + "/control?" + query;
    req.timeout = std::chrono::seconds(5);
    auto r = (*c)->post(req, nullptr);
    return r.status == 200;
  }

  std::vector<Record> records(const std::string& event = "") const {
    std::vector<Record> out;
    std::istringstream in(e2e::read_file(dir_ / "records.txt"));
    std::string line;
    while (std::getline(in, line)) {
      Record r = parse_record(line);
      if (event.empty() || r["event"] == event) out.push_back(std::move(r));
    }
    return out;
  }
  std::vector<Record> profiles() const { return records("profile"); }
  std::vector<Record> requests() const { return records("request"); }

  // Waits until `n` profiles were accepted (or `timeout` passes).
  bool wait_profiles(size_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (profiles().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return profiles().size() >= n;
  }

 private:
  Options opts_;
  e2e::TempDir dir_;
  std::unique_ptr<e2e::Proc> proc_;
  std::string address_;
};

// Runs `go tool pprof -raw` on a saved profile: it must decode.
inline e2e::RunResult go_pprof_raw(const std::string& file) {
  return e2e::run({GO_EXECUTABLE, "tool", "pprof", "-raw", file}, std::chrono::seconds(60));
}

}  // namespace ember::testing
