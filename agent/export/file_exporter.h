// Exporters that write profiles to local files.
//
// DirectoryExporter is the agent's "no server configured" sink: one
// gzip-compressed pprof per series per interval, written atomically (temp
// file + rename) by its own thread so a slow disk never stalls sampling.
// The directory is bounded by `max_bytes`: the oldest Ember files go first.
//
// write_profile_file() is `ember record`'s writer: the format follows the
// output file's extension.
#pragma once

#include <deque>
#include <string>
#include <utility>

#include "agent/export/pprof.h"
#include "agent/model/stages.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/result.h"
#include "common/worker_queue.h"

namespace ember {

enum class OutputFormat { kPprof, kFolded, kSvg, kHtml };

Result<OutputFormat> output_format_for(const std::string& path);

struct WriteOptions {
  PprofOptions pprof;
  std::string title;  // empty: the event's ("Ember CPU profile")
  std::string subtitle;
};

// Writes `profile` to `path` in `format`, atomically.
Status write_profile_file(const Profile& profile, const std::string& path, OutputFormat format,
                          const WriteOptions& opts);
Status write_file_atomic(const std::string& path, const std::string& data);

class DirectoryExporter final : public Exporter {
 public:
  struct Options {
    std::string directory;
    uint64_t max_bytes = uint64_t(1) << 30;
    size_t max_queued_batches = 64;
  };
  static Result<std::unique_ptr<DirectoryExporter>> create(Options opts, Metrics& metrics);
  ~DirectoryExporter() override;

  void export_batch(ProfileBatch&& batch) override;
  void flush() override;  // blocks until every queued batch is written

  // File name for one profile: <service>-<event>-<UTC time>.pb.gz, sanitized.
  static std::string file_name_for(const Profile& p);

 private:
  DirectoryExporter(Options opts, Metrics& metrics);
  void write_batch(const ProfileBatch& batch);
  void enforce_retention();
  void scan_directory();

  Options opts_;
  // The profiles in the directory, oldest first, with their sizes (writing
  // thread only). Scanned once, then kept current as files are written and
  // removed, so a batch costs no directory scan: a scan per batch grows with
  // the directory (thousands of files at the default 1 GiB). Rescanned every
  // kRescanBatches batches to notice files others removed or added.
  static constexpr size_t kRescanBatches = 360;
  std::deque<std::pair<std::string, uint64_t>> files_;
  uint64_t files_bytes_ = 0;
  size_t batches_since_scan_ = kRescanBatches;
  Counter& written_;
  Counter& bytes_;
  Counter& failures_;
  Counter& dropped_;
  WorkerQueue<ProfileBatch> queue_;  // the writing thread; last: starts after the rest
};

}  // namespace ember
