// FrameCache: what Binary::describe() answered for the addresses of one
// binary seen recently, so that a profiler, which meets the same return
// addresses sample after sample, resolves each address through DWARF once.
//
// A hit costs one probe of an open-addressing table and copying the frames'
// strings into the caller's vector (reusing its strings' storage), instead
// of searches over the unit's line rows and scope tree. Frames are stored
// compactly: strings (function names, files) are interned once per cache, a
// frame is five 32-bit fields. Memory is bounded by `max_addresses`: when
// the table is full it is cleared and refills with what is used next.
//
// Not thread-safe: the owner locks.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbolizer/dwarf_info.h"

namespace ember {

class FrameCache {
 public:
  static constexpr size_t kDefaultMaxAddresses = size_t(1) << 18;

  explicit FrameCache(size_t max_addresses = kDefaultMaxAddresses)
      : max_(max_addresses < 1 ? 1 : max_addresses) {}

  // Copies the frames cached for `vaddr` into *out; false when absent.
  bool get(uint64_t vaddr, std::vector<SourceFrame>* out) const {
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(vaddr) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.first == kEmpty) return false;
      if (s.key != vaddr) continue;
      out->resize(s.count);
      for (uint32_t k = 0; k < s.count; ++k) {
        const Frame& f = frames_[s.first + k];
        SourceFrame& o = (*out)[k];
        o.function.assign(strings_[f.function]);
        o.system_name.assign(strings_[f.system_name]);
        o.file.assign(strings_[f.file]);
        o.line = f.line;
        o.inlined = f.inlined != 0;
      }
      return true;
    }
  }

  // Remembers `frames` (possibly none) as the answer for `vaddr`. An
  // address already present keeps its first answer.
  void put(uint64_t vaddr, const std::vector<SourceFrame>& frames) {
    if (size_ >= max_) clear();
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    size_t i = hash(vaddr) & mask;
    for (; slots_[i].first != kEmpty; i = (i + 1) & mask)
      if (slots_[i].key == vaddr) return;
    slots_[i] = Slot{vaddr, uint32_t(frames_.size()), uint32_t(frames.size())};
    for (const auto& f : frames)
      frames_.push_back(Frame{intern(f.function, &last_[0]), intern(f.system_name, &last_[1]),
                              intern(f.file, &last_[2]), int32_t(f.line), uint32_t(f.inlined)});
    ++size_;
  }

  size_t size() const { return size_; }
  size_t max_addresses() const { return max_; }
  // Approximate heap bytes held.
  size_t memory_bytes() const {
    return slots_.capacity() * sizeof(Slot) + frames_.capacity() * sizeof(Frame) + string_bytes_;
  }
  void clear() {
    slots_.clear();
    frames_.clear();
    strings_.clear();
    ids_.clear();
    string_bytes_ = 0;
    size_ = 0;
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t key = 0;
    uint32_t first = kEmpty;  // index into frames_; kEmpty marks a free slot
    uint32_t count = 0;
  };
  struct Frame {
    uint32_t function, system_name, file;  // indexes into strings_
    int32_t line;
    uint32_t inlined;
  };

  static size_t hash(uint64_t v) { return size_t((v * 0x9E3779B97F4A7C15ull) >> 20); }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.first == kEmpty) continue;
      size_t i = hash(s.key) & mask;
      while (slots_[i].first != kEmpty) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  // `last` remembers the previous string of the same field: neighbouring
  // addresses mostly share their function and file, so this usually saves
  // hashing.
  uint32_t intern(const std::string& s, uint32_t* last) {
    if (*last < strings_.size() && strings_[*last] == s) return *last;
    auto it = ids_.find(s);
    if (it != ids_.end()) return *last = it->second;
    // A deque never moves its elements, so the views used as keys stay valid.
    strings_.push_back(s);
    string_bytes_ += s.capacity() + sizeof(std::string) + 48;  // and the index's node
    uint32_t id = uint32_t(strings_.size() - 1);
    ids_.emplace(strings_.back(), id);
    return *last = id;
  }

  size_t max_;
  size_t size_ = 0;
  std::vector<Slot> slots_;  // power-of-two size, at most half full
  std::vector<Frame> frames_;
  std::deque<std::string> strings_;
  std::unordered_map<std::string_view, uint32_t> ids_;
  uint32_t last_[3] = {kEmpty, kEmpty, kEmpty};  // see intern()
  size_t string_bytes_ = 0;
};

}  // namespace ember
