#include "agent/export/bpf_map_stats.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "common/unique_fd.h"

namespace ember {
namespace {

const char* map_type_name(uint32_t t) {
  switch (t) {
    case BPF_MAP_TYPE_HASH: return "hash";
    case BPF_MAP_TYPE_LRU_HASH: return "lru_hash";
    case BPF_MAP_TYPE_PERCPU_HASH: return "percpu_hash";
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return "lru_percpu_hash";
    case BPF_MAP_TYPE_ARRAY: return "array";
    case BPF_MAP_TYPE_PERCPU_ARRAY: return "percpu_array";
    case BPF_MAP_TYPE_RINGBUF: return "ringbuf";
    case BPF_MAP_TYPE_PROG_ARRAY: return "prog_array";
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY: return "perf_event_array";
    case BPF_MAP_TYPE_STACK_TRACE: return "stack_trace";
  }
  return "other";
}

bool is_hash(uint32_t t) {
  return t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_PERCPU_HASH ||
         t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

// A ring buffer's producer and consumer positions are in its first two
// pages; a read-only mapping of them is allowed for any reader.
bool ringbuf_used(int fd, uint64_t size, uint64_t* used) {
  long page = ::sysconf(_SC_PAGESIZE);
  void* p = ::mmap(nullptr, size_t(2 * page), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return false;
  auto* base = static_cast<const char*>(p);
  uint64_t cons = reinterpret_cast<const std::atomic<uint64_t>*>(base)->load(std::memory_order_acquire);
  uint64_t prod = reinterpret_cast<const std::atomic<uint64_t>*>(base + page)->load(std::memory_order_acquire);
  ::munmap(p, size_t(2 * page));
  *used = prod >= cons ? std::min(prod - cons, size) : 0;
  return true;
}

}  // namespace

std::vector<BpfMapFill> read_own_bpf_maps() {
  std::vector<BpfMapFill> out;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return out;
  std::vector<int> fds;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    char target[64] = {0};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::strcmp(target, "anon_inode:bpf-map") == 0) fds.push_back(fd);
  }
  ::closedir(dir);
  for (int raw : fds) {
    // Our own fd, possibly closed meanwhile by its owner: work on a dup so
    // we never touch a number that was reused for something else.
    UniqueFd fd(::fcntl(raw, F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) continue;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    BpfMapFill f;
    f.name = info.name;
    f.type = map_type_name(info.type);
    f.max_entries = info.max_entries;
    if (info.type == BPF_MAP_TYPE_RINGBUF) {
      f.counted = ringbuf_used(fd.get(), info.max_entries, &f.entries);
    } else if (is_hash(info.type) && info.key_size > 0 && info.key_size <= 512) {
      std::vector<uint8_t> key(info.key_size), next(info.key_size);
      const void* prev = nullptr;
      uint64_t count = 0;
      while (count < kMaxBpfKeysCounted && bpf_map_get_next_key(fd.get(), prev, next.data()) == 0) {
        ++count;
        key.swap(next);
        prev = key.data();
      }
      f.entries = count;
      f.counted = count < kMaxBpfKeysCounted;
    }
    out.push_back(std::move(f));
  }
  return out;
}

void publish_bpf_map_fill(Metrics& m) {
  for (const auto& f : read_own_bpf_maps()) {
    if (!f.counted) continue;
    std::string labels = "map=\"" + f.name + "\"";
    if (f.type == "ringbuf") {
      m.gauge("ember_bpf_ring_buffer_used_bytes", labels,
              "Bytes in the BPF ring buffer not yet read by the agent").set(f.entries);
      m.gauge("ember_bpf_ring_buffer_size_bytes", labels, "Size of the BPF ring buffer").set(f.max_entries);
    } else {
      m.gauge("ember_bpf_map_entries", labels, "Entries in the agent's BPF hash maps").set(f.entries);
      m.gauge("ember_bpf_map_max_entries", labels, "Capacity of the agent's BPF hash maps")
          .set(f.max_entries);
    }
  }
}

}  // namespace ember
