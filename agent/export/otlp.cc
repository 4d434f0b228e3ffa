#include "agent/export/otlp.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>
#include <unordered_map>

#include "agent/export/pprof.h"
#include "common/utf8.h"
#include "otlp_profiles.pb.h"

namespace ember {
namespace pb = ember::otlp;

namespace {

// Builds the request's one dictionary. Every table starts with its empty
// entry (index 0 means "unset" in this protocol) and holds each entry once.
class Dictionary {
 public:
  explicit Dictionary(pb::ProfilesDictionary* d) : d_(d) {
    d_->add_string_table("");
    strings_.emplace("", 0);
    d_->add_mapping_table();
    d_->add_location_table();
    d_->add_function_table();
    d_->add_link_table();
    d_->add_attribute_table();
    d_->add_stack_table();
  }

  // Keyed by the text as sent, so two byte strings that become the same
  // valid UTF-8 share one entry.
  int32_t str(const std::string& s) {
    std::string text = valid_utf8(s);
    auto [it, fresh] = strings_.try_emplace(std::move(text), int32_t(d_->string_table_size()));
    if (fresh) d_->add_string_table(it->first);
    return it->second;
  }

  int32_t string_attribute(const std::string& key, const std::string& value) {
    auto k = std::make_tuple(key, value, int64_t(0), false);
    auto [it, fresh] = attributes_.try_emplace(k, int32_t(d_->attribute_table_size()));
    if (fresh) {
      auto* a = d_->add_attribute_table();
      a->set_key_strindex(str(key));
      a->mutable_value()->set_string_value(valid_utf8(value));
    }
    return it->second;
  }

  int32_t int_attribute(const std::string& key, int64_t value) {
    auto k = std::make_tuple(key, std::string(), value, true);
    auto [it, fresh] = attributes_.try_emplace(k, int32_t(d_->attribute_table_size()));
    if (fresh) {
      auto* a = d_->add_attribute_table();
      a->set_key_strindex(str(key));
      a->mutable_value()->set_int_value(value);
    }
    return it->second;
  }

  int32_t mapping(const Mapping* m) {
    if (!m) return 0;
    auto [it, fresh] = mappings_.try_emplace(m, int32_t(d_->mapping_table_size()));
    if (fresh) {
      auto* pm = d_->add_mapping_table();
      pm->set_memory_start(m->start);
      pm->set_memory_limit(m->limit);
      pm->set_file_offset(m->file_offset);
      pm->set_filename_strindex(str(m->file));
      if (!m->build_id.empty())
        pm->add_attribute_indices(string_attribute("process.executable.build_id.gnu", m->build_id));
    }
    return it->second;
  }

  int32_t function(const Line& l) {
    auto key = std::make_tuple(l.function, l.system_name, l.file);
    auto [it, fresh] = functions_.try_emplace(key, int32_t(d_->function_table_size()));
    if (fresh) {
      auto* f = d_->add_function_table();
      f->set_name_strindex(str(l.function));
      f->set_system_name_strindex(str(l.system_name.empty() ? l.function : l.system_name));
      f->set_filename_strindex(str(l.file));
    }
    return it->second;
  }

  int32_t location(const Location* loc) {
    auto [it, fresh] = locations_.try_emplace(loc, int32_t(d_->location_table_size()));
    if (fresh) {
      // Fill a local message first: the calls below grow the tables.
      pb::Location pl;
      pl.set_mapping_index(mapping(loc->mapping.get()));
      pl.set_address(loc->address);
      for (const auto& line : loc->lines) {  // inlined callee first, as OTLP wants
        auto* l = pl.add_lines();
        l->set_function_index(function(line));
        l->set_line(line.line);
      }
      pl.add_attribute_indices(string_attribute("profile.frame.type", frame_type(loc->origin)));
      *d_->add_location_table() = std::move(pl);
    }
    return it->second;
  }

  int32_t stack(const std::vector<LocationRef>& frames) {
    std::vector<int32_t> ids;
    ids.reserve(frames.size());
    for (const auto& loc : frames) ids.push_back(location(loc.get()));
    auto [it, fresh] = stacks_.try_emplace(ids, int32_t(d_->stack_table_size()));
    if (fresh) {
      auto* s = d_->add_stack_table();
      for (int32_t id : ids) s->add_location_indices(id);  // leaf first
    }
    return it->second;
  }

 private:
  // The semantic conventions' profile.frame.type values for the built-in
  // origins. A runtime's origin will name its own (cpython, jvm, ...).
  static const char* frame_type(OriginId o) {
    switch (o) {
      case origin::kKernel: return "kernel";
      case origin::kGo: return "go";
      case origin::kJit: return "jit";
      default: return "native";
    }
  }

