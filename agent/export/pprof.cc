#include "agent/export/pprof.h"

#include <zlib.h>

#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>

#include "profile.pb.h"

namespace ember {
namespace pb = perftools::profiles;

namespace {

class StringTable {
 public:
  explicit StringTable(pb::Profile* p) : p_(p) { index(""); }
  int64_t index(const std::string& s) {
    auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
    int64_t id = p_->string_table_size();
    p_->add_string_table(s);
    ids_.emplace(s, id);
    return id;
  }

 private:
  pb::Profile* p_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace

void build_pprof(const Profile& profile, const PprofOptions& opts, pb::Profile* out) {
  StringTable strings(out);
  // Sample types follow the event: [samples/count, <event>/<unit>]. The
  // count is how many samples (CPU) or intervals (off-CPU) made up a stack;
  // the value is what they measured, and the default.
  const EventType& ev = event_type(profile.event);
  const std::string ev_name(ev.name), ev_unit(ev.unit);
  auto* st0 = out->add_sample_type();
  st0->set_type(strings.index("samples"));
  st0->set_unit(strings.index("count"));
  auto* st1 = out->add_sample_type();
  st1->set_type(strings.index(ev_name));
  st1->set_unit(strings.index(ev_unit));
  out->mutable_period_type()->set_type(strings.index(ev_name));
  out->mutable_period_type()->set_unit(strings.index(ev_unit));
  // Measured events have no sampling period.
  out->set_period(ev.periodic ? int64_t(profile.period_ns) : 0);
  out->set_time_nanos(int64_t(profile.start_time_ns));
  out->set_duration_nanos(int64_t(profile.end_time_ns - profile.start_time_ns));
  out->set_default_sample_type(strings.index(ev_name));
  for (const auto& c : opts.comments) out->add_comment(strings.index(c));

  std::unordered_map<const Mapping*, uint64_t> mapping_ids;
  std::unordered_map<const Location*, uint64_t> location_ids;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> function_ids;

  auto mapping_id = [&](const Mapping* m) -> uint64_t {
    if (!m) return 0;
    auto it = mapping_ids.find(m);
    if (it != mapping_ids.end()) return it->second;
    auto* pm = out->add_mapping();
    uint64_t id = uint64_t(out->mapping_size());
    pm->set_id(id);
    pm->set_memory_start(m->start);
    pm->set_memory_limit(m->limit);
    pm->set_file_offset(m->file_offset);
    pm->set_filename(strings.index(m->file));
    pm->set_build_id(strings.index(m->build_id));
    mapping_ids.emplace(m, id);
    return id;
  };
  auto function_id = [&](const Line& l) -> uint64_t {
    auto key = std::make_tuple(l.function, l.system_name, l.file);
    auto it = function_ids.find(key);
    if (it != function_ids.end()) return it->second;
    auto* f = out->add_function();
    uint64_t id = uint64_t(out->function_size());
    f->set_id(id);
    f->set_name(strings.index(l.function));
    f->set_system_name(strings.index(l.system_name.empty() ? l.function : l.system_name));
    f->set_filename(strings.index(l.file));
    function_ids.emplace(std::move(key), id);
    return id;
  };
  auto location_id = [&](const Location* loc) -> uint64_t {
    auto it = location_ids.find(loc);
    if (it != location_ids.end()) return it->second;
    auto* pl = out->add_location();
    uint64_t id = uint64_t(out->location_size());
    pl->set_id(id);
    pl->set_address(loc->address);
    uint64_t mid = mapping_id(loc->mapping.get());
    pl->set_mapping_id(mid);
    for (const auto& line : loc->lines) {
      auto* pline = pl->add_line();
      pline->set_function_id(function_id(line));
      pline->set_line(line.line);
    }
    if (mid && loc->resolved) {
      auto* pm = out->mutable_mapping(int(mid - 1));
      pm->set_has_functions(true);
      for (const auto& line : loc->lines) {
        if (!line.file.empty()) pm->set_has_filenames(true);
        if (line.line) pm->set_has_line_numbers(true);
      }
      if (loc->lines.size() > 1) pm->set_has_inline_frames(true);
    }
    location_ids.emplace(loc, id);
    return id;
  };

  int64_t pid_key = strings.index("pid");
  int64_t comm_key = strings.index("thread_name");
  for (const auto& s : profile.samples) {
    auto* ps = out->add_sample();
    for (const auto& loc : s.stack) ps->add_location_id(location_id(loc.get()));
    ps->add_value(int64_t(s.count));
    ps->add_value(int64_t(s.value));
    if (opts.sample_labels) {
      auto* lp = ps->add_label();
      lp->set_key(pid_key);
      lp->set_num(s.pid);
      if (!s.comm.empty()) {
        auto* lc = ps->add_label();
        lc->set_key(comm_key);
        lc->set_str(strings.index(s.comm));
      }
    }
  }
}

Result<std::string> encode_pprof_gz(const Profile& profile, const PprofOptions& opts) {
  pb::Profile p;
  build_pprof(profile, opts, &p);
  std::string raw;
  if (!p.SerializeToString(&raw)) return Errorf("cannot serialize the pprof profile");
  return gzip_compress(raw);
}

Result<std::string> gzip_compress(const std::string& data) {
  z_stream zs{};
  // windowBits 15 + 16 selects the gzip wrapper.
  int rc = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) return Errorf("zlib deflateInit2 failed (%d)", rc);
  std::string out;
  out.resize(deflateBound(&zs, uLong(data.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = uInt(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  // The output holds deflateBound bytes, so one Z_FINISH call must end the
  // stream; anything else is zlib failing, not a short buffer.
  rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Errorf("zlib deflate failed (%d)", rc);
  out.resize(zs.total_out);
  return out;
}

Result<std::string> gzip_decompress(const std::string& data) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Errorf("inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = uInt(data.size());
  std::string out;
  char buf[1 << 16];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Errorf("gzip data is corrupt (%d)", rc);
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
  } while (rc != Z_STREAM_END && zs.avail_in > 0);
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return Errorf("gzip data is truncated");
  return out;
}

}  // namespace ember
