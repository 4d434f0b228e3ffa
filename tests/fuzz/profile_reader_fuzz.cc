// What `ember report` and `ember diff` read: a profile file from anywhere (a
// CI artifact, a Pyroscope export), pprof (gzipped or not) or folded stacks.
// A profile that reads is then summarized and compared with itself, and every
// rendering made (tables, Markdown, JSON, folded, and the flame graph page
// plain and differential, with its embedded stacks), so that hostile names
// go through all of them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "agent/analyze/diff.h"
#include "agent/analyze/summary.h"
#include "agent/export/flamegraph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs every string that is not UTF-8; the reader's error says it.
  static bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  ember::ProfileReadOptions opts;
  opts.max_bytes = 16 << 20;  // small bounds: a fuzz input must not take seconds
  opts.max_frames = 1 << 20;
  auto p = ember::read_profile(std::string_view(reinterpret_cast<const char*>(data), size), opts);
  if (!p.ok()) return 0;
  (void)ember::render_top(*p, ember::TopOptions{10, size % 2 == 0});
  auto d = ember::diff_profiles(*p, *p);
  if (!d.ok()) return 0;
  (void)ember::render_diff_text(*d, 10);
  (void)ember::render_diff_markdown(*d, 10, 5);
  (void)ember::render_diff_json(*d, 5);
  (void)ember::render_diff_folded(*d);
  std::vector<ember::FlameStack> stacks;
  for (const auto& st : p->stacks) {
    ember::FlameStack f;
    for (uint32_t n : st.frames) f.frames.push_back(p->names[n]);
    f.count = uint64_t(st.value);
    f.base_count = uint64_t(st.samples);
    stacks.push_back(std::move(f));
  }
  ember::FlamegraphOptions fo;
  (void)ember::render_flamegraph_html(stacks, fo);
  fo.base_total = uint64_t(p->total_samples());  // differential: samples as the "base"
  (void)ember::render_flamegraph_svg(stacks, fo);
  return 0;
}
