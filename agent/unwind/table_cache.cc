#include "agent/unwind/table_cache.h"

#include <sys/auxv.h>
#include <sys/stat.h>

#include <chrono>

#include "symbolizer/debug_file.h"

namespace ember::unwind {

std::shared_ptr<const UnwindTable> UnwindTableCache::lookup_locked(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->table;
}

void UnwindTableCache::erase_locked(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  stats_.bytes -= it->second->bytes;
  lru_.erase(it->second);
  index_.erase(it);
}

void UnwindTableCache::insert_locked(const std::string& key, std::shared_ptr<const UnwindTable> t) {
  size_t bytes = t ? t->memory_bytes() : 64;
  lru_.push_front(Entry{key, std::move(t), bytes});
  index_[key] = lru_.begin();
  stats_.bytes += bytes;
  while (lru_.size() > 1 && stats_.bytes > opts_.max_bytes) {
    auto& victim = lru_.back();
    stats_.bytes -= victim.bytes;
    index_.erase(victim.key);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

UnwindTableCache::Ref UnwindTableCache::get(UniqueFd fd, const std::string& path,
                                            const std::string& debug_root) {
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return {};
  std::string identity = "f:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
                         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                         std::to_string(st.st_mtim.tv_nsec);
  const bool root_live = root_reachable(debug_root);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto k = identity_to_key_.find(identity);
    if (k != identity_to_key_.end()) {
      auto t = lookup_locked(k->second);
      if (t && (!t->debug_deferred() || !root_live)) return Ref{t, k->second};
    }
  }
  auto elf = ElfFile::from_fd(std::move(fd), path);
  if (!elf) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.failures;
    return {};
  }
  std::string build_id = (*elf)->build_id();
  std::string key = build_id.empty() ? identity : "b:" + build_id;

  std::unique_lock<std::mutex> lock(mu_);
  identity_to_key_[identity] = key;
  bool retry = false;
  for (;;) {
    auto t = lookup_locked(key);
    if (t && (!t->debug_deferred() || !root_live)) return Ref{t, key};
    retry = t != nullptr;  // deferred, and now the root is reachable
    if (!building_.count(key)) break;
    cv_.wait(lock);  // another thread is building this very table
  }
  building_.insert(key);
  if (retry) ++stats_.debug_retries;
  else ++stats_.misses;
  lock.unlock();

  auto start = std::chrono::steady_clock::now();
  DebugSearch dbg;
  dbg.root = debug_root;
  dbg.debug_dirs = opts_.debug_dirs;
  auto built = build_unwind_table(**elf, dbg);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  lock.lock();
  building_.erase(key);
  stats_.build_seconds += secs;
  std::shared_ptr<const UnwindTable> table = built ? *built : nullptr;
  if (!table) ++stats_.failures;
  if (table && table->debug_deferred()) ++stats_.debug_deferred;
  if (table) {
    if (retry) erase_locked(key);
    insert_locked(key, table);
  }
  cv_.notify_all();
  if (!table) return {};
  return Ref{table, key};
}

UnwindTableCache::Ref UnwindTableCache::for_mapping(const ProcessSnapshot& proc,
                                                    const MapEntry& m) {
  if (m.path == "[vdso]") return vdso() ? Ref{vdso(), "vdso"} : Ref{};
  if (!m.is_file()) return {};
  UniqueFd fd = open_mapped_file(proc, m);
  if (!fd.valid()) return {};
  auto t = get(std::move(fd), std::string(m.clean_path()), proc.root_path());
  if (PinnedFile* pin = pin_of(proc, m)) pin->release(kPinUnwinder);
  return t;
}

std::shared_ptr<const UnwindTable> UnwindTableCache::vdso() {
  std::call_once(vdso_once_, [this] {
    auto base = reinterpret_cast<const unsigned char*>(getauxval(AT_SYSINFO_EHDR));
    if (!base) return;
    auto ehdr = reinterpret_cast<const Elf64_Ehdr*>(base);
    size_t size = size_t(ehdr->e_shoff) + size_t(ehdr->e_shnum) * ehdr->e_shentsize;
    auto elf = ElfFile::from_memory(base, size, "[vdso]");
    if (!elf) return;
    auto t = build_unwind_table(**elf);
    if (t) vdso_ = *t;
  });
  return vdso_;
}

UnwindTableCache::Stats UnwindTableCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace ember::unwind
