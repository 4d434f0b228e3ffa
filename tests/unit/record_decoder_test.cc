#include "agent/pipeline/record_decoder.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "ember_abi.h"

namespace ember {
namespace {

std::vector<uint8_t> make_sample(std::vector<uint64_t> kstack, std::vector<uint64_t> ustack) {
  ember_sample s{};
  s.kind = EMBER_REC_SAMPLE;
  s.pid = 100;
  s.tid = 101;
  s.cpu = 3;
  s.time_ns = 123456789;
  s.cgroup_id = 77;
  s.kstack_len = uint16_t(kstack.size());
  s.ustack_len = uint16_t(ustack.size());
  s.flags = EMBER_SAMPLE_F_IN_KERNEL;
  s.event = EMBER_EVENT_CPU;
  s.value = 10'101'010;
  std::strcpy(s.comm, "worker");
  size_t i = 0;
  for (auto a : kstack) s.stack[i++] = a;
  for (auto a : ustack) s.stack[i++] = a;
  std::vector<uint8_t> out(EMBER_SAMPLE_HDR_SIZE + i * 8);
  std::memcpy(out.data(), &s, out.size());
  return out;
}

TEST(RecordDecoder, DecodesAVariableLengthSample) {
  auto bytes = make_sample({0xffffffff81001000, 0xffffffff81002000}, {0x401000, 0x402000, 0x403000});
  auto rec = decode_record(bytes.data(), bytes.size());
  auto* s = std::get_if<RawSample>(&rec);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->meta.pid, 100u);
  EXPECT_EQ(s->meta.tid, 101u);
  EXPECT_EQ(s->meta.cpu, 3u);
  EXPECT_EQ(s->meta.time_ns, 123456789u);
  EXPECT_EQ(s->meta.cgroup_id, 77u);
  EXPECT_EQ(s->meta.comm, "worker");
  EXPECT_EQ(s->flags, EMBER_SAMPLE_F_IN_KERNEL);
  EXPECT_EQ(s->meta.event, EventKind::kCpu);
  EXPECT_EQ(s->meta.value, 10'101'010u);
  EXPECT_EQ(s->kernel_stack, (std::vector<uint64_t>{0xffffffff81001000, 0xffffffff81002000}));
  EXPECT_EQ(s->user_stack, (std::vector<uint64_t>{0x401000, 0x402000, 0x403000}));
}

TEST(RecordDecoder, DecodesAStackCopy) {
  ember_sample s{};
  s.kind = EMBER_REC_SAMPLE;
  s.pid = 7;
  s.kstack_len = 1;
  s.ustack_len = 2;
  s.flags = EMBER_SAMPLE_F_STACK_COPY;
  s.unwind_stop = EMBER_STOP_NO_TABLES;
  s.stack[0] = 0xffffffff81001000;
  s.stack[1] = 0x401000;
  s.stack[2] = 0x402000 | EMBER_FRAME_NOT_RETURN;
  s.copy.pc = 0x402000;
  s.copy.sp = 0x7ffc0010;
  s.copy.bp = 0x7ffc0100;
  s.copy.base = 0x7ffc0000;
  s.copy.gpr[5] = 55;
  s.copy.len = 4096;
  s.copy.is_return = 1;
  s.copy.data[16] = 0xab;
  size_t size = EMBER_SAMPLE_HDR_SIZE + EMBER_STACK_SLOTS * 8 + EMBER_STACK_COPY_HDR_SIZE + 4096;
  std::vector<uint8_t> bytes(size);
  std::memcpy(bytes.data(), &s, size);
  auto rec = decode_record(bytes.data(), bytes.size());
  auto* r = std::get_if<RawSample>(&rec);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->unwind_stop, EMBER_STOP_NO_TABLES);
  EXPECT_EQ(r->kernel_stack, (std::vector<uint64_t>{0xffffffff81001000}));
  EXPECT_EQ(r->user_stack, (std::vector<uint64_t>{0x401000, 0x402000 | EMBER_FRAME_NOT_RETURN}));
  ASSERT_TRUE(r->stack_copy.has_value());
  EXPECT_EQ(r->stack_copy->sp, 0x7ffc0010u);
  EXPECT_EQ(r->stack_copy->base, 0x7ffc0000u);
  EXPECT_EQ(r->stack_copy->gpr[5], 55u);
  EXPECT_TRUE(r->stack_copy->is_return);
  ASSERT_EQ(r->stack_copy->bytes.size(), 4096u);
  EXPECT_EQ(r->stack_copy->bytes[16], 0xab);
  // A copy claiming more bytes than the record holds is refused.
  EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_record(bytes.data(), bytes.size() - 1)));
}

