#include "agent/config/config.h"
#include "agent/config/suggest.h"

#include "agent/config/relabel_config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ember {
namespace {

// Walks a YAML document against the schema below, collecting every error
// with its position.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  void error(const YAML::Node& n, const std::string& key, const std::string& msg) {
    std::ostringstream os;
    os << source_;
    if (n.Mark().line >= 0) os << ":" << n.Mark().line + 1;
    os << ": " << key << ": " << msg;
    errors_.push_back(os.str());
  }
  void error_at(const YAML::Mark& m, const std::string& msg) {
    std::ostringstream os;
    os << source_;
    if (m.line >= 0) os << ":" << m.line + 1;
    os << ": " << msg;
    errors_.push_back(os.str());
  }

  using Handler = std::function<void(const YAML::Node& value, const std::string& key)>;

  // Dispatches each key of `map` to its handler; unknown keys are errors.
  void walk(const YAML::Node& map, const std::string& prefix,
            const std::map<std::string, Handler>& handlers) {
    if (!map.IsMap()) {
      error(map, prefix.empty() ? "(document)" : prefix, "expected a mapping of keys");
      return;
    }
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string key = it->first.Scalar();
      std::string full = prefix.empty() ? key : prefix + "." + key;
      if (!seen.insert(key).second) {
        error(it->first, full, "duplicate key");
        continue;
      }
      auto h = handlers.find(key);
      if (h == handlers.end()) {
        std::string msg = "unknown key";
        std::string best = closest(key, handlers);
        if (!best.empty()) msg += " (did you mean '" + (prefix.empty() ? best : prefix + "." + best) + "'?)";
        error(it->first, full, msg);
        continue;
      }
      h->second(it->second, full);
    }
  }

  bool scalar(const YAML::Node& n, const std::string& key, const char* what) {
    if (n.IsScalar()) return true;
    error(n, key, std::string("expected ") + what + ", got " +
                      (n.IsMap() ? "a mapping" : n.IsSequence() ? "a list" : "nothing"));
    return false;
  }

  void integer(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi,
               int64_t* out) {
    if (!scalar(n, key, "an integer")) return;
    const std::string& s = n.Scalar();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE) {
      error(n, key, "expected an integer, got '" + s + "'");
      return;
    }
    if (v < lo || v > hi) {
      error(n, key, s + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return;
    }
    *out = v;
  }

  void boolean(const YAML::Node& n, const std::string& key, bool* out) {
    if (!scalar(n, key, "true or false")) return;
    const std::string& s = n.Scalar();
    if (s == "true" || s == "yes" || s == "on") *out = true;
    else if (s == "false" || s == "no" || s == "off") *out = false;
    else error(n, key, "expected true or false, got '" + s + "'");
  }

  void string(const YAML::Node& n, const std::string& key, std::string* out, bool nonempty) {
    if (!scalar(n, key, "a string")) return;
    if (nonempty && n.Scalar().empty()) {
      error(n, key, "must not be empty");
      return;
    }
    *out = n.Scalar();
  }

  void duration(const YAML::Node& n, const std::string& key, Duration lo, Duration hi,
                Duration* out) {
    if (!scalar(n, key, "a duration")) return;
    auto d = parse_duration(n.Scalar());
    if (!d) {
      error(n, key, "expected a duration like 10s or 1m, got '" + n.Scalar() + "'");
      return;
    }
    if (*d < lo || *d > hi) {
      error(n, key, n.Scalar() + " is out of range [" + format_duration(lo) + ", " +
                        format_duration(hi) + "]");
      return;
    }
    *out = *d;
  }

  void size(const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi,
            uint64_t* out) {
    if (!scalar(n, key, "a size")) return;
    auto v = parse_size(n.Scalar());
    if (!v) {
      error(n, key, "expected a size like 8MiB, got '" + n.Scalar() + "'");
      return;
    }
    if (*v < lo || *v > hi) {
      error(n, key, n.Scalar() + " is out of range [" + format_size(lo) + ", " + format_size(hi) + "]");
      return;
    }
    *out = *v;
  }

  size_t error_count() const { return errors_.size(); }
  // Errors already formatted with their position (one per line).
  void preformatted(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) errors_.push_back(line);
  }

  Status result() const {
    if (errors_.empty()) return {};
    std::string all;
    for (size_t i = 0; i < errors_.size(); ++i) {
      if (i) all += "\n";
      all += errors_[i];
    }
    return Error{all};
  }

 private:
  static std::string closest(const std::string& key, const std::map<std::string, Handler>& h) {
    return closest_key(key, h, [](const auto& kv) { return std::string_view(kv.first); });
  }

  std::string source_;
  std::vector<std::string> errors_;
};

bool valid_label_name(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// HTTP header names are RFC 9110 tokens.
bool valid_header_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok) return false;
  }
  return true;
}

