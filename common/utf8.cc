#include "common/utf8.h"

#include <locale.h>
#include <wctype.h>

namespace ember {

size_t utf8_decode(std::string_view s, size_t i, uint32_t* cp) {
  if (i >= s.size()) return 0;
  auto b = [&](size_t k) { return uint8_t(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  const size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (len == 0 || c >= 0xf8 || i + len > s.size()) return 0;
  uint32_t v = c & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    v = v << 6 | (b(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

void utf8_append(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += char(cp);
  } else if (cp < 0x800) {
    *out += char(0xc0 | cp >> 6);
    *out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *out += char(0xe0 | cp >> 12);
    *out += char(0x80 | (cp >> 6 & 0x3f));
    *out += char(0x80 | (cp & 0x3f));
  } else {
    *out += char(0xf0 | cp >> 18);
    *out += char(0x80 | (cp >> 12 & 0x3f));
    *out += char(0x80 | (cp >> 6 & 0x3f));
    *out += char(0x80 | (cp & 0x3f));
  }
}

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n = utf8_decode(s, i, &cp);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

namespace {

// Case mapping per code point, like Go's strings.ToLower/ToUpper. The
// C.UTF-8 locale is built into glibc >= 2.35; without it only ASCII maps.
// Invalid UTF-8 bytes pass through unchanged.
locale_t utf8_locale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(nullptr));
  return loc;
}

}  // namespace

std::string utf8_map_case(std::string_view s, bool upper) {
  locale_t loc = utf8_locale();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n = utf8_decode(s, i, &cp);
    if (n == 0) {
      out += s[i++];
      continue;
    }
    if (cp < 0x80) {
      char c = char(cp);
      if (upper && c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
      if (!upper && c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
      out += c;
    } else if (loc != locale_t(nullptr)) {
      wint_t m = upper ? towupper_l(wint_t(cp), loc) : towlower_l(wint_t(cp), loc);
      utf8_append(&out, uint32_t(m));
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}


}  // namespace ember
