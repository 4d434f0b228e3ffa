// FanoutExporter: hands each interval's profiles to every configured sink at
// once: the local directory and the upload exporter (which itself fans out
// to any number of servers, each with its own queue, thread and API). Every
// sink works on its own thread, so export_batch() (pipeline thread) only
// hands copies over and a slow disk or server delays no other sink.
//
// flush() (main thread, at shutdown) flushes each sink in turn.
#pragma once

#include <memory>
#include <vector>

#include "agent/model/stages.h"

namespace ember {

class FanoutExporter final : public Exporter {
 public:
  explicit FanoutExporter(std::vector<std::unique_ptr<Exporter>> sinks) : sinks_(std::move(sinks)) {}

  void export_batch(ProfileBatch&& batch) override {
    // Profiles share their Locations and labels; a copy costs one vector
    // per profile sample, once per interval per extra sink.
    for (size_t i = 0; i + 1 < sinks_.size(); ++i) sinks_[i]->export_batch(ProfileBatch(batch));
    if (!sinks_.empty()) sinks_.back()->export_batch(std::move(batch));
  }
  void flush() override {
    for (auto& s : sinks_) s->flush();
  }
  const std::vector<std::unique_ptr<Exporter>>& sinks() const { return sinks_; }

 private:
  std::vector<std::unique_ptr<Exporter>> sinks_;
};

}  // namespace ember
