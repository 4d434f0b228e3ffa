#include "agent/pipeline/pipeline.h"
#include "common/thread_name.h"

#include <algorithm>

#include "agent/pipeline/record_decoder.h"
#include "common/drops.h"
#include "common/log.h"
#include "ember_abi.h"

namespace ember {

Pipeline::Pipeline(Options opts, Stages stages, ProcessTable* processes, const Clock& clock,
                   Metrics& metrics)
    : opts_(opts),
      stages_(stages),
      processes_(processes),
      clock_(clock),
      received_(metrics.counter("ember_samples_received_total", "",
                                "Samples drained from the ring buffer")),
      processed_(metrics.counter("ember_samples_processed_total", "",
                                 "Samples taken through every pipeline stage")),
      queue_full_(drop_counter(metrics, Drop::kSamplePipelineQueueFull)),
      malformed_(metrics.counter("ember_records_malformed_total", "",
                                 "Ring buffer records that could not be decoded")),
      filtered_(metrics.counter("ember_samples_unlabeled_total", "",
                                "Samples the label stage chose not to profile")),
      waits_(metrics) {
  interval_start_ns_ = clock_.realtime_ns();
}

Pipeline::~Pipeline() { stop(); }

void Pipeline::on_record(const void* data, size_t size) {
  DecodedRecord rec = decode_record(data, size);
  if (auto* s = std::get_if<RawSample>(&rec)) {
    on_sample(std::move(*s));
  } else if (auto* e = std::get_if<ExecEvent>(&rec)) {
    if (processes_) processes_->on_exec(*e);
    enqueue_event(Item::Kind::kExec, e->pid);
  } else if (auto* w = std::get_if<WaitEndEvent>(&rec)) {
    if (auto s = waits_.complete(*w)) enqueue_sample(std::move(*s));
  } else if (auto* x = std::get_if<ExitEvent>(&rec)) {
    if (processes_) processes_->on_exit(*x);
    enqueue_event(Item::Kind::kExit, x->pid);
  } else {
    malformed_.add();
    EMBER_WARN_LIMITED("malformed ring buffer record: %s",
                       std::get<DecodeError>(rec).reason.c_str());
  }
}

void Pipeline::on_sample(RawSample&& s) {
  received_.add();
  if (processes_ && !s.meta.process && s.meta.pid != 0 &&
      !(s.flags & EMBER_SAMPLE_F_KERNEL_THREAD))
    s.meta.process =
        processes_->snapshot_for(s.meta.pid, s.user_stack, s.stack_copy ? s.meta.time_ns : 0);
  if (s.flags & EMBER_SAMPLE_F_VALUE_FOLLOWS) {
    waits_.hold(std::move(s));
    return;
  }
  enqueue_sample(std::move(s));
}

void Pipeline::enqueue_sample(RawSample&& s) {
  if (pending_.size() >= opts_.max_queued_samples) {
    queue_full_.add();
    return;
  }
  pending_.push_back(Item{Item::Kind::kSample, 0, std::move(s)});
  // A drain that never ends (a ring refilled as fast as it empties) still
  // hands over in bounded batches.
  if (pending_.size() >= kBatchWake) on_drained();
}

void Pipeline::enqueue_event(Item::Kind kind, uint32_t pid) {
  // Never dropped: tiny, one per process, and the label stage needs them.
  pending_.push_back(Item{kind, pid, {}});
}

void Pipeline::on_drained() {
  if (pending_.empty()) return;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t room = opts_.max_queued_samples > queue_.size() ? opts_.max_queued_samples - queue_.size() : 0;
    size_t n = 0;
    for (auto& item : pending_) {
      if (item.kind == Item::Kind::kSample) {
        if (n >= room) {
          queue_full_.add();
          continue;
        }
        ++n;
      }
      queue_.push_back(std::move(item));
    }
    // An idle thread is woken; a gathering one wakes on its own timer.
    wake = idle_ || queue_.size() >= opts_.max_queued_samples / 2;
  }
  pending_.clear();
  if (wake) cv_.notify_one();
}

void Pipeline::handle(Item&& item) {
  switch (item.kind) {
    case Item::Kind::kSample: process(std::move(item.sample)); break;
    case Item::Kind::kExec: stages_.labeler.process_exec(item.pid); break;
    case Item::Kind::kExit: stages_.labeler.process_exit(item.pid); break;
  }
}