bool iequals(const std::string& a, const char* b) {
  size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// A double-quoted YAML scalar, so any value renders back to itself.
std::string yaml_quote(const std::string& v) {
  std::string out = "\"";
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

constexpr const char* kRedacted = "<redacted>";

}  // namespace

std::string ServerUrl::url_host() const {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string ServerUrl::origin() const {
  std::string o = scheme + "://" + url_host();
  if (explicit_port) o += ":" + std::to_string(port);
  return o;
}

std::optional<UnwinderMode> parse_unwinder(std::string_view text) {
  if (text == "auto") return UnwinderMode::kAuto;
  if (text == "tables") return UnwinderMode::kTables;
  if (text == "fp") return UnwinderMode::kFramePointers;
  return std::nullopt;
}

const char* unwinder_name(UnwinderMode m) {
  switch (m) {
    case UnwinderMode::kAuto: return "auto";
    case UnwinderMode::kTables: return "tables";
    case UnwinderMode::kFramePointers: return "fp";
  }
  return "auto";
}

std::optional<DemangleSetting> parse_demangle(std::string_view text) {
  if (text == "full" || text == "true") return DemangleSetting{true, DemangleStyle::kFull};
  if (text == "simplified") return DemangleSetting{true, DemangleStyle::kSimplified};
  if (text == "none" || text == "false") return DemangleSetting{false, DemangleStyle::kFull};
  return std::nullopt;
}

const char* demangle_name(const DemangleSetting& d) {
  if (!d.demangle) return "none";
  return d.style == DemangleStyle::kSimplified ? "simplified" : "full";
}

Result<ServerUrl> parse_server_url(const std::string& url) {
  ServerUrl u;
  size_t sep = url.find("://");
  if (sep == std::string::npos)
    return Errorf("expected a URL like http://pyroscope:4040, got '%s'", url.c_str());
  u.scheme = url.substr(0, sep);
  for (char& c : u.scheme) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (u.scheme != "http" && u.scheme != "https")
    return Errorf("the scheme must be http or https, got '%s'", u.scheme.c_str());
  std::string rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos)
    return Errorf("credentials in the URL are not allowed (they would show in logs); use "
                  "basic_auth or bearer_token");
  if (u.path.find_first_of("?#") != std::string::npos)
    return Errorf("the URL must not have a query or fragment");
  for (char c : u.path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return Errorf("the URL's path has a space or control character");
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Errorf("unterminated IPv6 address in the URL");
    u.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Errorf("unexpected '%s' after the IPv6 address", after.c_str());
      port = after.substr(1);
      u.explicit_port = true;
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      u.explicit_port = true;
    }
  }
  if (u.host.empty()) return Errorf("the URL has no host");
  for (char c : u.host) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
              c == ':' || c == '%';
    if (!ok) return Errorf("invalid character '%c' in the URL's host", c);
  }
  if (u.explicit_port) {
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || p < 1 || p > 65535)
      return Errorf("invalid port '%s' in the URL", port.c_str());
    u.port = int(p);
  } else {
    u.port = u.scheme == "https" ? 443 : 80;
  }
  return u;
}

Result<ListenAddress> parse_listen_address(const std::string& text) {
  ListenAddress a;
  size_t colon = text.rfind(':');
  if (colon == std::string::npos)
    return Errorf("expected host:port like 127.0.0.1:9799, got '%s'", text.c_str());
  std::string host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1)
      return Errorf("'%s' is not an IPv6 address", host.c_str());
  } else if (host == "localhost") {
    host = "127.0.0.1";
  } else if (!host.empty()) {
    in_addr a4{};
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1)
      return Errorf("expected an IP address (or localhost) before the port, got '%s'", host.c_str());
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 0 || p > 65535)
    return Errorf("invalid port '%s' in '%s'", port.c_str(), text.c_str());
  a.host = host;
  a.port = int(p);
  return a;
}

const char* api_name(ServerConfig::Api api) {
  switch (api) {
    case ServerConfig::Api::kPush: return "push";
    case ServerConfig::Api::kIngest: return "ingest";
    case ServerConfig::Api::kOtlp: return "otlp";
  }
  return "push";
}

std::string ServerConfig::display_name() const {
  if (!name.empty()) return name;
  auto u = parse_server_url(url);
  return u ? u->origin() : url;
}

Status validate_server(const ServerConfig& s) {
  if (s.url.empty()) return Errorf("url: is required (e.g. http://pyroscope:4040)");
  auto u = parse_server_url(s.url);
  if (!u) return Errorf("url: %s", u.error().message.c_str());
  int auth = !s.bearer_token.empty() + !s.bearer_token_file.empty() + s.has_basic_auth;
  if (auth > 1)
    return Errorf("bearer_token, bearer_token_file and basic_auth: use only one of them");
  if (s.has_basic_auth) {
    if (s.basic_auth.username.empty()) return Errorf("basic_auth.username: is required");
    if (s.basic_auth.password.empty() == s.basic_auth.password_file.empty())
      return Errorf("basic_auth: set exactly one of password and password_file");
  }
  for (const auto& [k, v] : s.headers) {
    if (!valid_header_name(k)) return Errorf("headers.%s: invalid header name", k.c_str());
    for (char c : v)
      if (c == '\r' || c == '\n' || c == '\0')
        return Errorf("headers.%s: the value has a line break or NUL", k.c_str());
    for (const char* reserved : {"Content-Type", "Content-Encoding", "Content-Length", "Host",
                                 "Transfer-Encoding", "Connection", "Connect-Protocol-Version"})
      if (iequals(k, reserved))
        return Errorf("headers.%s: Ember sets this header itself", k.c_str());
    if (iequals(k, "Authorization") && auth)
      return Errorf("headers.%s: conflicts with bearer_token/basic_auth", k.c_str());
    if (iequals(k, "X-Scope-OrgID") && !s.tenant_id.empty())
      return Errorf("headers.%s: conflicts with tenant_id", k.c_str());
  }
  for (char c : s.tenant_id)
    if (c == '\r' || c == '\n' || c == '\0')
      return Errorf("tenant_id: has a line break or NUL");
  for (char c : s.bearer_token)
    if (c == '\r' || c == '\n' || c == '\0')
      return Errorf("bearer_token: has a line break or NUL");
  if (s.tls.cert_file.empty() != s.tls.key_file.empty())
    return Errorf("tls: cert_file and key_file go together (client certificate and its key)");
  bool any_tls = !s.tls.ca_file.empty() || !s.tls.cert_file.empty() ||
                 !s.tls.server_name.empty() || s.tls.insecure_skip_verify;
  if (any_tls && u->scheme != "https")
    return Errorf("tls: TLS options need an https:// url");
  if (s.timeout < std::chrono::milliseconds(100) || s.timeout > std::chrono::minutes(10))
    return Errorf("timeout: %s is out of range [100ms, 10m]", format_duration(s.timeout).c_str());
  if (s.queue_max_bytes < (16u << 10))
    return Errorf("queue_max_bytes: %s is below the minimum 16KiB",
                  format_size(s.queue_max_bytes).c_str());
  if (s.min_backoff <= Duration(0) || s.max_backoff < s.min_backoff)
    return Errorf("max_backoff: must be at least min_backoff (%s)",
                  format_duration(s.min_backoff).c_str());
  return {};
}

