// Decodes the byte records of the BPF ring buffer into pipeline values.
// Pure: no BPF, no I/O, so unit tests feed it hand-built records.
#pragma once

#include <cstddef>
#include <string>
#include <variant>

#include "agent/model/types.h"

namespace ember {

// The end of a run-queue wait whose off-CPU sample came first, when the
// wait began (EMBER_SAMPLE_F_VALUE_FOLLOWS): that sample's value, in ns.
// Drain-thread only: WaitJoin pairs it with its sample.
struct WaitEndEvent {
  uint32_t tid = 0;
  uint64_t start_ns = 0;  // when the wait began: its sample's time
  uint64_t value = 0;
};

struct DecodeError {
  std::string reason;
};

using DecodedRecord = std::variant<RawSample, ExecEvent, ExitEvent, WaitEndEvent, DecodeError>;

DecodedRecord decode_record(const void* data, size_t size);

// Kernel dev_t (major << 20 | minor) to the user-space encoding.
uint64_t kernel_dev_to_user(uint32_t kdev);

}  // namespace ember
