// Clock: the injectable source of time for every stage.
//
// BPF timestamps samples with CLOCK_MONOTONIC (bpf_ktime_get_ns); profiles are
// stamped with wall-clock time. Stages take a Clock& so tests can drive time.
#pragma once

#include <cstdint>
#include <ctime>

namespace ember {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t monotonic_ns() const = 0;
  virtual uint64_t realtime_ns() const = 0;
  // Converts a CLOCK_MONOTONIC timestamp (as BPF records it) to wall-clock.
  uint64_t to_realtime(uint64_t mono_ns) const {
    return realtime_ns() - monotonic_ns() + mono_ns;
  }
};

class SystemClock final : public Clock {
 public:
  uint64_t monotonic_ns() const override { return read(CLOCK_MONOTONIC); }
  uint64_t realtime_ns() const override { return read(CLOCK_REALTIME); }
  static const SystemClock& instance() {
    static SystemClock c;
    return c;
  }

 private:
  static uint64_t read(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  }
};

// A clock tests set by hand.
class ManualClock final : public Clock {
 public:
  uint64_t monotonic_ns() const override { return mono_; }
  uint64_t realtime_ns() const override { return real_; }
  void set(uint64_t mono, uint64_t real) {
    mono_ = mono;
    real_ = real;
  }
  void advance(uint64_t ns) {
    mono_ += ns;
    real_ += ns;
  }

 private:
  uint64_t mono_ = 1'000'000'000;
  uint64_t real_ = 1'700'000'000'000'000'000ull;
};

}  // namespace ember