Result<uint64_t> parse_size(const std::string& text) {
  if (text.empty()) return Errorf("empty size");
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v < 0 || errno == ERANGE) return Errorf("bad size '%s'", text.c_str());
  std::string unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  uint64_t mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KiB" || unit == "k") mult = 1ull << 10;
  else if (unit == "M" || unit == "MiB") mult = 1ull << 20;
  else if (unit == "G" || unit == "GiB") mult = 1ull << 30;
  else if (unit == "KB") mult = 1000;
  else if (unit == "MB") mult = 1000 * 1000;
  else if (unit == "GB") mult = 1000ull * 1000 * 1000;
  else return Errorf("bad size unit in '%s'", text.c_str());
  double bytes = v * double(mult);
  if (bytes > 1e18) return Errorf("size '%s' is too large", text.c_str());
  if (unit.empty() && v != double(uint64_t(v))) return Errorf("bad size '%s'", text.c_str());
  return uint64_t(bytes);
}

std::string format_size(uint64_t bytes) {
  if (bytes && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

namespace {

// Reads one server (an element of `servers:`, or `server:`) at `node`;
// `prefix` names it in errors ("servers[1]" or "server").
void read_server(Reader& r, const YAML::Node& node, const std::string& prefix, ServerConfig* out) {
  using H = Reader::Handler;
  ServerConfig& s = *out;
  std::map<std::string, H> basic_auth = {
      {"username", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.basic_auth.username, true); }},
      {"password", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.basic_auth.password, true); }},
      {"password_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.basic_auth.password_file, true); }},
  };
  std::map<std::string, H> tls = {
      {"ca_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.tls.ca_file, true); }},
      {"cert_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.tls.cert_file, true); }},
      {"key_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.tls.key_file, true); }},
      {"server_name", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.tls.server_name, true); }},
      {"insecure_skip_verify", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &s.tls.insecure_skip_verify); }},
  };
  std::map<std::string, H> top = {
      {"url", [&](const YAML::Node& n, const std::string& k) {
         r.string(n, k, &s.url, true);
         if (s.url.empty()) return;
         if (auto u = parse_server_url(s.url); !u) r.error(n, k, u.error().message);
       }},
      {"name", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.name, true); }},
      {"api", [&](const YAML::Node& n, const std::string& k) {
         std::string v;
         r.string(n, k, &v, true);
         if (v == "push") s.api = ServerConfig::Api::kPush;
         else if (v == "ingest") s.api = ServerConfig::Api::kIngest;
         else if (v == "otlp") s.api = ServerConfig::Api::kOtlp;
         else if (!v.empty()) r.error(n, k, "expected push, ingest or otlp, got '" + v + "'");
       }},
      {"bearer_token", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.bearer_token, true); }},
      {"bearer_token_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.bearer_token_file, true); }},
      {"basic_auth", [&](const YAML::Node& n, const std::string& k) {
         s.has_basic_auth = true;
         r.walk(n, k, basic_auth);
       }},
      {"tenant_id", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &s.tenant_id, true); }},
      {"headers", [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsMap()) {
           r.error(n, k, "expected a mapping of header names to values");
           return;
         }
         for (auto it = n.begin(); it != n.end(); ++it) {
           if (!it->second.IsScalar()) {
             r.error(it->second, k + "." + it->first.Scalar(), "expected a string value");
             continue;
           }
           s.headers.emplace_back(it->first.Scalar(), it->second.Scalar());
         }
       }},
      {"tls", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, tls); }},
      {"timeout", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, std::chrono::milliseconds(100), std::chrono::minutes(10), &s.timeout);
       }},
      {"queue_max_bytes", [&](const YAML::Node& n, const std::string& k) { r.size(n, k, 16 << 10, 1ull << 40, &s.queue_max_bytes); }},
      {"min_backoff", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, std::chrono::milliseconds(10), std::chrono::minutes(10), &s.min_backoff);
       }},
      {"max_backoff", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, std::chrono::milliseconds(10), std::chrono::hours(1), &s.max_backoff);
       }},
  };
  size_t errors_before = r.error_count();
  r.walk(node, prefix, top);
  if (r.error_count() != errors_before || !node.IsMap()) return;
  // Cross-field rules, reported at the line of the key they name.
  if (auto st = validate_server(s); !st) {
    const std::string& msg = st.error().message;
    size_t colon = msg.find(": ");
    std::string key = colon == std::string::npos ? "" : msg.substr(0, colon);
    std::string rest = colon == std::string::npos ? msg : msg.substr(colon + 2);
    std::string first = key.substr(0, key.find_first_of(".,"));
    // (YAML::Node assignment would overwrite the node, so keep the mark.)
    YAML::Mark at = node.Mark();
    for (auto it = node.begin(); it != node.end(); ++it)
      if (it->first.Scalar() == first) at = it->first.Mark();
    r.error_at(at, (key.empty() ? prefix : prefix + "." + key) + ": " + rest);
  }
}

// A YAML alias names a node already built, so a few lines can describe a
// document that expands to billions of nodes ("billion laughs"), or, in
// yaml-cpp, a sequence that contains itself (`&a [*a]`). Every walk over
// the config (ours, and yaml-cpp's own) would then run forever or overflow
// the stack. So before anything reads it, the document is walked once,
// aliases expanded, iteratively, and refused past a node budget and a depth
// far above what any config needs (every key of ember.yaml with a hundred
// relabel rules is a few thousand nodes).
constexpr size_t kMaxConfigNodes = 100'000;
constexpr size_t kMaxConfigDepth = 64;

Status check_expansion(const YAML::Node& root, const std::string& source) {
  std::vector<std::pair<YAML::Node, size_t>> stack;  // node, depth
  stack.emplace_back(root, 0);
  size_t visited = 0;
  while (!stack.empty()) {
    const YAML::Node n = stack.back().first;  // (not a structured binding:
    const size_t depth = stack.back().second;  // clang 14 cannot capture one)
    stack.pop_back();
    auto at = [&] {
      const YAML::Mark m = n.Mark();
      return source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    };
    if (++visited > kMaxConfigNodes)
      return Errorf("%s: the document expands to more than %zu YAML nodes (aliases that "
                    "repeat aliases?); refused",
                    at().c_str(), kMaxConfigNodes);
    if (depth > kMaxConfigDepth)
      return Errorf("%s: the document nests more than %zu levels deep (or an alias contains "
                    "itself); refused",
                    at().c_str(), kMaxConfigDepth);
    if (n.IsSequence()) {
      for (auto it = n.begin(); it != n.end(); ++it) stack.emplace_back(*it, depth + 1);
    } else if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) {
        stack.emplace_back(it->first, depth + 1);
        stack.emplace_back(it->second, depth + 1);
      }
    }
  }
  return {};
}

}  // namespace

