// StackProfile: a profile read back from a file (pprof, gzipped or not, or
// folded stacks), reduced to what summarizing and comparing need: root-first
// stacks of frame names, each with its value and, when the file says, the
// number of samples behind it. `ember report` and `ember diff` read their
// inputs through here.
//
// The files come from anywhere (a CI artifact, a Pyroscope export), so the
// readers bound what they decompress and expand, check every id and index,
// and fail with one line naming what is wrong, never with a partial profile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ember {

struct StackProfile {
  std::string format;       // "pprof" or "folded"
  std::string sample_type;  // "cpu", "off_cpu", "samples", ... (folded: "samples")
  std::string unit;         // "nanoseconds", "count", ... (folded: "count")
  // Names of frames, each stored once; stacks refer to them by index.
  std::vector<std::string> names;
  struct Stack {
    std::vector<uint32_t> frames;  // indices into `names`, outermost caller first
    int64_t value = 0;             // in `unit`
    int64_t samples = 0;           // how many samples made it up (see samples_known)
  };
  std::vector<Stack> stacks;  // identical stacks merged
  // True when `samples` came from the file: a samples/count sample type, or the
  // value divided by a sampling period. Otherwise each unit of value is taken as
  // one sample (folded stacks count samples).
  bool samples_known = false;

  int64_t total_value() const;
  int64_t total_samples() const;
};

struct ProfileReadOptions {
  // pprof: the sample type to read, by name ("cpu", "samples"); empty for the
  // file's default (its default_sample_type, else the last, as pprof does).
  std::string sample_type;
  // Bounds on hostile input. Bytes after gunzip; pprof messages (samples,
  // locations, lines, functions, mappings, strings: protobuf keeps each as an
  // object of about 100 bytes, however few bytes it took in the file); and,
  // over all samples before identical stacks are merged, frames (inlined
  // ones included) and the bytes of their names, which is what a folded file
  // or a diff spells out. Names are cut at 4 KiB. So a file cannot make the
  // reader hold much more than a few times max_bytes, whatever it says.
  size_t max_bytes = size_t(256) << 20;
  size_t max_messages = 8'000'000;
  size_t max_frames = 50'000'000;
  size_t max_frame_bytes = size_t(1) << 30;
};

// Sniffs the format: gzip is inflated first (once); bytes with control
// characters other than tab, CR and LF are pprof, the rest folded text.
// Frame names come back printable: control characters are spaces.
Result<StackProfile> read_profile(std::string_view bytes, const ProfileReadOptions& opts = {});
Result<StackProfile> read_pprof(std::string_view bytes, const ProfileReadOptions& opts = {});
Result<StackProfile> read_folded(std::string_view text, const ProfileReadOptions& opts = {});
// Reads a file; "-" is standard input. Errors name the file.
Result<StackProfile> read_profile_file(const std::string& path, const ProfileReadOptions& opts = {});

}  // namespace ember
