#include "agent/pipeline/record_decoder.h"

#include <sys/sysmacros.h>

#include <cstddef>
#include <cstring>

#include "ember_abi.h"

namespace ember {

// The layouts BPF writes; a mismatch here is a build error, not corruption.
static_assert(offsetof(ember_sample, stack) == EMBER_SAMPLE_HDR_SIZE);
static_assert(offsetof(ember_sample, comm) == 48);
static_assert(offsetof(ember_sample, unwind_stop) == 46);
static_assert(offsetof(ember_sample, event) == 47);
static_assert(offsetof(ember_sample, value) == 64);
static_assert(EMBER_EVENT_CPU == int(EventKind::kCpu) && EMBER_EVENT_OFF_CPU == int(EventKind::kOffCpu) &&
              EMBER_EVENT_WALL == int(EventKind::kWall) && EMBER_EVENT_MAX == kEventKinds,
              "enum ember_event and EventKind must agree");
static_assert(offsetof(ember_sample, copy) == EMBER_SAMPLE_HDR_SIZE + EMBER_STACK_SLOTS * 8);
static_assert(offsetof(ember_stack_copy, data) == EMBER_STACK_COPY_HDR_SIZE);
static_assert(EMBER_MAX_STACK_DEPTH + EMBER_MAX_USER_DEPTH <= EMBER_STACK_SLOTS);
static_assert(sizeof(ember_exec_event) == 56 + EMBER_COMM_LEN + EMBER_MAX_FILENAME);
static_assert(offsetof(ember_exec_event, entry) == 48);
static_assert(sizeof(ember_exit_event) == 16);
static_assert(EMBER_MAX_STACK_DEPTH <= 127, "the BPF side masks kernel lengths with 0x7f");

uint64_t kernel_dev_to_user(uint32_t kdev) { return makedev(kdev >> 20, kdev & 0xfffff); }

namespace {

std::string bounded_string(const char* p, size_t max) {
  return std::string(p, strnlen(p, max));
}

}  // namespace

DecodedRecord decode_record(const void* data, size_t size) {
  if (size < 4) return DecodeError{"record shorter than its kind"};
  uint32_t kind;
  std::memcpy(&kind, data, 4);
  switch (kind) {
    case EMBER_REC_SAMPLE: {
      if (size < EMBER_SAMPLE_HDR_SIZE) return DecodeError{"sample shorter than its header"};
      ember_sample hdr;
      std::memcpy(&hdr, data, EMBER_SAMPLE_HDR_SIZE);
      size_t frames = size_t(hdr.kstack_len) + hdr.ustack_len;
      bool has_copy = hdr.flags & EMBER_SAMPLE_F_STACK_COPY;
      size_t stack_bytes = has_copy ? EMBER_STACK_SLOTS * 8 : frames * 8;
      if (hdr.kstack_len > EMBER_MAX_STACK_DEPTH || hdr.ustack_len > EMBER_MAX_USER_DEPTH ||
          size < EMBER_SAMPLE_HDR_SIZE + stack_bytes)
        return DecodeError{"sample stack lengths exceed the record"};
      auto event = event_kind_from_u8(hdr.event);
      if (!event) return DecodeError{"unknown event kind " + std::to_string(hdr.event)};
      RawSample s;
      s.meta.event = *event;
      s.meta.value = hdr.value;
      s.meta.pid = hdr.pid;
      s.meta.tid = hdr.tid;
      s.meta.cpu = hdr.cpu;
      s.meta.time_ns = hdr.time_ns;
      s.meta.cgroup_id = hdr.cgroup_id;
      s.meta.comm = bounded_string(hdr.comm, sizeof(hdr.comm));
      s.flags = hdr.flags;
      s.kstack_err = hdr.kstack_err;
      s.ustack_err = hdr.ustack_err;
      s.unwind_stop = hdr.unwind_stop;
      const auto* stack = reinterpret_cast<const uint8_t*>(data) + EMBER_SAMPLE_HDR_SIZE;
      s.kernel_stack.resize(hdr.kstack_len);
      s.user_stack.resize(hdr.ustack_len);
      // memcpy of an empty vector's data() (null) is UB even for 0 bytes.
      if (hdr.kstack_len) std::memcpy(s.kernel_stack.data(), stack, size_t(hdr.kstack_len) * 8);
      if (hdr.ustack_len)
        std::memcpy(s.user_stack.data(), stack + size_t(hdr.kstack_len) * 8, size_t(hdr.ustack_len) * 8);
      if (has_copy) {
        const uint8_t* cp = stack + EMBER_STACK_SLOTS * 8;
        size_t avail = size - EMBER_SAMPLE_HDR_SIZE - EMBER_STACK_SLOTS * 8;
        if (avail < EMBER_STACK_COPY_HDR_SIZE) return DecodeError{"stack copy header truncated"};
        ember_stack_copy c;
        std::memcpy(&c, cp, EMBER_STACK_COPY_HDR_SIZE);
        if (c.len > sizeof(c.data) || avail < EMBER_STACK_COPY_HDR_SIZE + c.len)
          return DecodeError{"stack copy longer than the record"};
        StackCopy sc;
        sc.pc = c.pc;
        sc.sp = c.sp;
        sc.bp = c.bp;
        sc.base = c.base;
        std::memcpy(sc.gpr.data(), c.gpr, sizeof(c.gpr));
        sc.is_return = c.is_return != 0;
        sc.first = c.first != 0;
        sc.bytes.assign(cp + EMBER_STACK_COPY_HDR_SIZE, cp + EMBER_STACK_COPY_HDR_SIZE + c.len);
        s.stack_copy = std::move(sc);
      }
      return s;
    }
    case EMBER_REC_EXEC: {
      if (size < sizeof(ember_exec_event)) return DecodeError{"exec event truncated"};
      ember_exec_event e;
      std::memcpy(&e, data, sizeof(e));
      ExecEvent ev;
      ev.pid = e.pid;
      ev.time_ns = e.time_ns;
      ev.hint.dev = dev_t(kernel_dev_to_user(e.exe_dev));
      ev.hint.inode = e.exe_ino;
      ev.hint.start_code = e.start_code;
      ev.hint.end_code = e.end_code;
      ev.hint.entry = e.entry;
      ev.comm = bounded_string(e.comm, sizeof(e.comm));
      ev.filename = bounded_string(e.filename, sizeof(e.filename));
      return ev;
    }
    case EMBER_REC_EXIT: {
      if (size < sizeof(ember_exit_event)) return DecodeError{"exit event truncated"};
      ember_exit_event e;
      std::memcpy(&e, data, sizeof(e));
      return ExitEvent{e.pid, e.time_ns};
    }
    case EMBER_REC_WAIT_END: {
      if (size < sizeof(ember_wait_end)) return DecodeError{"wait end truncated"};
      ember_wait_end e;
      std::memcpy(&e, data, sizeof(e));
      return WaitEndEvent{e.tid, e.start_ns, e.value};
    }
    default:
      return DecodeError{"unknown record kind " + std::to_string(kind)};
  }
}

}  // namespace ember
