// UTF-8, the one implementation every layer uses: decoding one code point
// strictly (no overlong forms, surrogates or code points past U+10FFFF),
// encoding one, and making arbitrary bytes from a workload valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ember {

// Decodes the code point starting at s[i] into *cp and returns its length in
// bytes (1-4), or 0 when the bytes there are not valid UTF-8.
size_t utf8_decode(std::string_view s, size_t i, uint32_t* cp);

// Appends `cp` (at most U+10FFFF) encoded as UTF-8.
void utf8_append(std::string* out, uint32_t cp);

// Lower- or uppercased per code point, like Go's strings.ToLower/ToUpper
// (glibc's C.UTF-8 tables; only ASCII without them). Invalid bytes pass
// through unchanged.
std::string utf8_map_case(std::string_view s, bool upper);

// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

}  // namespace ember