Result<Config> parse_config(const std::string& yaml, const std::string& source) {
  Config c;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    std::ostringstream os;
    os << source << ":" << e.mark.line + 1 << ":" << e.mark.column + 1 << ": invalid YAML: " << e.msg;
    return Error{os.str()};
  }
  if (root.IsNull()) return c;  // an empty file means all defaults
  if (auto st = check_expansion(root, source); !st) return st.error();

  Reader r(source);
  using H = Reader::Handler;
  int64_t i64 = 0;
  std::map<std::string, H> output = {
      {"directory", [&](const YAML::Node& n, const std::string& k) {
         r.string(n, k, &c.output.directory, true);
         c.output.directory_set = true;
       }},
      {"max_bytes", [&](const YAML::Node& n, const std::string& k) { r.size(n, k, 1 << 20, 1ull << 50, &c.output.max_bytes); }},
  };
  std::map<std::string, H> sampler = {
      {"ring_buffer_size", [&](const YAML::Node& n, const std::string& k) {
         if (n.IsScalar() && n.Scalar() == "auto") c.sampler.ring_buffer_bytes = 0;
         else r.size(n, k, 64 << 10, 1ull << 30, &c.sampler.ring_buffer_bytes);
       }},
      {"kernel_stacks", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &c.sampler.kernel_stacks); }},
      {"user_stacks", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &c.sampler.user_stacks); }},
      {"include_idle", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &c.sampler.include_idle); }},
      {"max_processes", [&](const YAML::Node& n, const std::string& k) {
         i64 = int64_t(c.sampler.max_processes);
         r.integer(n, k, 16, 4'000'000, &i64);
         c.sampler.max_processes = uint64_t(i64);
       }},
      {"unwinder", [&](const YAML::Node& n, const std::string& k) {
         std::string v;
         r.string(n, k, &v, true);
         if (auto m = parse_unwinder(v)) c.sampler.unwinder = *m;
         else if (!v.empty()) r.error(n, k, "expected auto, tables or fp, got '" + v + "'");
       }},
      {"unwind_table_memory", [&](const YAML::Node& n, const std::string& k) {
         r.size(n, k, 1 << 20, 1ull << 34, &c.sampler.unwind_table_bytes);
       }},
      {"unwind_table_retention", [&](const YAML::Node& n, const std::string& k) {
         // A percentage: "25%" or 25.
         if (!r.scalar(n, k, "a percentage like 25%")) return;
         std::string v = n.Scalar();
         if (!v.empty() && v.back() == '%') v.pop_back();
         char* end = nullptr;
         double pct = std::strtod(v.c_str(), &end);
         if (v.empty() || *end || pct < 0 || pct > 90)
           r.error(n, k, "expected a percentage from 0% to 90%, got '" + n.Scalar() + "'");
         else c.sampler.unwind_table_retention = pct / 100.0;
       }},
      {"disable_kernel_features", [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsSequence()) {
           r.error(n, k, "expected a list of kernel features, e.g. [bpf_loop]");
           return;
         }
         for (size_t i = 0; i < n.size(); ++i) {
           std::string v;
           std::string key = k + "[" + std::to_string(i) + "]";
           r.string(n[i], key, &v, true);
           if (v.empty()) continue;
           if (!is_kernel_feature(v))
             r.error(n[i], key, "unknown kernel feature '" + v + "' (expected " + kernel_feature_list() + ")");
           else c.sampler.disable_kernel_features.push_back(v);
         }
       }},
  };
  std::map<std::string, H> debuginfod = {
      {"urls", [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsSequence()) {
           r.error(n, k, "expected a list of URLs");
           return;
         }
         for (size_t i = 0; i < n.size(); ++i) {
           std::string u;
           std::string key = k + "[" + std::to_string(i) + "]";
           r.string(n[i], key, &u, true);
           if (u.empty()) continue;
           if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
             r.error(n[i], key, "expected an http:// or https:// URL, got '" + u + "'");
           else c.symbolizer.debuginfod.urls.push_back(u);
         }
       }},
      {"cache_dir", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.symbolizer.debuginfod.cache_dir, true); }},
      {"timeout", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, std::chrono::seconds(1), std::chrono::minutes(10), &c.symbolizer.debuginfod.timeout);
       }},
  };
  std::map<std::string, H> symbolizer = {
      {"demangle", [&](const YAML::Node& n, const std::string& k) {
         // true/false, or the style: full, simplified (no parameters or
         // template arguments), none.
         if (!r.scalar(n, k, "full, simplified or none")) return;
         const std::string& v = n.Scalar();
         if (auto d = parse_demangle(v)) c.symbolizer.demangle = *d;
         else r.error(n, k, "expected full, simplified or none, got '" + v + "'");
       }},
      {"lines", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &c.symbolizer.lines); }},
      {"debug_dir", [&](const YAML::Node& n, const std::string& k) {
         // One directory or a list; added after the default /usr/lib/debug.
         if (n.IsSequence()) {
           for (size_t i = 0; i < n.size(); ++i) {
             std::string d;
             r.string(n[i], k + "[" + std::to_string(i) + "]", &d, true);
             if (!d.empty()) add_debug_dir(&c, d);
           }
           return;
         }
         std::string d;
         r.string(n, k, &d, true);
         if (!d.empty()) add_debug_dir(&c, d);
       }},
      {"perf_maps", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &c.symbolizer.perf_maps); }},
      {"debuginfod", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, debuginfod); }},
      {"cache_max_binaries", [&](const YAML::Node& n, const std::string& k) {
         i64 = int64_t(c.symbolizer.cache_max_binaries);
         r.integer(n, k, 8, 1'000'000, &i64);
         c.symbolizer.cache_max_binaries = uint64_t(i64);
       }},
      {"cache_max_bytes", [&](const YAML::Node& n, const std::string& k) { r.size(n, k, 1 << 20, 1ull << 40, &c.symbolizer.cache_max_bytes); }},
  };
  std::map<std::string, H> paths = {
      {"proc", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.paths.proc, true); }},
      {"sys", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.paths.sys, true); }},
  };
  std::map<std::string, H> metrics = {
      {"listen", [&](const YAML::Node& n, const std::string& k) {
         r.string(n, k, &c.metrics.listen, false);
         if (auto st = parse_listen_address(c.metrics.listen); !c.metrics.listen.empty() && !st)
           r.error(n, k, st.error().message);
       }},
  };
  std::map<std::string, H> kubernetes = {
      {"enabled", [&](const YAML::Node& n, const std::string& k) {
         if (!r.scalar(n, k, "true, false or auto")) return;
         const std::string& v = n.Scalar();
         using M = Config::Kubernetes::Mode;
         if (v == "auto") c.kubernetes.enabled = M::kAuto;
         else if (v == "true" || v == "yes" || v == "on") c.kubernetes.enabled = M::kOn;
         else if (v == "false" || v == "no" || v == "off") c.kubernetes.enabled = M::kOff;
         else r.error(n, k, "expected true, false or auto, got '" + v + "'");
       }},
      {"api_server", [&](const YAML::Node& n, const std::string& k) {
         r.string(n, k, &c.kubernetes.api_server, false);
         if (c.kubernetes.api_server.empty()) return;
         if (auto u = parse_server_url(c.kubernetes.api_server); !u) r.error(n, k, u.error().message);
       }},
      {"token_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.kubernetes.token_file, false); }},
      {"ca_file", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.kubernetes.ca_file, false); }},
      {"node_name", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.kubernetes.node_name, false); }},
  };
  std::map<std::string, H> off_cpu = {
      {"min_wait", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, Duration(0), std::chrono::hours(1), &c.off_cpu.min_wait);
       }},
      {"max_wait", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, Duration(0), std::chrono::hours(24), &c.off_cpu.max_wait);
       }},
      {"max_waiting_threads", [&](const YAML::Node& n, const std::string& k) {
         i64 = int64_t(c.off_cpu.max_waiting_threads);
         // 48 bytes a thread, preallocated in the kernel: 1M is 48 MiB.
         r.integer(n, k, 16, 1 << 20, &i64);
         c.off_cpu.max_waiting_threads = uint64_t(i64);
       }},
  };
  std::optional<YAML::Mark> server_mark;
  std::map<std::string, H> top = {
      {"frequency", [&](const YAML::Node& n, const std::string& k) {
         i64 = c.frequency_hz;
         r.integer(n, k, 1, 10000, &i64);
         c.frequency_hz = int(i64);
       }},
      {"interval", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, std::chrono::seconds(1), std::chrono::hours(1), &c.interval);
       }},
      {"log_level", [&](const YAML::Node& n, const std::string& k) {
         std::string s;
         r.string(n, k, &s, true);
         if (s.empty()) return;
         if (!log::parse_level(s, &c.log_level))
           r.error(n, k, "expected one of debug, info, warn, error, got '" + s + "'");
       }},
      {"labels", [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsMap()) {
           r.error(n, k, "expected a mapping of label names to values");
           return;
         }
         for (auto it = n.begin(); it != n.end(); ++it) {
           std::string name = it->first.Scalar();
           if (!valid_label_name(name) || name.rfind("__", 0) == 0) {
             r.error(it->first, k + "." + name,
                     "invalid label name (letters, digits and '_', not starting with a digit or '__')");
             continue;
           }
           if (!it->second.IsScalar()) {
             r.error(it->second, k + "." + name, "expected a string value");
             continue;
           }
           c.labels[name] = it->second.Scalar();
         }
       }},
      {"profiles", [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsSequence() || n.size() == 0) {
           r.error(n, k, "expected a list of profiles, e.g. [cpu, off_cpu]");
           return;
         }
         Config::Profiles p{false, false, false};
         bool ok = true;
         for (size_t i = 0; i < n.size(); ++i) {
           std::string v;
           std::string key = k + "[" + std::to_string(i) + "]";
           r.string(n[i], key, &v, true);
           if (v == "cpu") p.cpu = true;
           else if (v == "off_cpu" || v == "off-cpu") p.off_cpu = true;
           else if (v == "wall") p.wall = true;
           else {
             if (!v.empty()) r.error(n[i], key, "unknown profile '" + v + "' (expected cpu, off_cpu or wall)");
             ok = false;
           }
         }
         if (ok) c.profiles = p;
       }},
      {"off_cpu", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, off_cpu); }},
      {"output", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, output); }},
      {"sampler", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, sampler); }},
      {"symbolizer", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, symbolizer); }},
      {"paths", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, paths); }},
      {"server", [&](const YAML::Node& n, const std::string& k) {
         if (server_mark) {
           r.error(n, k, "use either server (one) or servers (a list), not both");
           return;
         }
         server_mark = n.Mark();
         c.servers.emplace_back();
         read_server(r, n, k, &c.servers.back());
       }},
      {"servers", [&](const YAML::Node& n, const std::string& k) {
         if (server_mark) {
           r.error(n, k, "use either server (one) or servers (a list), not both");
           return;
         }
         server_mark = n.Mark();
         if (!n.IsSequence()) {
           r.error(n, k, "expected a list of servers (each a mapping with url, api, ...)");
           return;
         }
         for (size_t i = 0; i < n.size(); ++i) {
           c.servers.emplace_back();
           read_server(r, n[i], k + "[" + std::to_string(i) + "]", &c.servers.back());
           // Names label the metrics: two servers must not share one.
           for (size_t j = 0; j + 1 < c.servers.size(); ++j)
             if (!c.servers.back().url.empty() &&
                 c.servers[j].display_name() == c.servers.back().display_name()) {
               r.error(n[i], k + "[" + std::to_string(i) + "].name",
                       "'" + c.servers.back().display_name() + "' is already the name of " + k +
                           "[" + std::to_string(j) + "]; give each server a distinct name");
               break;
             }
         }
       }},
      {"shutdown_timeout", [&](const YAML::Node& n, const std::string& k) {
         r.duration(n, k, Duration(0), std::chrono::minutes(10), &c.shutdown_timeout);
       }},
      {"metrics", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, metrics); }},
      {"kubernetes", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, kubernetes); }},
      {"relabel_configs", [&](const YAML::Node& n, const std::string& k) {
         auto rules = parse_relabel_configs(n, source);
         if (!rules) r.preformatted(rules.error().message);
         else c.relabel_configs = std::move(*rules);
       }},
  };
  r.walk(root, "", top);
  if (auto st = r.result(); !st) return st.error();
  if (auto st = validate_config(c); !st) return Error{source + ": " + st.error().message};
  return c;
}

