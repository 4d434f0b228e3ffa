#include "agent/label/relabel.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "common/utf8.h"

namespace ember {
namespace {

// ---------------------------------------------------------------------------
// MD5 (RFC 1321). hashmod must give the same shard numbers as Prometheus, so
// it needs exactly this hash; one function does not justify a crypto library.

constexpr uint32_t kMd5K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
constexpr int kMd5Shift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

uint32_t rotl32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void md5_block(uint32_t state[4], const uint8_t* p) {
  uint32_t m[16];
  for (int i = 0; i < 16; ++i)
    m[i] = uint32_t(p[4 * i]) | uint32_t(p[4 * i + 1]) << 8 | uint32_t(p[4 * i + 2]) << 16 |
           uint32_t(p[4 * i + 3]) << 24;
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  for (int i = 0; i < 64; ++i) {
    uint32_t f;
    int g;
    switch (i / 16) {
      case 0: f = (b & c) | (~b & d); g = i; break;
      case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16; break;
      case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16; break;
      default: f = c ^ (b | ~d); g = (7 * i) % 16; break;
    }
    f += a + kMd5K[i] + m[g];
    a = d;
    d = c;
    c = b;
    b += rotl32(f, kMd5Shift[i / 16][i % 4]);
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
}

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// ---------------------------------------------------------------------------
// Matching and $-expansion.

struct Group {
  bool matched = false;
  std::string_view text;
};

bool full_match(const RelabelRule& r, std::string_view v, std::vector<Group>* groups) {
  groups->clear();
  // The default regex, on every replace/keep without one: no engine needed.
  if (r.regex_text == "(.*)") {
    if (v.find('\n') != std::string_view::npos) return false;
    groups->push_back({true, v});
    groups->push_back({true, v});
    return true;
  }
  if (!r.regex) return false;  // never compiled
  // RE2 runs in time linear in the value and bounded memory, whatever the
  // pattern: no recursion to overflow on long values.
  const int n = r.regex->NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> sub(static_cast<size_t>(n));
  if (!r.regex->Match(re2::StringPiece(v.data(), v.size()), 0, v.size(), re2::RE2::ANCHOR_BOTH,
                      sub.data(), n))
    return false;
  for (const auto& m : sub)
    groups->push_back({m.data() != nullptr, m.data() ? std::string_view(m.data(), m.size()) : std::string_view()});
  return true;
}

// Go's Regexp.Expand: $$ is '$'; $name and ${name} take the longest run of
// word characters as the name, a number selects a group by index, anything
// else by name; unknown or unmatched groups expand to "", and a '$' not
// followed by a valid reference is kept literally.
std::string expand(std::string_view tmpl, const std::vector<Group>& groups,
                   const std::vector<std::string>& names) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t dollar = tmpl.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    out.append(tmpl.substr(i, dollar - i));
    i = dollar + 1;
    if (i < tmpl.size() && tmpl[i] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t j = i;
    bool brace = j < tmpl.size() && tmpl[j] == '{';
    if (brace) ++j;
    size_t start = j;
    while (j < tmpl.size() && is_word(tmpl[j])) ++j;
    std::string_view name = tmpl.substr(start, j - start);
    bool ok = !name.empty();
    if (ok && brace) {
      if (j < tmpl.size() && tmpl[j] == '}') ++j;
      else ok = false;
    }
    if (!ok) {
      out += '$';
      continue;
    }
    i = j;
    long num = 0;
    for (char c : name) {
      if (c < '0' || c > '9' || num >= 100000000) {
        num = -1;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (name.size() > 1 && name[0] == '0') num = -1;  // Go: no leading zeros
    if (num >= 0) {
      if (size_t(num) < groups.size() && groups[num].matched) out.append(groups[num].text);
    } else {
      for (size_t g = 0; g < names.size() && g < groups.size(); ++g) {
        if (names[g] == name && groups[g].matched) {
          out.append(groups[g].text);
          break;
        }
      }
    }
  }
  return out;
}

std::string_view get(const Labels& labels, const std::string& name) {
  auto it = labels.find(name);
  return it == labels.end() ? std::string_view() : std::string_view(it->second);
}

// As in Prometheus, an empty value means "no such label".
void set(Labels& labels, const std::string& name, std::string value) {
  if (value.empty()) labels.erase(name);
  else labels[name] = std::move(value);
}

}  // namespace

void md5(const void* data, size_t len, uint8_t out[16]) {
  uint32_t state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  const auto* p = static_cast<const uint8_t*>(data);
  size_t full = len / 64 * 64;
  for (size_t off = 0; off < full; off += 64) md5_block(state, p + off);
  // Tail: 0x80, zeros up to 56 mod 64, then the bit length little-endian.
  uint8_t tail[128] = {};
  size_t rest = len - full;
  if (rest) std::memcpy(tail, p + full, rest);
  tail[rest] = 0x80;
  size_t tail_len = rest < 56 ? 64 : 128;
  uint64_t bits = uint64_t(len) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 8 + i] = uint8_t(bits >> (8 * i));
  for (size_t off = 0; off < tail_len; off += 64) md5_block(state, tail + off);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) out[4 * i + j] = uint8_t(state[i] >> (8 * j));
}

bool relabel(const std::vector<RelabelRule>& rules, Labels& labels) {
  using A = RelabelAction;
  std::vector<Group> groups;
  for (const RelabelRule& r : rules) {
    std::string val;
    for (size_t i = 0; i < r.source_labels.size(); ++i) {
      if (i) val += r.separator;
      val += get(labels, r.source_labels[i]);
    }
    switch (r.action) {
      case A::kDrop:
        if (full_match(r, val, &groups)) return false;
        break;
      case A::kKeep:
        if (!full_match(r, val, &groups)) return false;
        break;
      case A::kDropEqual:
        if (get(labels, r.target_label) == val) return false;
        break;
      case A::kKeepEqual:
        if (get(labels, r.target_label) != val) return false;
        break;
      case A::kReplace: {
        if (!full_match(r, val, &groups)) break;  // no match: leave everything alone
        std::string target = expand(r.target_label, groups, r.group_names);
        if (!valid_label_name(target)) break;
        set(labels, target, expand(r.replacement, groups, r.group_names));
        break;
      }
      case A::kLowercase:
        set(labels, r.target_label, utf8_map_case(val, false));
        break;
      case A::kUppercase:
        set(labels, r.target_label, utf8_map_case(val, true));
        break;
      case A::kHashMod: {
        if (r.modulus == 0) break;  // rejected by the parser; guards hand-built rules
        uint8_t sum[16];
        md5(val.data(), val.size(), sum);
        // Prometheus takes the last 8 bytes, big-endian.
        uint64_t h = 0;
        for (int i = 8; i < 16; ++i) h = h << 8 | sum[i];
        set(labels, r.target_label, std::to_string(h % r.modulus));
        break;
      }
      case A::kLabelMap: {
        // Match against the labels as they were before this rule, so a
        // copied label is not itself mapped again.
        const Labels before = labels;
        for (const auto& [name, value] : before) {
          if (!full_match(r, name, &groups)) continue;
          std::string to = expand(r.replacement, groups, r.group_names);
          if (valid_label_name(to)) set(labels, to, value);
        }
        break;
      }
      case A::kLabelDrop:
      case A::kLabelKeep: {
        bool drop_matching = r.action == A::kLabelDrop;
        for (auto it = labels.begin(); it != labels.end();) {
          if (full_match(r, it->first, &groups) == drop_matching) it = labels.erase(it);
          else ++it;
        }
        break;
      }
    }
  }
  return true;
}

}  // namespace ember
