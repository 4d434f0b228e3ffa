// pprof encoding of a Profile: the format every profiling server and
// `go tool pprof` read. Sample types follow the profile's event: samples/count
// and <event>/<unit> (cpu/nanoseconds, off_cpu/nanoseconds, ...), the latter
// the default; for a sampled event the period is 1e9/frequency of its unit.
#pragma once

#include <string>

#include "agent/model/types.h"
#include "common/result.h"

namespace perftools::profiles {
class Profile;
}

namespace ember {

struct PprofOptions {
  // Put the process id and thread name on each sample as pprof labels.
  bool sample_labels = true;
  // Extra notes for viewers (e.g. the command line that recorded it).
  std::vector<std::string> comments;
};

// Builds the pprof message (uncompressed).
void build_pprof(const Profile& profile, const PprofOptions& opts,
                 perftools::profiles::Profile* out);
// Serialized and gzip-compressed, as pprof files and servers expect.
// Fails only when protobuf or zlib does (out of memory).
Result<std::string> encode_pprof_gz(const Profile& profile, const PprofOptions& opts = {});

Result<std::string> gzip_compress(const std::string& data);
Result<std::string> gzip_decompress(const std::string& data);

}  // namespace ember
