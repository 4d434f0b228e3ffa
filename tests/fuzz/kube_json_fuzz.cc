// What the Kubernetes API server sends: a pod list page, a watch event line,
// an error Status (the first byte picks).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "k8s/kube_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view json(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: (void)ember::parse_pod_list(json); break;
    case 1: (void)ember::parse_watch_event(json); break;
    case 2: (void)ember::parse_status(json); break;
  }
  return 0;
}
