#include "agent/analyze/stack_profile.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <unordered_map>

#include "profile.pb.h"

namespace ember {
namespace pb = perftools::profiles;

int64_t StackProfile::total_value() const {
  int64_t n = 0;
  for (const auto& s : stacks) n += s.value;
  return n;
}

int64_t StackProfile::total_samples() const {
  int64_t n = 0;
  for (const auto& s : stacks) n += s.samples;
  return n;
}

namespace {

constexpr size_t kMaxNameBytes = 4096;

// A name as every output may print it: control characters (C0, DEL and the
// UTF-8 spelling of C1) become spaces, so a name cannot end a line of a table,
// a folded file or a CI log, nor carry a terminal escape; and at most
// kMaxNameBytes long.
std::string printable_name(std::string_view n) {
  std::string out;
  out.reserve(std::min(n.size(), kMaxNameBytes));
  for (size_t i = 0; i < n.size() && out.size() < kMaxNameBytes; ++i) {
    auto c = uint8_t(n[i]);
    if (c < 0x20 || c == 0x7f) {
      out += ' ';
    } else if (c == 0xc2 && i + 1 < n.size() && uint8_t(n[i + 1]) >= 0x80 && uint8_t(n[i + 1]) <= 0x9f) {
      out += ' ';
      ++i;
    } else {
      out += char(c);
    }
  }
  if (out.size() >= kMaxNameBytes) {
    while (!out.empty() && (uint8_t(out.back()) & 0xc0) == 0x80) out.pop_back();  // a whole character
    if (!out.empty() && uint8_t(out.back()) >= 0xc0) out.pop_back();
    out += "...";
  }
  return out;
}

// Builds a StackProfile: interns names and merges identical stacks, keeping
// the totals within int64 and the expanded frames within the budgets: their
// number, and the bytes of their names (what a folded file or a diff spells
// out, frame by frame).
class Builder {
 public:
  Builder(StackProfile* out, size_t max_frames, size_t max_frame_bytes)
      : out_(out), frames_left_(max_frames), bytes_left_(max_frame_bytes) {}

  uint32_t name(std::string_view raw) {
    std::string n = printable_name(raw);
    auto it = name_ids_.find(n);
    if (it != name_ids_.end()) return it->second;
    uint32_t id = uint32_t(out_->names.size());
    out_->names.push_back(n);
    name_ids_.emplace(std::move(n), id);
    return id;
  }
  size_t name_bytes(uint32_t id) const { return out_->names[id].size() + 1; }  // with its separator

  // False when a budget is spent.
  bool charge(size_t frames, size_t bytes) {
    if (frames > frames_left_ || bytes > bytes_left_) return false;
    frames_left_ -= frames;
    bytes_left_ -= bytes;
    return true;
  }

  // False when a total would overflow.
  bool add(std::vector<uint32_t>&& frames, int64_t value, int64_t samples) {
    int64_t v, s;
    if (__builtin_add_overflow(total_value_, value, &v) || __builtin_add_overflow(total_samples_, samples, &s))
      return false;
    total_value_ = v;
    total_samples_ = s;
    auto [it, inserted] = stack_ids_.try_emplace(std::move(frames), out_->stacks.size());
    if (inserted) {
      out_->stacks.push_back(StackProfile::Stack{it->first, value, samples});
    } else {
      out_->stacks[it->second].value += value;
      out_->stacks[it->second].samples += samples;
    }
    return true;
  }

