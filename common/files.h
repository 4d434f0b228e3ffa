// Small file helpers shared by every parser of /proc and /sys.
#pragma once

#include <string>

#include "common/result.h"

namespace ember {

// Reads a whole file with read(2), which is what procfs files need: their
// size is 0 to stat, and they must be read in one pass.
Result<std::string> read_file(const std::string& path);

}  // namespace ember
