// The text a workload or the kernel hands over, one parser per input (the
// first byte picks): /proc/kallsyms, /proc/PID/maps, /proc/PID/cgroup and a
// cgroup path, a perf map (/tmp/perf-PID.map), a symbol name to demangle.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "k8s/cgroup.h"
#include "symbolizer/demangle.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/process_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto k = ember::Kallsyms::parse(text);
      if (k.ok())
        for (uint64_t a : {uint64_t(0), uint64_t(0xffffffff81000000), ~uint64_t(0)}) (void)(*k)->lookup(a);
      break;
    }
    case 1: {
      auto maps = ember::parse_proc_maps(text);
      if (maps.ok())
        for (const auto& m : *maps) (void)m.clean_path();
      break;
    }
    case 2:
      (void)ember::parse_proc_cgroup(text);
      (void)ember::parse_cgroup_path(text);
      break;
    case 3: {
      ember::PerfMap map;
      size_t used = map.append(text, 1000);
      if (used <= text.size()) map.append(text.substr(used), 1000);
      for (uint64_t a : {uint64_t(0), uint64_t(0x1000), uint64_t(0x7f0000000000)}) (void)map.lookup(a);
      break;
    }
    case 4:
      (void)ember::demangle(text, ember::DemangleStyle::kFull);
      (void)ember::demangle(text, ember::DemangleStyle::kSimplified);
      break;
  }
  return 0;
}