 private:
  struct Hash {
    size_t operator()(const std::vector<uint32_t>& v) const {
      uint64_t h = 1469598103934665603ull;
      for (uint32_t x : v) h = (h ^ x) * 1099511628211ull;
      return size_t(h);
    }
  };
  StackProfile* out_;
  size_t frames_left_, bytes_left_;
  int64_t total_value_ = 0, total_samples_ = 0;
  std::unordered_map<std::string, uint32_t> name_ids_;
  std::unordered_map<std::vector<uint32_t>, size_t, Hash> stack_ids_;
};

bool is_gzip(std::string_view b) { return b.size() >= 2 && uint8_t(b[0]) == 0x1f && uint8_t(b[1]) == 0x8b; }

// Inflates at most `max_bytes`; a larger output is an error, not a truncation.
Result<std::string> gunzip_bounded(std::string_view in, size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Errorf("zlib: inflateInit2 failed");
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  size_t fed = 0;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0 && fed < in.size()) {
      size_t chunk = std::min<size_t>(in.size() - fed, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
      zs.avail_in = uInt(chunk);
      fed += chunk;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Errorf(rc == Z_BUF_ERROR ? "gzip data is truncated" : "gzip data is corrupt");
    }
    size_t got = sizeof(buf) - zs.avail_out;
    if (out.size() + got > max_bytes) {
      inflateEnd(&zs);
      return Errorf("gzip data inflates past %zu bytes", max_bytes);
    }
    out.append(buf, got);
    if (rc == Z_OK && got == 0 && zs.avail_in == 0 && fed == in.size()) {
      inflateEnd(&zs);
      return Errorf("gzip data is truncated");
    }
  }
  inflateEnd(&zs);
  return out;
}

// Points *bytes at its inflated form (kept in *storage) when it is gzip.
Status inflate_if_gzip(std::string_view* bytes, std::string* storage, size_t max_bytes) {
  if (!is_gzip(*bytes)) return {};
  auto r = gunzip_bounded(*bytes, max_bytes);
  if (!r.ok()) return r.error();
  *storage = std::move(*r);
  *bytes = *storage;
  return {};
}

bool looks_binary(std::string_view b) {
  for (char c : b) {
    auto u = uint8_t(c);
    if (u < 0x20 && u != '\t' && u != '\n' && u != '\r') return true;
  }
  return false;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string_view basename_of(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Counts the messages of a serialized Profile without building them:
// protobuf would make an object of about 100 bytes of each, even of an empty
// one that took two bytes of a file that gzip shrank a thousandfold. Top-level
// messages count, and the lines inside each location.
Status check_message_count(std::string_view b, size_t max_messages) {
  auto varint = [](std::string_view d, size_t* pos, uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (*pos >= d.size()) return false;
      auto c = uint8_t(d[(*pos)++]);
      *v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return true;
    }
    return false;
  };
  // Visits the fields of one message; `on_message(field, body)` for each
  // length-delimited one. False when the bytes are not a message.
  auto fields = [&](std::string_view d, auto&& on_message) {
    size_t pos = 0;
    while (pos < d.size()) {
      uint64_t tag, v;
      if (!varint(d, &pos, &tag)) return false;
      switch (tag & 7) {
        case 0: if (!varint(d, &pos, &v)) return false; break;
        case 1: if (d.size() - pos < 8) return false; pos += 8; break;
        case 5: if (d.size() - pos < 4) return false; pos += 4; break;
        case 2:
          if (!varint(d, &pos, &v) || v > d.size() - pos) return false;
          on_message(tag >> 3, d.substr(pos, size_t(v)));
          pos += size_t(v);
          break;
        default: return false;
      }
    }
    return true;
  };
  size_t count = 0;
  bool ok = fields(b, [&](uint64_t field, std::string_view body) {
    ++count;
    if (field == 4)  // a Location: its lines (field 4) are messages too
      (void)fields(body, [&](uint64_t f, std::string_view) { count += f == 4; });
  });
  if (!ok) return Errorf("pprof: not a profile.proto message");
  if (count > max_messages) return Errorf("pprof: more than %zu messages", max_messages);
  return {};
}

// Parses a Profile that is not (or no longer) gzipped.
Result<StackProfile> parse_pprof(std::string_view bytes, const ProfileReadOptions& opts);

}  // namespace

Result<StackProfile> read_pprof(std::string_view bytes, const ProfileReadOptions& opts) {
  std::string inflated;
  if (auto st = inflate_if_gzip(&bytes, &inflated, opts.max_bytes); !st) return st.error();
  return parse_pprof(bytes, opts);
}

namespace {

Result<StackProfile> parse_pprof(std::string_view bytes, const ProfileReadOptions& opts) {
  if (bytes.size() > opts.max_bytes) {
    return Errorf("pprof: larger than %zu bytes", opts.max_bytes);
  }
  if (bytes.size() > size_t(INT32_MAX)) return Errorf("pprof: larger than 2 GiB");
  if (auto st = check_message_count(bytes, opts.max_messages); !st) return st.error();
  pb::Profile p;
  // proto3 strings must be UTF-8 (Pyroscope's decoder, in Go, refuses them
  // too); protobuf says so on stderr, and this says what it means.
  if (!p.ParseFromArray(bytes.data(), int(bytes.size())))
    return Errorf("pprof: not a profile.proto message (or one with strings that are not UTF-8)");

  const auto& strings = p.string_table();
  auto str = [&](int64_t i) -> const std::string* {
    return i >= 0 && i < strings.size() ? &strings.Get(int(i)) : nullptr;
  };
  if (p.sample_type_size() == 0) return Errorf("pprof: no sample types");
  for (const auto& st : p.sample_type())
    if (!str(st.type()) || !str(st.unit())) return Errorf("pprof: a sample type names a string past the table");

  // Which value to read: as `go tool pprof` picks it.
  int index = -1;
  if (!opts.sample_type.empty()) {
    for (int i = 0; i < p.sample_type_size(); ++i)
      if (*str(p.sample_type(i).type()) == opts.sample_type) index = i;
    if (index < 0) {
      std::string have;
      for (const auto& st : p.sample_type()) have += (have.empty() ? "" : ", ") + *str(st.type());
      return Errorf("pprof: no sample type '%s' (it has %s)", opts.sample_type.c_str(), have.c_str());
    }
  } else {
    index = p.sample_type_size() - 1;
    if (p.default_sample_type() != 0 && str(p.default_sample_type())) {
      for (int i = 0; i < p.sample_type_size(); ++i)
        if (p.sample_type(i).type() == p.default_sample_type()) index = i;
    }
  }
  StackProfile out;
  out.format = "pprof";
  out.sample_type = *str(p.sample_type(index).type());
  out.unit = *str(p.sample_type(index).unit());

  // Where the sample counts come from: a samples/count type, else the value
  // over the sampling period when the period is in the value's unit.
  int count_index = -1;
  for (int i = 0; i < p.sample_type_size(); ++i) {
    const std::string& t = *str(p.sample_type(i).type());
    if (*str(p.sample_type(i).unit()) == "count" && (t == "samples" || t == "sample")) count_index = i;
  }
  int64_t period = 0;
  if (count_index < 0 && p.period() > 0 && p.has_period_type() && str(p.period_type().unit()) &&
      *str(p.period_type().unit()) == out.unit)
    period = p.period();
  out.samples_known = count_index >= 0 || period > 0;

  std::unordered_map<uint64_t, const pb::Function*> functions;
  for (const auto& f : p.function()) functions.emplace(f.id(), &f);
  std::unordered_map<uint64_t, const pb::Mapping*> mappings;
  for (const auto& m : p.mapping()) mappings.emplace(m.id(), &m);
  std::unordered_map<uint64_t, const pb::Location*> locations;
  for (const auto& l : p.location()) {
    if (l.id() == 0) return Errorf("pprof: a location has id 0");
    locations.emplace(l.id(), &l);
  }

  Builder b(&out, opts.max_frames, opts.max_frame_bytes);
  // Each location's frames, innermost first, named once, and the bytes of
  // their names.
  struct LocationFrames {
    std::vector<uint32_t> frames;
    size_t bytes = 0;
  };
  std::unordered_map<uint64_t, LocationFrames> location_frames;
  auto frames_of = [&](uint64_t id) -> Result<const LocationFrames*> {
    if (auto it = location_frames.find(id); it != location_frames.end()) return &it->second;
    auto lit = locations.find(id);
    if (lit == locations.end()) return Errorf("pprof: a sample refers to location %llu, which is not in the profile",
                                              static_cast<unsigned long long>(id));
    const pb::Location& loc = *lit->second;
    std::vector<uint32_t> names;
    for (const auto& line : loc.line()) {
      auto fit = functions.find(line.function_id());
      if (fit == functions.end())
        return Errorf("pprof: location %llu refers to function %llu, which is not in the profile",
                      static_cast<unsigned long long>(id), static_cast<unsigned long long>(line.function_id()));
      const std::string* n = str(fit->second->name());
      const std::string* sys = str(fit->second->system_name());
      if (!n || !sys) return Errorf("pprof: a function names a string past the table");
      names.push_back(b.name(!n->empty() ? *n : !sys->empty() ? *sys : "[unknown]"));
    }
    if (names.empty()) {  // not symbolized: module+offset, as Ember prints it
      std::string name = hex(loc.address());
      if (auto mit = mappings.find(loc.mapping_id()); loc.mapping_id() && mit != mappings.end()) {
        const std::string* file = str(mit->second->filename());
        if (!file) return Errorf("pprof: a mapping names a string past the table");
        if (!file->empty())
          name = std::string(basename_of(*file)) + "+" +
                 hex(loc.address() - mit->second->memory_start() + mit->second->file_offset());
      }
      names.push_back(b.name(name));
    }
    LocationFrames lf;
    for (uint32_t n : names) lf.bytes += b.name_bytes(n);
    lf.frames = std::move(names);
    return &location_frames.emplace(id, std::move(lf)).first->second;
  };

  std::vector<uint32_t> frames;
  for (int si = 0; si < p.sample_size(); ++si) {
    const pb::Sample& s = p.sample(si);
    if (s.value_size() != p.sample_type_size())
      return Errorf("pprof: sample %d has %d values for %d sample types", si, s.value_size(), p.sample_type_size());
    int64_t value = s.value(index);
    if (value < 0) return Errorf("pprof: sample %d has a negative value", si);
    // value / period, rounded, without overflowing near 2^63.
    int64_t samples = count_index >= 0 ? s.value(count_index)
                      : period > 0     ? value / period + (value % period >= (period + 1) / 2)
                                       : value;
    if (samples < 0) return Errorf("pprof: sample %d has a negative value", si);
    if (value == 0 && samples == 0) continue;
    frames.clear();
    for (int li = s.location_id_size() - 1; li >= 0; --li) {  // leaf first in the file
      auto f = frames_of(s.location_id(li));
      if (!f.ok()) return f.error();
      if (!b.charge((*f)->frames.size(), (*f)->bytes))
        return Errorf("pprof: more than %zu frames or %zu bytes of frame names in all", opts.max_frames,
                      opts.max_frame_bytes);
      frames.insert(frames.end(), (*f)->frames.rbegin(), (*f)->frames.rend());  // innermost first within a location
    }
    if (!b.add(std::move(frames), value, samples)) return Errorf("pprof: the values add up past 2^63");
    frames = {};
  }
  return out;
}

}  // namespace

Result<StackProfile> read_folded(std::string_view text, const ProfileReadOptions& opts) {
  if (text.size() > opts.max_bytes) return Errorf("folded: larger than %zu bytes", opts.max_bytes);
  StackProfile out;
  out.format = "folded";
  out.sample_type = "samples";
  out.unit = "count";
  Builder b(&out, opts.max_frames, opts.max_frame_bytes);
  size_t line_no = 0;
  std::vector<uint32_t> frames;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.find_last_of(' ');
    if (space == std::string_view::npos || space == 0)
      return Errorf("folded: line %zu is not 'frame;frame;... count'", line_no);
    std::string_view count = line.substr(space + 1);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), value);
    if (ec != std::errc() || end != count.data() + count.size() || value < 0)
      return Errorf("folded: line %zu ends in '%.40s', not a count", line_no, std::string(count).c_str());
    std::string_view stack = line.substr(0, space);
    while (!stack.empty() && stack.back() == ' ') stack.remove_suffix(1);
    frames.clear();
    size_t n = std::count(stack.begin(), stack.end(), ';') + 1;
    if (!b.charge(n, stack.size() + 1))
      return Errorf("folded: more than %zu frames or %zu bytes of frame names in all", opts.max_frames,
                    opts.max_frame_bytes);
    for (size_t at = 0;;) {
      size_t semi = stack.find(';', at);
      std::string_view frame = stack.substr(at, semi == std::string_view::npos ? std::string_view::npos : semi - at);
      frames.push_back(b.name(frame.empty() ? "[unknown]" : frame));
      if (semi == std::string_view::npos) break;
      at = semi + 1;
    }
    if (value == 0) continue;
    if (!b.add(std::move(frames), value, value)) return Errorf("folded: the counts add up past 2^63");
    frames = {};
  }
  return out;
}