Result<Config> load_config_file(const std::string& path) {
  // A config is a few KiB; a larger file is a mistake (a log, a binary),
  // refused before yaml-cpp holds all of it.
  constexpr std::streamsize kMaxConfigBytes = 1 << 20;
  std::ifstream f(path);
  if (!f) return Errorf("cannot read config file %s: %s", path.c_str(), std::strerror(errno));
  std::string text(size_t(kMaxConfigBytes) + 1, '\0');
  f.read(text.data(), kMaxConfigBytes + 1);
  text.resize(size_t(f.gcount()));
  if (f.gcount() > kMaxConfigBytes)
    return Errorf("%s: larger than 1MiB; is it the config file?", path.c_str());
  return parse_config(text, path);
}

void add_debug_dir(Config* c, const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  for (const auto& have : c->symbolizer.debug_dirs)
    if (have == d) return;
  c->symbolizer.debug_dirs.push_back(d);
}

bool is_kernel_feature(const std::string& name) {
  for (const char* f : kKernelFeatureNames)
    if (name == f) return true;
  return false;
}

std::string kernel_feature_list() {
  std::string out;
  for (const char* f : kKernelFeatureNames) out += std::string(out.empty() ? "" : " or ") + f;
  return out;
}

Status validate_config(const Config& c) {
  if (c.frequency_hz < 1 || c.frequency_hz > 10000)
    return Errorf("frequency: %d is out of range [1, 10000]", c.frequency_hz);
  if (c.interval < std::chrono::seconds(1) || c.interval > std::chrono::hours(1))
    return Errorf("interval: %s is out of range [1s, 1h]", format_duration(c.interval).c_str());
  if (!c.profiles.cpu && !c.profiles.off_cpu && !c.profiles.wall)
    return Errorf("profiles: none named; expected cpu, off_cpu or wall");
  if (c.off_cpu.min_wait < Duration(0) || c.off_cpu.min_wait > std::chrono::hours(1))
    return Errorf("off_cpu.min_wait: %s is out of range [0s, 1h]", format_duration(c.off_cpu.min_wait).c_str());
  if (c.off_cpu.max_wait < Duration(0) || c.off_cpu.max_wait > std::chrono::hours(24))
    return Errorf("off_cpu.max_wait: %s is out of range [0s, 24h]", format_duration(c.off_cpu.max_wait).c_str());
  if ((c.off_cpu.min_wait.count() || c.off_cpu.max_wait.count()) && !c.profiles.off_cpu && !c.profiles.wall)
    return Errorf("off_cpu.%s: set, but profiles has neither off_cpu nor wall",
                  c.off_cpu.min_wait.count() ? "min_wait" : "max_wait");
  if (c.off_cpu.max_wait.count() && c.off_cpu.max_wait < c.off_cpu.min_wait)
    return Errorf("off_cpu.max_wait: %s is below off_cpu.min_wait (%s)",
                  format_duration(c.off_cpu.max_wait).c_str(), format_duration(c.off_cpu.min_wait).c_str());
  if (c.off_cpu.max_waiting_threads < 16 || c.off_cpu.max_waiting_threads > (1u << 20))
    return Errorf("off_cpu.max_waiting_threads: %llu is out of range [16, 1048576]",
                  (unsigned long long)c.off_cpu.max_waiting_threads);
  if (!c.sampler.kernel_stacks && !c.sampler.user_stacks)
    return Errorf("sampler: kernel_stacks and user_stacks are both false; nothing to sample");
  if (c.output.directory.empty()) return Errorf("output.directory: must not be empty");
  for (const auto& d : c.symbolizer.debug_dirs)
    if (d.empty() || d[0] != '/')
      return Errorf("symbolizer.debug_dir: '%s' is not an absolute path", d.c_str());
  for (const auto& f : c.sampler.disable_kernel_features)
    if (!is_kernel_feature(f))
      return Errorf("sampler.disable_kernel_features: unknown kernel feature '%s' (expected %s)",
                    f.c_str(), kernel_feature_list().c_str());
  for (size_t i = 0; i < c.servers.size(); ++i) {
    if (auto st = validate_server(c.servers[i]); !st)
      return Errorf("servers[%zu].%s", i, st.error().message.c_str());
    for (size_t j = 0; j < i; ++j)
      if (c.servers[j].display_name() == c.servers[i].display_name())
        return Errorf("servers[%zu].name: '%s' is already the name of servers[%zu]", i,
                      c.servers[i].display_name().c_str(), j);
  }
  if (!c.metrics.listen.empty())
    if (auto a = parse_listen_address(c.metrics.listen); !a)
      return Errorf("metrics.listen: %s", a.error().message.c_str());
  if (c.shutdown_timeout < Duration(0) || c.shutdown_timeout > std::chrono::minutes(10))
    return Errorf("shutdown_timeout: %s is out of range [0s, 10m]",
                  format_duration(c.shutdown_timeout).c_str());
  if (!c.kubernetes.api_server.empty())
    if (auto u = parse_server_url(c.kubernetes.api_server); !u)
      return Errorf("kubernetes.api_server: %s", u.error().message.c_str());
  for (const auto* f : {&c.kubernetes.token_file, &c.kubernetes.ca_file, &c.kubernetes.node_name})
    for (char ch : *f)
      if (ch == '\n' || ch == '\0')
        return Errorf("kubernetes: token_file, ca_file and node_name must not contain line breaks");
  return {};
}

