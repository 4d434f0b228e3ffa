// FrameCache: what Binary::describe() answered for the addresses of one
// binary seen recently, so that a profiler, which meets the same return
// addresses sample after sample, resolves each address through DWARF once.
//
// A hit costs one probe of an open-addressing table and copying the frames'
// strings into the caller's vector (reusing its strings' storage), instead
// of searches over the unit's line rows and scope tree. An answer is stored
// as one record in an append-only arena of fixed-size blocks (lengths, line,
// flags, then the bytes of each frame's strings): storing it is a probe and
// a copy, with no rehashing of strings and no moving of old records, cheap
// enough to cache every answer even when few addresses repeat. Memory is
// bounded by `max_addresses` and `max_bytes` of arena: when either is
// reached the cache is cleared and refills with what is used next.
//
// Not thread-safe: the owner locks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "symbolizer/dwarf_info.h"

namespace ember {

class FrameCache {
 public:
  static constexpr size_t kDefaultMaxAddresses = size_t(1) << 18;
  static constexpr size_t kDefaultMaxBytes = size_t(32) << 20;
  // Arena block; larger answers are not kept. Every binary with a cached
  // address holds at least one block: at 256 KiB the 14 binaries of this
  // machine's steady state held 3.7 MiB (heaptrack), mostly empty. An
  // answer over 32 KiB (dozens of inlined frames with long template names)
  // is looked up in DWARF each time instead.
  static constexpr size_t kBlockBytes = size_t(32) << 10;

  explicit FrameCache(size_t max_addresses = kDefaultMaxAddresses, size_t max_bytes = kDefaultMaxBytes)
      : max_(max_addresses < 1 ? 1 : max_addresses),
        max_bytes_(std::clamp<size_t>(max_bytes, 1, UINT32_MAX / 2)),
        block_(std::min(kBlockBytes, max_bytes_)) {}

  // Copies the frames cached for `vaddr` into *out; false when absent.
  bool get(uint64_t vaddr, std::vector<SourceFrame>* out) const {
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(vaddr) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.offset == kEmpty) return false;
      if (s.key != vaddr) continue;
      out->resize(s.count);
      const char* p = blocks_[s.offset / block_].get() + s.offset % block_;
      for (uint32_t k = 0; k < s.count; ++k) {
        FrameHeader h;
        std::memcpy(&h, p, sizeof(h));
        p += sizeof(h);
        SourceFrame& o = (*out)[k];
        o.function.assign(p, h.function_len);
        p += h.function_len;
        o.system_name.assign(p, h.system_name_len);
        p += h.system_name_len;
        o.file.assign(p, h.file_len);
        p += h.file_len;
        o.line = h.line;
        o.inlined = h.inlined != 0;
      }
      return true;
    }
  }

  // Remembers `frames` (possibly none) as the answer for `vaddr`. An
  // address already present keeps its first answer; an answer larger than
  // a block or the whole budget is not kept.
  void put(uint64_t vaddr, const std::vector<SourceFrame>& frames) {
    size_t need = 0;
    for (const auto& f : frames)
      need += sizeof(FrameHeader) + f.function.size() + f.system_name.size() + f.file.size();
    if (need > block_) return;
    bool new_block = blocks_.empty() || tail_ + need > block_;
    if (size_ >= max_ || (new_block && (blocks_.size() + 1) * block_ > max_bytes_)) {
      clear();
      new_block = true;
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t mask = slots_.size() - 1;
    size_t i = hash(vaddr) & mask;
    for (; slots_[i].offset != kEmpty; i = (i + 1) & mask)
      if (slots_[i].key == vaddr) return;
    if (new_block) {
      // The rest of the last block stays unused (and counted).
      blocks_.emplace_back(new char[block_]);
      tail_ = 0;
    }
    slots_[i] = Slot{vaddr, uint32_t((blocks_.size() - 1) * block_ + tail_), uint32_t(frames.size())};
    char* p = blocks_.back().get() + tail_;
    auto copy = [&p](const void* src, size_t n) {
      std::memcpy(p, src, n);
      p += n;
    };
    for (const auto& f : frames) {
      FrameHeader h{int32_t(f.line), uint32_t(f.function.size()), uint32_t(f.system_name.size()),
                    uint32_t(f.file.size()), uint32_t(f.inlined)};
      copy(&h, sizeof(h));
      copy(f.function.data(), f.function.size());
      copy(f.system_name.data(), f.system_name.size());
      copy(f.file.data(), f.file.size());
    }
    tail_ += need;
    ++size_;
  }

  size_t size() const { return size_; }
  // Approximate heap bytes held.
  size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot) + blocks_.size() * block_; }
  void clear() {
    slots_ = {};
    blocks_.clear();
    tail_ = 0;
    size_ = 0;
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t key = 0;
    uint32_t offset = kEmpty;  // of the answer in arena_; kEmpty marks a free slot
    uint32_t count = 0;        // frames
  };
  struct FrameHeader {  // followed by the three strings' bytes
    int32_t line;
    uint32_t function_len, system_name_len, file_len;
    uint32_t inlined;
  };

  static size_t hash(uint64_t v) { return size_t((v * 0x9E3779B97F4A7C15ull) >> 20); }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.offset == kEmpty) continue;
      size_t i = hash(s.key) & mask;
      while (slots_[i].offset != kEmpty) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  size_t max_, max_bytes_;
  size_t block_;  // bytes per arena block: kBlockBytes, or less under a small budget
  size_t size_ = 0;
  std::vector<Slot> slots_;  // power-of-two size, at most 3/4 full
  // The answers, back to back. A record's offset is block * block_ +
  // offset in the block; tail_ is where the next one goes in the last block.
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t tail_ = 0;
};

}  // namespace ember
