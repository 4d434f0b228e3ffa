// How full the agent's own BPF maps are, for /metrics.
//
// Found without any hook into the sampler: the process's open file
// descriptors that are BPF maps (/proc/self/fd -> "anon_inode:bpf-map") are
// exactly the maps this agent loaded. For hash maps the entries are counted
// by walking the keys (capped, so a huge map costs bounded time); for the
// ring buffer, the bytes written but not yet consumed are read from its
// read-only mapped positions.
//
// Call from one thread at a time (the agent serializes its refreshes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/metrics.h"

namespace ember {

struct BpfMapFill {
  std::string name;
  std::string type;  // "hash", "lru_hash", "ringbuf", ...
  uint64_t max_entries = 0;  // ring buffer: its size in bytes
  uint64_t entries = 0;      // ring buffer: bytes not yet consumed
  bool counted = false;      // false: entries unknown (arrays, capped walks)
};

// Counting stops after this many keys per map.
inline constexpr uint64_t kMaxBpfKeysCounted = 1 << 18;

std::vector<BpfMapFill> read_own_bpf_maps();

// Publishes ember_bpf_map_entries{map=...} and ember_bpf_map_max_entries,
// and ember_bpf_ring_buffer_used_bytes / _size_bytes.
void publish_bpf_map_fill(Metrics& metrics);

}  // namespace ember
