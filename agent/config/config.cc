#include "agent/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
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
  static size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  }
  static std::string closest(const std::string& key, const std::map<std::string, Handler>& h) {
    std::string best;
    size_t best_d = 3;  // suggest only near misses
    for (const auto& [k, _] : h) {
      size_t d = edit_distance(key, k);
      if (d < best_d) {
        best_d = d;
        best = k;
      }
    }
    return best;
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

}  // namespace

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

  Reader r(source);
  using H = Reader::Handler;
  int64_t i64 = 0;
  std::map<std::string, H> output = {
      {"directory", [&](const YAML::Node& n, const std::string& k) { r.string(n, k, &c.output.directory, true); }},
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
  };
  std::map<std::string, H> symbolizer = {
      {"demangle", [&](const YAML::Node& n, const std::string& k) { r.boolean(n, k, &c.symbolizer.demangle); }},
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
         if (s != "debug" && s != "info" && s != "warn" && s != "error")
           r.error(n, k, "expected one of debug, info, warn, error, got '" + s + "'");
         else c.log_level = s;
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
           c.labels.emplace_back(name, it->second.Scalar());
         }
       }},
      {"output", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, output); }},
      {"sampler", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, sampler); }},
      {"symbolizer", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, symbolizer); }},
      {"paths", [&](const YAML::Node& n, const std::string& k) { r.walk(n, k, paths); }},
  };
  r.walk(root, "", top);
  if (auto st = r.result(); !st) return st.error();
  if (auto st = validate_config(c); !st) return Error{source + ": " + st.error().message};
  return c;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Errorf("cannot read config file %s: %s", path.c_str(), std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

Status validate_config(const Config& c) {
  if (c.frequency_hz < 1 || c.frequency_hz > 10000)
    return Errorf("frequency: %d is out of range [1, 10000]", c.frequency_hz);
  if (c.interval < std::chrono::seconds(1) || c.interval > std::chrono::hours(1))
    return Errorf("interval: %s is out of range [1s, 1h]", format_duration(c.interval).c_str());
  if (!c.sampler.kernel_stacks && !c.sampler.user_stacks)
    return Errorf("sampler: kernel_stacks and user_stacks are both false; nothing to sample");
  if (c.output.directory.empty()) return Errorf("output.directory: must not be empty");
  return {};
}

std::string render_config(const Config& c) {
  std::ostringstream os;
  os << "# Ember configuration. Every key is optional; shown here with its value.\n"
     << "# Sampling frequency per CPU, in Hz.\n"
     << "frequency: " << c.frequency_hz << "\n"
     << "# How often profiles are aggregated and written or sent.\n"
     << "interval: " << format_duration(c.interval) << "\n"
     << "# debug, info, warn or error.\n"
     << "log_level: " << c.log_level << "\n";
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
     << "symbolizer:\n"
     << "  demangle: " << (c.symbolizer.demangle ? "true" : "false") << "\n"
     << "  # Parsed binaries kept in memory (least recently used go first).\n"
     << "  cache_max_binaries: " << c.symbolizer.cache_max_binaries << "\n"
     << "  cache_max_bytes: " << format_size(c.symbolizer.cache_max_bytes) << "\n"
     << "paths:\n"
     << "  # The host's /proc and /sys (e.g. /host/proc inside a container).\n"
     << "  proc: " << c.paths.proc << "\n"
     << "  sys: " << c.paths.sys << "\n";
  return os.str();
}

}  // namespace ember
