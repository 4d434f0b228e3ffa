#include "symbolizer/demangle.h"

#include <cxxabi.h>

#include <cstdlib>

namespace ember {

std::string demangle(std::string_view name) {
  // Itanium C++ ABI names (and legacy Rust, which uses the same scheme).
  // Versioned names like "_ZN3foo3barEv@@GLIBCXX_3.4" are split first.
  if (name.size() < 3 || name[0] != '_' || name[1] != 'Z') return std::string(name);
  std::string_view version;
  if (size_t at = name.find('@'); at != std::string_view::npos) {
    version = name.substr(at);
    name = name.substr(0, at);
  }
  std::string mangled(name);
  int status = 0;
  char* out = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  if (status != 0 || !out) {
    std::free(out);
    return std::string(name) + std::string(version);
  }
  std::string result(out);
  std::free(out);
  return result;
}

}  // namespace ember
