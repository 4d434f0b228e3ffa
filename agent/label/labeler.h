// ProcessLabeler: the label stage. Gives each sample the labels of the series
// it belongs to. Today the series is the "process group": processes running
// the same executable share a service_name (the executable's base name),
// kernel threads go to service_name="kernel". `ember record` uses a single
// series for everything it recorded.
//
// LabelSets are built once per process snapshot and shared by all its
// samples. Runs on the pipeline thread.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/pipeline/stages.h"

namespace ember {

class ProcessLabeler final : public Labeler {
 public:
  struct Options {
    // When set, every sample goes to one series with these labels.
    bool single_series = false;
    // Added to every series (the YAML `labels:` map).
    std::vector<std::pair<std::string, std::string>> static_labels;
  };
  explicit ProcessLabeler(Options opts);

  LabelSetRef labels_for(const SymbolizedSample& sample) override;

  // The group name of a process, as used for service_name.
  static std::string service_name_for(const SampleMeta& meta);

 private:
  LabelSetRef intern(std::vector<std::pair<std::string, std::string>> labels);

  Options opts_;
  LabelSetRef single_;
  std::unordered_map<std::string, LabelSetRef> by_service_;
};

}  // namespace ember
