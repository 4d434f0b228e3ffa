// Preflight: before touching BPF, check that this kernel and these
// privileges can run Ember, and say exactly what is missing if not.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace ember {

struct PreflightResult {
  std::vector<std::string> errors;    // Ember cannot run
  std::vector<std::string> warnings;  // Ember runs, with less information
  bool ok() const { return errors.empty(); }
};

// `sys_root` is normally "/sys"; `release` the kernel release ("" = uname).
PreflightResult preflight(const std::string& sys_root, const std::string& release = "");

// Parses "6.1.0-18-amd64" into {6, 1}; false if unparseable.
bool parse_kernel_release(const std::string& release, int* major, int* minor);

}  // namespace ember
