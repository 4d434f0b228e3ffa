// Demangling of symbol names for display. Names that are not mangled come
// back unchanged, so callers need not check first.
#pragma once

#include <string>
#include <string_view>

namespace ember {

std::string demangle(std::string_view name);

}  // namespace ember
