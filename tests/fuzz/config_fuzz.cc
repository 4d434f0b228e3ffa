// The agent's YAML config, relabel rules included.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  (void)ember::parse_config(yaml, "fuzz.yaml");
  return 0;
}