  pb::ProfilesDictionary* d_;
  std::unordered_map<std::string, int32_t> strings_;
  std::map<std::tuple<std::string, std::string, int64_t, bool>, int32_t> attributes_;
  std::unordered_map<const Mapping*, int32_t> mappings_;
  std::map<std::tuple<std::string, std::string, std::string>, int32_t> functions_;
  std::unordered_map<const Location*, int32_t> locations_;
  std::map<std::vector<int32_t>, int32_t> stacks_;
};

std::string random_id() {
  std::string id(16, '\0');
  size_t got = 0;
  while (got < id.size()) {
    ssize_t n = getrandom(id.data() + got, id.size() - got, 0);
    if (n <= 0) break;
    got += size_t(n);
  }
  for (; got < id.size(); ++got) id[got] = char(std::rand());
  return id;
}

void set_resource(const LabelSet* labels, pb::Resource* r) {
  if (!labels) return;
  for (const auto& [k, v] : labels->labels()) {
    if (k.rfind("__", 0) == 0 || v.empty()) continue;
    auto* kv = r->add_attributes();
    kv->set_key(otlp_attribute_name(k));
    char* end = nullptr;
    long long pid = k == "pid" ? std::strtoll(v.c_str(), &end, 10) : 0;
    if (k == "pid" && end && *end == '\0' && pid > 0) kv->mutable_value()->set_int_value(pid);
    else kv->mutable_value()->set_string_value(valid_utf8(v));
  }
}

}  // namespace

Result<EncodedProfileRef> encode_otlp_for_upload(const ProfileBatch& batch, const OtlpOptions& opts) {
  std::vector<const Profile*> profiles;
  auto e = std::make_shared<EncodedProfile>();
  for (const auto& p : batch.profiles) {
    if (p.samples.empty()) continue;
    profiles.push_back(&p);
    if (e->samples == 0 || p.start_time_ns < e->start_time_ns) e->start_time_ns = p.start_time_ns;
    e->end_time_ns = std::max(e->end_time_ns, p.end_time_ns);
    e->samples += p.total_count();
  }
  if (profiles.empty()) return EncodedProfileRef();
  auto raw = encode_otlp_request(profiles, opts);
  if (!raw.ok()) return raw.error();
  auto gz = gzip_compress(*raw);
  if (!gz.ok()) return gz.error();
  e->otlp_request_gz = std::move(*gz);
  e->id = uuid_v4();
  return EncodedProfileRef(std::move(e));
}

std::string otlp_attribute_name(const std::string& label) {
  static const std::map<std::string, std::string> kNames = {
      {"service_name", "service.name"},     {"namespace", "k8s.namespace.name"},
      {"pod", "k8s.pod.name"},              {"container", "k8s.container.name"},
      {"node", "k8s.node.name"},            {"container_id", "container.id"},
      {"pid", "process.pid"},               {"exe", "process.executable.name"},
  };
  auto it = kNames.find(label);
  return it == kNames.end() ? label : it->second;
}

Result<std::string> encode_otlp_request(const std::vector<const Profile*>& profiles,
                                        const OtlpOptions& opts) {
  pb::ExportProfilesServiceRequest req;
  Dictionary dict(req.mutable_dictionary());
  // Profiles of one series (the same labels) share a resource.
  std::map<std::vector<std::pair<std::string, std::string>>, pb::ScopeProfiles*> by_value;
  for (const Profile* p : profiles) {
    if (!p || p->samples.empty()) continue;
    static const LabelSet kNoLabels;
    const LabelSet& labels = p->labels ? *p->labels : kNoLabels;
    pb::ScopeProfiles*& scope = by_value[labels.labels()];
    if (!scope) {
      auto* rp = req.add_resource_profiles();
      set_resource(&labels, rp->mutable_resource());
      scope = rp->add_scope_profiles();
      scope->mutable_scope()->set_name("ember");
      scope->mutable_scope()->set_version(opts.scope_version);
    }
    auto* out = scope->add_profiles();
    const EventType& ev = event_type(p->event);
    const std::string ev_name(ev.name), unit(ev.unit);
    if (ev.periodic) {
      out->mutable_sample_type()->set_type_strindex(dict.str("samples"));
      out->mutable_sample_type()->set_unit_strindex(dict.str("count"));
      out->set_period(int64_t(p->period_ns));
    } else {
      out->mutable_sample_type()->set_type_strindex(dict.str(ev_name));
      out->mutable_sample_type()->set_unit_strindex(dict.str(unit));
      out->set_period(0);
    }
    out->mutable_period_type()->set_type_strindex(dict.str(ev_name));
    out->mutable_period_type()->set_unit_strindex(dict.str(unit));
    out->set_time_unix_nano(p->start_time_ns);
    out->set_duration_nano(p->end_time_ns - p->start_time_ns);
    out->set_profile_id(random_id());
    for (const auto& s : p->samples) {
      auto* ps = out->add_samples();
      ps->set_stack_index(dict.stack(s.stack));
      ps->add_values(int64_t(ev.periodic ? s.count : s.value));
      if (s.pid) ps->add_attribute_indices(dict.int_attribute("process.pid", int64_t(s.pid)));
      if (!s.comm.empty()) ps->add_attribute_indices(dict.string_attribute("thread.name", s.comm));
    }
  }
  std::string out;
  if (!req.SerializeToString(&out)) return Errorf("cannot serialize the OTLP request");
  return out;
}

}  // namespace ember