TEST(RecordDecoder, CarriesTheEventAndRefusesAnUnknownOne) {
  auto bytes = make_sample({}, {0x401000});
  bytes[offsetof(ember_sample, event)] = EMBER_EVENT_OFF_CPU;
  auto rec = decode_record(bytes.data(), bytes.size());
  auto* s = std::get_if<RawSample>(&rec);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->meta.event, EventKind::kOffCpu);
  bytes[offsetof(ember_sample, event)] = EMBER_EVENT_MAX;
  auto bad = decode_record(bytes.data(), bytes.size());
  ASSERT_TRUE(std::holds_alternative<DecodeError>(bad));
  EXPECT_NE(std::get<DecodeError>(bad).reason.find("event"), std::string::npos);
}

TEST(RecordDecoder, RejectsTruncatedRecords) {
  auto bytes = make_sample({1, 2}, {3, 4});
  auto rec = decode_record(bytes.data(), bytes.size() - 8);
  EXPECT_TRUE(std::holds_alternative<DecodeError>(rec));
  EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_record(bytes.data(), 10)));
  EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_record(bytes.data(), 2)));
  uint32_t bogus = 99;
  EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_record(&bogus, 4)));
}

TEST(RecordDecoder, DecodesExecWithDeviceConversion) {
  ember_exec_event e{};
  e.kind = EMBER_REC_EXEC;
  e.pid = 42;
  e.time_ns = 5;
  e.exe_ino = 247230;
  e.exe_dev = (254u << 20) | 1u;  // kernel encoding of 254:1
  e.start_code = 0x1000;
  e.end_code = 0x2000;
  e.entry = 0x1100;
  std::strcpy(e.comm, "ls");
  std::strcpy(e.filename, "/usr/bin/ls");
  auto rec = decode_record(&e, sizeof(e));
  auto* ev = std::get_if<ExecEvent>(&rec);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->pid, 42u);
  EXPECT_EQ(ev->hint.dev, makedev(254, 1));
  EXPECT_EQ(ev->hint.inode, 247230u);
  EXPECT_EQ(ev->hint.start_code, 0x1000u);
  EXPECT_EQ(ev->hint.end_code, 0x2000u);
  EXPECT_EQ(ev->hint.entry, 0x1100u);
  EXPECT_EQ(ev->comm, "ls");
  EXPECT_EQ(ev->filename, "/usr/bin/ls");
}

TEST(RecordDecoder, DecodesWaitEnd) {
  ember_wait_end w{EMBER_REC_WAIT_END, 42, 1000, 7'000'000};
  auto rec = decode_record(&w, sizeof(w));
  auto* ev = std::get_if<WaitEndEvent>(&rec);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->tid, 42u);
  EXPECT_EQ(ev->start_ns, 1000u);
  EXPECT_EQ(ev->value, 7'000'000u);
  EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_record(&w, sizeof(w) - 1)));
}

TEST(RecordDecoder, DecodesExit) {
  ember_exit_event x{EMBER_REC_EXIT, 9, 11};
  auto rec = decode_record(&x, sizeof(x));
  auto* ev = std::get_if<ExitEvent>(&rec);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->pid, 9u);
  EXPECT_EQ(ev->time_ns, 11u);
}

}  // namespace
}  // namespace ember