Result<StackProfile> read_profile(std::string_view bytes, const ProfileReadOptions& opts) {
  std::string inflated;
  if (auto st = inflate_if_gzip(&bytes, &inflated, opts.max_bytes); !st) return st.error();
  if (looks_binary(bytes)) return parse_pprof(bytes, opts);  // inflated once, not again
  if (!opts.sample_type.empty() && opts.sample_type != "samples")
    return Errorf("folded stacks have one value; there is no sample type '%s'", opts.sample_type.c_str());
  return read_folded(bytes, opts);
}

Result<StackProfile> read_profile_file(const std::string& path, const ProfileReadOptions& opts) {
  // Read in chunks, so that pipes work and a huge file stops at the bound.
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return Errorf("%s: cannot open", path.c_str());
    in = &file;
  }
  std::string data;
  char buf[1 << 16];
  while (*in) {
    in->read(buf, sizeof buf);
    data.append(buf, size_t(in->gcount()));
    if (data.size() > opts.max_bytes) return Errorf("%s: larger than %zu bytes", path.c_str(), opts.max_bytes);
  }
  if (in->bad()) return Errorf("%s: read error", path.c_str());
  auto r = read_profile(data, opts);
  if (!r.ok()) return Errorf("%s: %s", path.c_str(), r.error().message.c_str());
  return r;
}

}  // namespace ember