const char* kubernetes_mode_name(Config::Kubernetes::Mode m) {
  switch (m) {
    case Config::Kubernetes::Mode::kOn: return "true";
    case Config::Kubernetes::Mode::kOff: return "false";
    case Config::Kubernetes::Mode::kAuto: break;
  }
  return "auto";
}

bool kubernetes_enabled(const Config& c, GetEnv env) {
  if (!env) env = [](const char* name) -> const char* { return std::getenv(name); };
  switch (c.kubernetes.enabled) {
    case Config::Kubernetes::Mode::kOn: return true;
    case Config::Kubernetes::Mode::kOff: return false;
    case Config::Kubernetes::Mode::kAuto: break;
  }
  const char* host = env("KUBERNETES_SERVICE_HOST");
  return !c.kubernetes.api_server.empty() || (host && *host);
}

std::string kubernetes_node_name(const Config& c, GetEnv env) {
  if (!c.kubernetes.node_name.empty()) return c.kubernetes.node_name;
  if (!env) env = [](const char* name) -> const char* { return std::getenv(name); };
  const char* v = env("NODE_NAME");
  return v ? v : "";
}

namespace {

// One relabel rule as YAML, listing only what differs from the defaults
// (Prometheus rejects e.g. a replacement on a labeldrop rule).
void render_rule(std::ostringstream& os, const RelabelRule& r) {
  os << "  - action: " << relabel_action_name(r.action) << "\n";
  if (!r.source_labels.empty()) {
    os << "    source_labels: [";
    for (size_t i = 0; i < r.source_labels.size(); ++i)
      os << (i ? ", " : "") << yaml_quote(r.source_labels[i]);
    os << "]\n";
  }
  if (r.separator != ";") os << "    separator: " << yaml_quote(r.separator) << "\n";
  if (r.regex_text != "(.*)") os << "    regex: " << yaml_quote(r.regex_text) << "\n";
  if (!r.target_label.empty()) os << "    target_label: " << yaml_quote(r.target_label) << "\n";
  if (r.replacement != "$1") os << "    replacement: " << yaml_quote(r.replacement) << "\n";
  if (r.action == RelabelAction::kHashMod) os << "    modulus: " << r.modulus << "\n";
}

}  // namespace

