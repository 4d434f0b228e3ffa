#include "agent/export/file_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <tuple>
#include <vector>

#include "agent/export/flamegraph.h"
#include "agent/export/folded.h"
#include "common/drops.h"
#include "common/log.h"

namespace ember {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<OutputFormat> output_format_for(const std::string& path) {
  if (ends_with(path, ".pb.gz") || ends_with(path, ".pprof")) return OutputFormat::kPprof;
  if (ends_with(path, ".folded") || ends_with(path, ".txt")) return OutputFormat::kFolded;
  if (ends_with(path, ".svg")) return OutputFormat::kSvg;
  if (ends_with(path, ".html") || ends_with(path, ".htm")) return OutputFormat::kHtml;
  return Errorf("cannot tell the output format of '%s': use .pb.gz (pprof), .folded or .txt "
                "(folded stacks), .svg or .html (flamegraph)",
                path.c_str());
}

Status write_file_atomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Errorf("cannot create %s: %s", tmp.c_str(), std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return Errorf("cannot write %s: %s", tmp.c_str(), std::strerror(err));
    }
    off += size_t(n);
  }
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Errorf("cannot sync %s: %s", tmp.c_str(), std::strerror(err));
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Errorf("cannot rename %s to %s: %s", tmp.c_str(), path.c_str(), std::strerror(err));
  }
  return {};
}

Status write_profile_file(const Profile& profile, const std::string& path, OutputFormat format,
                          const WriteOptions& opts) {
  switch (format) {
    case OutputFormat::kPprof: {
      auto data = encode_pprof_gz(profile, opts.pprof);
      if (!data.ok()) return data.error();
      return write_file_atomic(path, *data);
    }
    case OutputFormat::kFolded:
      return write_file_atomic(path, render_folded(fold_profile(profile)));
    case OutputFormat::kSvg:
    case OutputFormat::kHtml: {
      FlamegraphOptions fo;
      fo.subtitle = opts.subtitle;
      fo.title = opts.title.empty() ? std::string(event_type(profile.event).title) : opts.title;
      if (event_type(profile.event).periodic) {
        fo.ns_per_count = profile.period_ns;
      } else {
        fo.count_name = "us";  // fold_profile's unit for measured events
        fo.ns_per_count = 1000;
      }
      auto stacks = fold_profile(profile);
      return write_file_atomic(path, format == OutputFormat::kSvg
                                         ? render_flamegraph_svg(stacks, fo)
                                         : render_flamegraph_html(stacks, fo));
    }
  }
  return Errorf("unknown output format");
}

Result<std::unique_ptr<DirectoryExporter>> DirectoryExporter::create(Options opts,
                                                                     Metrics& metrics) {
  if (opts.directory.empty()) return Errorf("output.directory is empty");
  std::error_code ec;
  fs::create_directories(opts.directory, ec);
  if (ec)
    return Errorf("cannot create output directory %s: %s", opts.directory.c_str(),
                  ec.message().c_str());
  if (::access(opts.directory.c_str(), W_OK) != 0)
    return Errorf("output directory %s is not writable: %s", opts.directory.c_str(),
                  std::strerror(errno));
  return std::unique_ptr<DirectoryExporter>(new DirectoryExporter(std::move(opts), metrics));
}

DirectoryExporter::DirectoryExporter(Options opts, Metrics& metrics)
    : opts_(std::move(opts)),
      written_(metrics.counter("ember_profiles_written_total", "", "Profiles written to files")),
      bytes_(metrics.counter("ember_profile_bytes_written_total", "", "Bytes of profiles written")),
      failures_(metrics.counter("ember_profile_write_failures_total", "",
                                "Profiles that could not be written")),
      dropped_(drop_counter(metrics, Drop::kSampleExportQueueFull)),
      queue_(opts_.max_queued_batches, [this](ProfileBatch&& b) { write_batch(b); },
             // The disk cannot keep up: the oldest batch goes, counted.
             [this](ProfileBatch&& b) {
               for (const auto& p : b.profiles) dropped_.add(p.total_count());
             },
             "ember-files") {}

// The queue's destructor writes what is still queued, then joins.
DirectoryExporter::~DirectoryExporter() = default;

void DirectoryExporter::export_batch(ProfileBatch&& batch) { queue_.push(std::move(batch)); }

void DirectoryExporter::flush() { queue_.wait_idle(); }

std::string DirectoryExporter::file_name_for(const Profile& p) {
  std::string service = p.labels ? p.labels->get("service_name") : "";
  if (service.empty()) service = "profile";
  for (char& c : service) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) c = '_';
  }
  if (service[0] == '.') service[0] = '_';
  time_t secs = time_t(p.start_time_ns / 1000000000ull);
  tm t{};
  gmtime_r(&secs, &t);
  char when[32];
  std::strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &t);
  return service + "-" + std::string(event_type(p.event).name) + "-" + when + ".pb.gz";
}

void DirectoryExporter::write_batch(const ProfileBatch& batch) {
  for (const auto& p : batch.profiles) {
    const std::string name = file_name_for(p);
    const std::string stem = name.substr(0, name.size() - std::string(".pb.gz").size());
    std::string path = opts_.directory + "/" + name;
    // Two series may sanitize to the same name within one second.
    for (int n = 1; fs::exists(path); ++n)
      path = opts_.directory + "/" + stem + "-" + std::to_string(n) + ".pb.gz";
    // The file name carries only service_name; the series' full label set
    // (namespace, pod, relabeled labels, ...) goes in a pprof comment, which
    // `go tool pprof -raw` and `-comments` show.
    PprofOptions po;
    if (p.labels) po.comments.push_back("labels: " + p.labels->to_string());
    auto data = encode_pprof_gz(p, po);
    Status st = data.ok() ? write_file_atomic(path, *data) : Status(data.error());
    if (!st) {
      failures_.add();
      EMBER_WARN_LIMITED("%s", st.error().message.c_str());
      continue;
    }
    written_.add();
    bytes_.add(data->size());
    if (batches_since_scan_ < kRescanBatches) {  // else the scan below finds it
      files_.emplace_back(path, data->size());
      files_bytes_ += data->size();
    }
  }
  enforce_retention();
}

void DirectoryExporter::scan_directory() {
  std::vector<std::tuple<fs::file_time_type, std::string, uint64_t>> found;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(opts_.directory, ec)) {
    if (!ent.is_regular_file(ec) || !ends_with(ent.path().filename().string(), ".pb.gz")) continue;
    uint64_t size = ent.file_size(ec);
    if (ec) continue;
    found.emplace_back(ent.last_write_time(ec), ent.path().string(), size);
  }
  std::sort(found.begin(), found.end());
  files_.clear();
  files_bytes_ = 0;
  for (auto& [_, path, size] : found) {
    files_.emplace_back(std::move(path), size);
    files_bytes_ += size;
  }
  batches_since_scan_ = 0;
}

void DirectoryExporter::enforce_retention() {
  if (batches_since_scan_ >= kRescanBatches) scan_directory();
  ++batches_since_scan_;
  std::error_code ec;
  while (files_bytes_ > opts_.max_bytes && !files_.empty()) {
    auto [path, size] = std::move(files_.front());
    files_.pop_front();
    fs::remove(path, ec);  // gone already: its bytes are gone too
    files_bytes_ -= size;
  }
}

}  // namespace ember
