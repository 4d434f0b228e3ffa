// Config: everything a user can set, parsed once at the edge (YAML file,
// then command-line overrides) into one validated, immutable value.
//
// Errors name the file, line and key, e.g.
//   ember.yaml:4: sampler.ring_buffer_size: expected a size like 8MiB, got 'big'
// Every error in the file is reported at once, not just the first.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/result.h"

namespace ember {

struct Config {
  int frequency_hz = 100;
  Duration interval = std::chrono::seconds(10);
  std::string log_level = "info";
  // Static labels added to every profile.
  std::vector<std::pair<std::string, std::string>> labels;

  struct Output {
    std::string directory = "/var/lib/ember/profiles";
    uint64_t max_bytes = uint64_t(1) << 30;
  } output;

  struct Sampler {
    uint64_t ring_buffer_bytes = 0;  // 0: sized from CPUs and frequency
    bool kernel_stacks = true;
    bool user_stacks = true;
    bool include_idle = false;
    uint64_t max_processes = 65536;
  } sampler;

  struct Symbolizer {
    bool demangle = true;
    uint64_t cache_max_binaries = 4096;
    uint64_t cache_max_bytes = uint64_t(512) << 20;
  } symbolizer;

  // Roots of the host's pseudo-filesystems; in a container these are often
  // mounted elsewhere (e.g. /host/proc).
  struct Paths {
    std::string proc = "/proc";
    std::string sys = "/sys";
  } paths;
};

// Parses YAML text; `source` names it in errors (usually the file path).
Result<Config> parse_config(const std::string& yaml, const std::string& source);
Result<Config> load_config_file(const std::string& path);

// Checks cross-field rules and ranges; called after overrides are applied.
Status validate_config(const Config& c);

// Parses sizes as users write them: 4096, 64KiB, 8MiB, 1GiB (K/M/G also
// mean binary multiples).
Result<uint64_t> parse_size(const std::string& text);
std::string format_size(uint64_t bytes);

// A commented YAML rendering of `c` (for --print-config and the packaged
// default file).
std::string render_config(const Config& c);

}  // namespace ember