void Pipeline::process(RawSample&& raw) {
  UnwoundSample u = stages_.unwinder.unwind(std::move(raw));
  SymbolizedSample s = stages_.symbolizer.symbolize(std::move(u));
  LabelDecision d = stages_.labeler.labels_for(s);
  if (!d.labels && !d.pending) {
    filtered_.add();
    return;
  }
  stages_.aggregator.add(LabeledSample{std::move(s), std::move(d.labels), std::move(d.pending)});
  processed_.add();
}

void Pipeline::flush_interval_at(uint64_t end_ns) {
  end_ns = std::max(end_ns, interval_start_ns_);
  ProfileBatch batch = stages_.aggregator.take(interval_start_ns_, end_ns);
  interval_start_ns_ = end_ns;
  stages_.unwinder.end_interval();
  stages_.symbolizer.end_interval();
  stages_.labeler.end_interval();
  if (!batch.profiles.empty()) stages_.exporter.export_batch(std::move(batch));
}

void Pipeline::start() {
  if (thread_.joinable()) return;
  interval_start_ns_ = clock_.realtime_ns();
  thread_ = std::thread([this] { run(); });
}

void Pipeline::stop() {
  // The drain thread has stopped: run-queue waits still open now never end
  // inside the recording, and its last batch goes.
  waits_.drop_all();
  on_drained();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Pipeline::run() {
  name_this_thread("ember-pipeline");
  const bool periodic = opts_.interval.count() > 0;
  uint64_t next_flush = clock_.monotonic_ns() + uint64_t(opts_.interval.count());
  std::vector<Item> batch;
  uint64_t last_batch = 0;  // monotonic time the last batch was taken
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (!ready()) {
        idle_ = true;
        if (periodic) {
          uint64_t now = clock_.monotonic_ns();
          uint64_t wait_ns = next_flush > now ? next_flush - now : 0;
          cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns), ready);
        } else {
          cv_.wait(lock, ready);
        }
        idle_ = false;
      }
      // Handoffs closer together than batch_delay (see Options::batch_delay)
      // let the rest of it gather first, never past the interval's end. At
      // the drain thread's steady pace (one handoff per poll) this never
      // waits, so it costs no extra wakeup.
      uint64_t now = clock_.monotonic_ns();
      uint64_t earliest = last_batch + uint64_t(opts_.batch_delay.count());
      if (!stopping_ && !queue_.empty() && last_batch != 0 && now < earliest) {
        uint64_t wait_ns = earliest - now;
        if (periodic) wait_ns = std::min(wait_ns, next_flush > now ? next_flush - now : 0);
        cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns),
                     [this] { return stopping_ || queue_.size() >= opts_.max_queued_samples / 2; });
      }
      batch.swap(queue_);
      stopping = stopping_;
    }
    last_batch = clock_.monotonic_ns();
    for (auto& item : batch) handle(std::move(item));
    batch.clear();
    if (periodic && clock_.monotonic_ns() >= next_flush) {
      // The interval ends when it was due, not when this thread got to it:
      // a flush late by the time one batch took (the first symbolization of
      // a binary can take 100s of ms) would otherwise end one interval late
      // and make the next one short by as much. Its samples were queued
      // before the due time; those that came during the delay are still in
      // the queue and belong to the next interval. Intervals of the full
      // length also keep Pyroscope's ingest ranges (whole seconds) back to
      // back: a short one, rounded up to one second, overlapped the next
      // (a CI failure in UploadE2E).
      uint64_t late = clock_.monotonic_ns() - next_flush;
      uint64_t now = clock_.realtime_ns();
      flush_interval_at(now > late ? now - late : now);
      next_flush += uint64_t(opts_.interval.count());
      // More than a whole interval behind (a stall): realign instead of
      // flushing back-to-back; the next interval then spans the stall.
      // Less behind, the next flush comes early and catches up.
      if (next_flush + uint64_t(opts_.interval.count()) < clock_.monotonic_ns())
        next_flush = clock_.monotonic_ns() + uint64_t(opts_.interval.count());
    }
    if (stopping) {
      std::unique_lock<std::mutex> lock(mu_);
      if (!queue_.empty()) continue;  // samples drained during shutdown
      break;
    }
  }
  flush_interval();
  stages_.exporter.flush();
}

}  // namespace ember
