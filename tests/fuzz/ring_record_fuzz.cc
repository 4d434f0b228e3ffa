// What BPF hands user space through the ring buffer: a sample, exec or exit
// record. Decoded as the drain thread does, and a sample then goes through
// the unwind stage as the pipeline thread does. The record's layout is ours,
// but its contents are the workload's: user-stack slots are read from its
// stack, and a stack copy is up to 20 KiB of its stack bytes and registers,
// which the reference unwinder walks with real tables.
//
// So that the walk meets real CFI rather than unmapped addresses, a copy's pc
// is moved into this program's own executable mappings (whose tables the
// stage builds once, from this process's snapshot): the fuzzer chooses where
// in the text, and every stack byte and register.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <variant>

#include "agent/pipeline/record_decoder.h"
#include "agent/runtimes/register.h"
#include "agent/unwind/stack_unwinder.h"
#include "symbolizer/process_maps.h"

namespace {

struct Stage {
  ember::Metrics metrics;
  ember::unwind::UnwindTableCache tables{{}};
  ember::FrameOrigins origins = ember::make_origins(ember::OriginDeps{metrics});
  ember::StackUnwinder unwinder{metrics, &tables, origins};
  std::shared_ptr<const ember::ProcessSnapshot> self;
  uint64_t text_bytes = 0;  // of all executable file mappings, end to end

  Stage() {
    auto snap = ember::read_process_snapshot("/proc", getpid());
    if (snap.ok()) self = std::move(*snap);
    if (self)
      for (const auto& m : self->mappings)
        if (m.is_file()) text_bytes += m.end - m.start;
  }

  // The address `offset` bytes into the executable file mappings, in order.
  uint64_t text_address(uint64_t offset) const {
    if (text_bytes == 0) return offset;
    offset %= text_bytes;
    for (const auto& m : self->mappings) {
      if (!m.is_file()) continue;
      if (offset < m.end - m.start) return m.start + offset;
      offset -= m.end - m.start;
    }
    return offset;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Stage* stage = new Stage();  // the tables are built once, for every input
  ember::DecodedRecord rec = ember::decode_record(data, size);
  auto* raw = std::get_if<ember::RawSample>(&rec);
  if (!raw) return 0;
  raw->meta.process = stage->self;
  if (raw->stack_copy) {
    raw->stack_copy->pc = stage->text_address(raw->stack_copy->pc);
    if (!raw->user_stack.empty()) raw->user_stack.back() = raw->stack_copy->pc;
  }
  // No end_interval(): the stage keeps one rule source per snapshot, and
  // there is only this one.
  (void)stage->unwinder.unwind(std::move(*raw));
  return 0;
}
