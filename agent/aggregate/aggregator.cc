#include "agent/aggregate/aggregator.h"
#include "common/drops.h"

#include <algorithm>
#include <optional>

namespace ember {

size_t StackAggregator::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<uint32_t>()(k.pid) ^ (std::hash<std::string>()(k.comm) << 1) ^
             (size_t(k.event) << 7);
  for (const Location* l : k.frames) h = h * 1000003 ^ std::hash<const void*>()(l);
  return h;
}

StackAggregator::StackAggregator(Options opts, Metrics& metrics)
    : opts_(opts),
      dropped_(drop_counter(metrics, Drop::kSampleTooManyStacks)),
      late_labeled_(metrics.counter("ember_label_late_pod_samples_total", "result=\"labeled\"",
                                    "Samples of processes whose pod was unknown when sampled, by "
                                    "what the end of the interval decided")),
      late_unmatched_(metrics.counter("ember_label_late_pod_samples_total", "result=\"unmatched\"")),
      late_dropped_(metrics.counter("ember_label_late_pod_samples_total", "result=\"dropped\"")) {
  for (size_t i = 0; i < kEventKinds; ++i) {
    const EventType& t = event_type(EventKind(i));
    aggregated_[i] = &metrics.counter("ember_samples_aggregated_total",
                                      "event=\"" + std::string(t.name) + "\"",
                                      "Samples counted into profiles, by event");
  }
}

void StackAggregator::add(LabeledSample&& ls) {
  if (ls.pending) {
    auto [git, inserted] = pending_groups_.try_emplace(ls.pending.get());
    if (inserted) git->second.pending = ls.pending;  // the key points into it
    if (count_into(git->second.stacks, ls)) ++git->second.samples;
    return;
  }
  if (!ls.labels) return;
  auto [sit, inserted] = series_.try_emplace(ls.labels.get());
  Series& series = sit->second;
  if (inserted) series.labels = ls.labels;  // the key points into this LabelSet
  count_into(series.stacks, ls);
}

bool StackAggregator::count_into(Stacks& stacks, LabeledSample& ls) {
  const EventKind own = ls.sample.meta.event;
  const size_t k = size_t(own) < kEventKinds ? size_t(own) : 0;
  const bool wall = opts_.profiles[size_t(EventKind::kWall)] &&
                    (own == EventKind::kCpu || own == EventKind::kOffCpu);
  const bool own_profile = opts_.profiles[k] || !wall;

  Key key;
  key.pid = ls.sample.meta.pid;
  key.event = own_profile ? own : EventKind::kWall;
  key.comm = ls.sample.meta.comm;
  key.frames.reserve(ls.sample.stack.size());
  for (const auto& loc : ls.sample.stack) key.frames.push_back(loc.get());
  std::optional<Key> wall_key;
  if (own_profile && wall) {
    wall_key = key;
    wall_key->event = EventKind::kWall;
  }
  // Both entries or neither, so wall stays the sum of the other two; a
  // sample the bound drops is counted once.
  auto it = stacks.find(key);
  auto wit = wall_key ? stacks.find(*wall_key) : stacks.end();
  const size_t fresh = size_t(it == stacks.end()) + size_t(wall_key && wit == stacks.end());
  if (stacks_ + fresh > opts_.max_stacks) {
    dropped_.add();
    return false;
  }
  // (Found again inside: an insertion may rehash and move the entries.)
  if (wall_key) add_to(stacks, std::move(*wall_key), ls, /*copy=*/true);
  add_to(stacks, std::move(key), ls, /*copy=*/false);
  aggregated_[k]->add();
  ++pending_;
  return true;
}

void StackAggregator::add_to(Stacks& stacks, Key&& key, LabeledSample& ls, bool copy) {
  auto it = stacks.find(key);
  if (it == stacks.end()) {
    Entry e;
    if (copy) e.stack = ls.sample.stack;
    else e.stack = std::move(ls.sample.stack);
    it = stacks.emplace(std::move(key), std::move(e)).first;
    ++stacks_;
  }
  it->second.count++;
  it->second.value += ls.sample.meta.value;
}

ProfileBatch StackAggregator::take(uint64_t start_time_ns, uint64_t end_time_ns) {
  // Pending groups first: their final labels may name a series that already
  // has samples (the pod showed up mid-interval), and they merge into it.
  for (auto& [_, group] : pending_groups_) {
    const PendingLabels& p = *group.pending;
    LabelSetRef final_labels = opts_.resolve_pending ? opts_.resolve_pending(p) : p.provisional;
    const uint64_t n = group.samples;  // not the entries' counts: wall repeats some
    if (!final_labels) {
      late_dropped_.add(n);
      continue;
    }
    (final_labels == p.provisional ? late_unmatched_ : late_labeled_).add(n);
    auto [sit, inserted] = series_.try_emplace(final_labels.get());
    if (inserted) sit->second.labels = final_labels;
    for (auto& [key, e] : group.stacks) {
      auto [eit, fresh] = sit->second.stacks.try_emplace(key);
      if (fresh) eit->second.stack = std::move(e.stack);
      eit->second.count += e.count;
      eit->second.value += e.value;
    }
  }
  pending_groups_.clear();

  ProfileBatch batch;
  for (auto& [_, series] : series_) {
    // One profile per event kind the series saw, made on first use.
    std::array<int, kEventKinds> index;
    index.fill(-1);
    for (auto& [key, e] : series.stacks) {
      size_t k = size_t(key.event) < kEventKinds ? size_t(key.event) : 0;
      if (index[k] < 0) {
        index[k] = int(batch.profiles.size());
        Profile p;
        p.labels = series.labels;
        p.event = EventKind(k);
        p.start_time_ns = start_time_ns;
        p.end_time_ns = end_time_ns;
        if (event_type(p.event).periodic && opts_.frequency_hz > 0) {
          p.frequency_hz = opts_.frequency_hz;
          p.period_ns = 1'000'000'000ull / uint64_t(opts_.frequency_hz);
        }
        batch.profiles.push_back(std::move(p));
      }
      batch.profiles[size_t(index[k])].samples.push_back(
          ProfileSample{std::move(e.stack), e.count, key.pid, key.comm, e.value});
    }
  }
  // Deterministic order for files and tests: by labels, then event.
  std::sort(batch.profiles.begin(), batch.profiles.end(), [](const Profile& a, const Profile& b) {
    if (a.labels->labels() != b.labels->labels()) return a.labels->labels() < b.labels->labels();
    return a.event < b.event;
  });
  series_.clear();
  stacks_ = 0;
  pending_ = 0;
  return batch;
}

}  // namespace ember
