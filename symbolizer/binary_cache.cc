#include "symbolizer/binary_cache.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "symbolizer/debug_file.h"

namespace ember {
namespace {

uint64_t inode_key(uint64_t dev, uint64_t ino) { return (dev * 0x9E3779B97F4A7C15ull) ^ ino; }

}  // namespace

void BinaryCache::touch(Iter it) {
  lru_.splice(lru_.begin(), lru_, it);
  // DWARF units are parsed as they are used: keep the accounting current.
  if (it->binary) {
    size_t now = it->binary->memory_bytes();
    stats_.bytes += now - it->bytes;
    it->bytes = now;
  }
}

void BinaryCache::add_identity(Iter it, const FileIdentity& id) {
  by_identity_[id] = it;
  by_inode_[inode_key(id.dev, id.ino)] = it;
  it->ids.push_back(id);
}

void BinaryCache::evict_if_needed() {
  while (!lru_.empty() && (lru_.size() > opts_.max_entries || stats_.bytes > opts_.max_bytes)) {
    Iter victim = std::prev(lru_.end());
    if (victim == lru_.begin()) break;  // never evict the entry just added
    for (const auto& id : victim->ids) {
      auto a = by_identity_.find(id);
      if (a != by_identity_.end() && a->second == victim) by_identity_.erase(a);
      auto b = by_inode_.find(inode_key(id.dev, id.ino));
      if (b != by_inode_.end() && b->second == victim) by_inode_.erase(b);
    }
    if (!victim->build_id.empty()) {
      auto c = by_build_id_.find(victim->build_id);
      if (c != by_build_id_.end() && c->second == victim) by_build_id_.erase(c);
    }
    stats_.bytes -= victim->bytes;
    ++stats_.evictions;
    lru_.erase(victim);
  }
}

Result<std::shared_ptr<const Binary>> BinaryCache::get(UniqueFd fd, const std::string& name,
                                                       const Binary::LoadOptions& opts) {
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return Errorf("fstat %s: %s", name.c_str(), std::strerror(errno));
  FileIdentity id{uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size),
                  int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  std::shared_ptr<const Binary> deferred;  // a hit that must be parsed again
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_identity_.find(id);
    if (it != by_identity_.end()) {
      ++stats_.hits;
      touch(it->second);
      if (!it->second->binary) return Error{it->second->error};
      auto bin = it->second->binary;
      evict_if_needed();
      if (!bin->debug_deferred() || !root_reachable(opts.debug.root)) return bin;
      deferred = bin;
    }
  }

  // Miss: open the ELF outside the lock (I/O), then check the build-id index
  // before paying for the symbol table.
  auto elf = ElfFile::from_fd(std::move(fd), name);
  if (deferred) {
    // The file no longer parses under the identity it was cached with (a
    // workload can rewrite it and restore its mtime): keep what we have.
    if (!elf) return deferred;
    return retry_deferred(std::move(*elf), id, deferred, opts);
  }
  std::string build_id = elf ? (*elf)->build_id() : "";
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!build_id.empty()) {
      auto it = by_build_id_.find(build_id);
      if (it != by_build_id_.end()) {
        ++stats_.hits;
        Iter e = it->second;
        add_identity(e, id);
        touch(e);
        deferred = e->binary;
        if (!deferred->debug_deferred() || !root_reachable(opts.debug.root)) return deferred;
      }
    }
  }
  if (deferred) return retry_deferred(std::move(*elf), id, deferred, opts);
  ++stats_.misses;
  Entry entry;
  entry.build_id = build_id;
  if (!elf) {
    entry.error = elf.error().message;
  } else {
    auto bin = Binary::load(std::move(*elf), opts);
    if (bin) entry.binary = std::move(*bin);
    else entry.error = bin.error().message;
  }
  entry.bytes = entry.binary ? entry.binary->memory_bytes() : 256;

  std::lock_guard<std::mutex> lock(mu_);
  if (!entry.binary) ++stats_.errors;
  else if (entry.binary->debug_deferred()) ++stats_.debug_deferred;
  lru_.push_front(std::move(entry));
  Iter e = lru_.begin();
  add_identity(e, id);
  if (e->binary && !build_id.empty()) by_build_id_[build_id] = e;
  stats_.bytes += e->bytes;
  auto result = e->binary;
  std::string error = e->error;
  evict_if_needed();
  if (!result) return Error{error};
  return result;
}

Result<std::shared_ptr<const Binary>> BinaryCache::retry_deferred(
    std::unique_ptr<ElfFile> elf, const FileIdentity& id, const std::shared_ptr<const Binary>& old,
    const Binary::LoadOptions& opts) {
  auto bin = Binary::load(std::move(elf), opts);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.debug_retries;
  if (!bin) return old;  // the file was readable before: keep what we had
  std::shared_ptr<const Binary> fresh = std::move(*bin);
  if (fresh->debug_deferred()) ++stats_.debug_deferred;
  if (!fresh->debug_file().empty()) ++stats_.debug_retries_found;
  auto it = by_identity_.find(id);
  if (it != by_identity_.end() && it->second->binary == old) {
    Iter e = it->second;
    stats_.bytes -= e->bytes;
    e->binary = fresh;
    e->bytes = fresh->memory_bytes();
    stats_.bytes += e->bytes;
    evict_if_needed();
  }
  return fresh;
}

std::shared_ptr<const Binary> BinaryCache::find_by_inode(uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_inode_.find(inode_key(dev, ino));
  if (it == by_inode_.end()) return nullptr;
  for (const auto& id : it->second->ids) {
    if (id.dev == dev && id.ino == ino) {
      touch(it->second);
      return it->second->binary;
    }
  }
  return nullptr;
}

bool BinaryCache::contains_inode(uint64_t dev, uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_inode_.find(inode_key(dev, ino));
  if (it == by_inode_.end()) return false;
  for (const auto& id : it->second->ids)
    if (id.dev == dev && id.ino == ino) return true;
  return false;
}

BinaryCache::Stats BinaryCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace ember
