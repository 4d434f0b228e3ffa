// The head of an HTTP request to the metrics port, from anyone who can reach
// it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/export/metrics_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ember::MetricsServer::Options opts = [] {
    ember::MetricsServer::Options o;
    o.metrics_text = [] { return std::string("ember_up 1\n"); };
    o.health = [] { return std::make_pair(200, std::string("ok\n")); };
    return o;
  }();
  std::string_view head(reinterpret_cast<const char*>(data), size);
  (void)ember::metrics_http_response(head, opts);
  return 0;
}