std::string render_config(const Config& c) {
  std::ostringstream os;
  os << "# Ember configuration. Every key is optional; shown here with its value.\n"
     << "# Sampling frequency per CPU, in Hz.\n"
     << "frequency: " << c.frequency_hz << "\n"
     << "# How often profiles are aggregated and written or sent.\n"
     << "interval: " << format_duration(c.interval) << "\n"
     << "# debug, info, warn or error.\n"
     << "log_level: " << log::level_name(c.log_level) << "\n"
     << "# Which profiles to take, each shipped as its own profile: cpu (where\n"
     << "# threads run), off_cpu (where they wait, by time switched out), wall\n"
     << "# (per thread, both added up).\n"
     << "profiles: [" << [&] {
          std::string list;
          if (c.profiles.cpu) list += "cpu";
          if (c.profiles.off_cpu) list += std::string(list.empty() ? "" : ", ") + "off_cpu";
          if (c.profiles.wall) list += std::string(list.empty() ? "" : ", ") + "wall";
          return list;
        }() << "]\n"
     << "off_cpu:\n"
     << "  # Waits left out (and counted): shorter than min_wait, longer than\n"
     << "  # max_wait (e.g. 1s leaves out pool threads parked until work came).\n"
     << "  # 0s: no bound.\n"
     << "  min_wait: " << format_duration(c.off_cpu.min_wait) << "\n"
     << "  max_wait: " << format_duration(c.off_cpu.max_wait) << "\n"
     << "  # Threads switched out at once whose waits can be measured.\n"
     << "  max_waiting_threads: " << c.off_cpu.max_waiting_threads << "\n";
  if (!c.labels.empty()) {
    os << "# Added to every profile.\nlabels:\n";
    for (const auto& [k, v] : c.labels) os << "  " << k << ": \"" << v << "\"\n";
  } else {
    os << "# Static labels added to every profile, e.g. {env: prod}.\nlabels: {}\n";
  }
  os << "output:\n"
     << "  # Where profiles go when no server is configured: one .pb.gz per\n"
     << "  # service per interval.\n"
     << "  directory: " << c.output.directory << "\n"
     << "  # The oldest files are deleted past this total.\n"
     << "  max_bytes: " << format_size(c.output.max_bytes) << "\n"
     << "sampler:\n"
     << "  # BPF ring buffer between the kernel and the agent (a power of two);\n"
     << "  # auto: half a second of the largest samples from every CPU.\n"
     << "  ring_buffer_size: "
     << (c.sampler.ring_buffer_bytes ? format_size(c.sampler.ring_buffer_bytes) : "auto") << "\n"
     << "  kernel_stacks: " << (c.sampler.kernel_stacks ? "true" : "false") << "\n"
     << "  user_stacks: " << (c.sampler.user_stacks ? "true" : "false") << "\n"
     << "  # Count time the CPUs spend idle.\n"
     << "  include_idle: " << (c.sampler.include_idle ? "true" : "false") << "\n"
     << "  # Processes whose mappings are remembered at once.\n"
     << "  max_processes: " << c.sampler.max_processes << "\n"
     << "  # User stacks: auto (unwind tables where the kernel allows), tables, fp.\n"
     << "  unwinder: " << unwinder_name(c.sampler.unwinder) << "\n"
     << "  # Kernel memory for unwind tables, preallocated.\n"
     << "  unwind_table_memory: " << format_size(c.sampler.unwind_table_bytes) << "\n"
     << "  # Share of that memory binaries no process maps may keep (reused by\n"
     << "  # the next process that maps them).\n"
     << "  unwind_table_retention: " << int(c.sampler.unwind_table_retention * 100 + 0.5) << "%\n"
     << "  # Kernel features not to use even where the kernel has them.\n"
     << "  disable_kernel_features: [" << [&] {
          std::string list;
          for (const auto& f : c.sampler.disable_kernel_features) list += (list.empty() ? "" : ", ") + f;
          return list;
        }() << "]\n"
     << "symbolizer:\n"
     << "  # full, simplified (no parameters or template arguments) or none.\n"
     << "  demangle: "
     << demangle_name(c.symbolizer.demangle) << "\n"
     << "  # file:line and inlined frames from DWARF; false: function names only.\n"
     << "  lines: " << (c.symbolizer.lines ? "true" : "false") << "\n"
     << "  # Where separate debug files live (.build-id/, debuglink paths).\n"
     << "  debug_dir: [" << [&] {
          std::string list;
          for (const auto& d : c.symbolizer.debug_dirs) list += (list.empty() ? "" : ", ") + yaml_quote(d);
          return list;
        }() << "]\n"
     << "  # Name JIT code from /tmp/perf-PID.map.\n"
     << "  perf_maps: " << (c.symbolizer.perf_maps ? "true" : "false") << "\n"
     << "  # Fetch missing debug files by build-id; off without urls.\n"
     << "  debuginfod:\n"
     << "    urls: [";
  for (size_t i = 0; i < c.symbolizer.debuginfod.urls.size(); ++i)
    os << (i ? ", " : "") << yaml_quote(c.symbolizer.debuginfod.urls[i]);
  os << "]\n"
     << "    cache_dir: " << yaml_quote(c.symbolizer.debuginfod.cache_dir) << "\n"
     << "    timeout: " << format_duration(c.symbolizer.debuginfod.timeout) << "\n"
     << "  # Parsed binaries kept in memory (least recently used go first).\n"
     << "  cache_max_binaries: " << c.symbolizer.cache_max_binaries << "\n"
     << "  cache_max_bytes: " << format_size(c.symbolizer.cache_max_bytes) << "\n"
     << "paths:\n"
     << "  # The host's /proc and /sys (e.g. /host/proc inside a container).\n"
     << "  proc: " << c.paths.proc << "\n"
     << "  sys: " << c.paths.sys << "\n";
  if (c.servers.empty()) {
    os << "# Profiling servers (Pyroscope) every profile is sent to; none: profiles\n"
       << "# are written to output.directory.\n"
       << "servers: []\n";
  } else {
    os << "# Profiling servers (Pyroscope); every profile goes to each. Secrets are\n"
       << "# never printed.\n"
       << "servers:\n";
  }
  for (const auto& s : c.servers) {
    os << "  - url: " << yaml_quote(s.url) << "\n"
       << "    name: " << yaml_quote(s.display_name()) << "\n"
       << "    # push (Grafana Pyroscope's Connect API) or ingest (legacy /ingest).\n"
       << "    api: " << api_name(s.api) << "\n";
    if (!s.bearer_token.empty()) os << "    bearer_token: " << yaml_quote(kRedacted) << "\n";
    if (!s.bearer_token_file.empty())
      os << "    bearer_token_file: " << yaml_quote(s.bearer_token_file) << "\n";
    if (s.has_basic_auth) {
      os << "    basic_auth:\n"
         << "      username: " << yaml_quote(s.basic_auth.username) << "\n";
      if (!s.basic_auth.password.empty())
        os << "      password: " << yaml_quote(kRedacted) << "\n";
      if (!s.basic_auth.password_file.empty())
        os << "      password_file: " << yaml_quote(s.basic_auth.password_file) << "\n";
    }
    if (!s.tenant_id.empty()) os << "    tenant_id: " << yaml_quote(s.tenant_id) << "\n";
    if (!s.headers.empty()) {
      // Header values often carry credentials (API keys, cookies): never shown.
      os << "    headers:\n";
      for (const auto& [k, v] : s.headers) os << "      " << k << ": " << yaml_quote(kRedacted) << "\n";
    }
    const auto& t = s.tls;
    if (!t.ca_file.empty() || !t.cert_file.empty() || !t.server_name.empty() ||
        t.insecure_skip_verify) {
      os << "    tls:\n";
      if (!t.ca_file.empty()) os << "      ca_file: " << yaml_quote(t.ca_file) << "\n";
      if (!t.cert_file.empty()) os << "      cert_file: " << yaml_quote(t.cert_file) << "\n";
      if (!t.key_file.empty()) os << "      key_file: " << yaml_quote(t.key_file) << "\n";
      if (!t.server_name.empty()) os << "      server_name: " << yaml_quote(t.server_name) << "\n";
      os << "      insecure_skip_verify: " << (t.insecure_skip_verify ? "true" : "false") << "\n";
    }
    os << "    # Per request, connecting included.\n"
       << "    timeout: " << format_duration(s.timeout) << "\n"
       << "    # Unsent profiles kept while the server is unreachable; past this the\n"
       << "    # oldest are dropped (and counted).\n"
       << "    queue_max_bytes: " << format_size(s.queue_max_bytes) << "\n"
       << "    # Retries back off exponentially, with jitter, between these.\n"
       << "    min_backoff: " << format_duration(s.min_backoff) << "\n"
       << "    max_backoff: " << format_duration(s.max_backoff) << "\n";
  }
  os << "# On SIGTERM, how long to keep sending what is queued before exiting.\n"
     << "shutdown_timeout: " << format_duration(c.shutdown_timeout) << "\n"
     << "metrics:\n"
     << "  # Prometheus text at /metrics and health at /healthz; \"\" disables it.\n"
     << "  listen: " << yaml_quote(c.metrics.listen) << "\n";
  const auto& k = c.kubernetes;
  os << "kubernetes:\n"
     << "  # Pod labels from the API server: true, false, or auto (on inside a pod,\n"
     << "  # or when api_server is set).\n"
     << "  enabled: " << kubernetes_mode_name(k.enabled) << "\n"
     << "  # Blank: the in-cluster defaults (service account token and CA,\n"
     << "  # $KUBERNETES_SERVICE_HOST, $NODE_NAME). The token itself is never shown.\n"
     << "  api_server: " << yaml_quote(k.api_server) << "\n"
     << "  token_file: " << yaml_quote(k.token_file) << "\n"
     << "  ca_file: " << yaml_quote(k.ca_file) << "\n"
     << "  node_name: " << yaml_quote(k.node_name) << "\n";
  if (c.relabel_configs.empty()) {
    os << "# Prometheus relabel_config rules over the discovered __meta_* labels and\n"
       << "# the defaults (service_name, namespace, pod, container, node).\n"
       << "relabel_configs: []\n";
  } else {
    os << "# Prometheus relabel_config rules, in order.\n"
       << "relabel_configs:\n";
    for (const auto& r : c.relabel_configs) render_rule(os, r);
  }
  return os.str();
}

}  // namespace ember
