#include "symbolizer/demangle.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "common/utf8.h"

namespace ember {
namespace {

// Output of the Rust demanglers is capped (rustc-demangle uses the same
// bound); hostile backreference chains can otherwise expand exponentially.
constexpr size_t kMaxOutput = 1 << 20;
// Recursion bound for the v0 grammar (rustc-demangle's MAX_DEPTH).
constexpr uint32_t kMaxDepth = 500;
// Work bound for the v0 printer: each grammar production costs one step.
constexpr size_t kMaxSteps = 1 << 20;

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_alnum(char c) { return is_digit(c) || is_upper(c) || is_lower(c); }
bool all_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) & 0x80) return false;
  return true;
}


bool is_scalar_value(uint64_t cp) { return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

// rustc-demangle keeps a trailing ".suffix" only if it looks like part of a
// symbol: ASCII letters, digits and punctuation.
bool is_symbol_like(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return false;
  }
  return true;
}

// ThinLTO renames internal symbols to "<sym>.llvm.<HEX>"; drop that first.
std::string_view strip_llvm_suffix(std::string_view s) {
  size_t at = s.find(".llvm.");
  if (at == std::string_view::npos) return s;
  for (char c : s.substr(at + 6))
    if (!(is_digit(c) || (c >= 'A' && c <= 'F') || c == '@')) return s;
  return s.substr(0, at);
}

// ---------------------------------------------------------------------------
// Rust: simplification of demangled path text (legacy scheme).

// Removes generic argument lists ("Vec<T>" -> "Vec") but keeps the angle
// brackets that open a qualified segment ("<T as Trait>", "<impl X for Y>").
// Then "<a::b::C>::m" (inherent impl on a plain path) becomes "a::b::C::m".
std::string simplify_rust_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    bool generic_open = c == '<' && !out.empty() && (is_alnum(out.back()) || out.back() == '_');
    if (!generic_open) {
      out.push_back(c);
      ++i;
      continue;
    }
    int depth = 0;
    size_t j = i;
    for (; j < s.size(); ++j) {
      if (s[j] == '-' && j + 1 < s.size() && s[j + 1] == '>') {  // "-> T" in Fn types
        ++j;
        continue;
      }
      if (s[j] == '<') ++depth;
      if (s[j] == '>' && --depth == 0) break;
    }
    if (j >= s.size()) {  // unbalanced: keep the rest as it is
      out.append(s.substr(i));
      break;
    }
    i = j + 1;
  }
  // Drop the brackets of "<path>::" when path is a plain path.
  std::string res;
  res.reserve(out.size());
  for (size_t i = 0; i < out.size();) {
    bool seg_start = i == 0 || (i >= 2 && out[i - 1] == ':' && out[i - 2] == ':');
    if (out[i] == '<' && seg_start) {
      size_t j = i + 1;
      while (j < out.size() && (is_alnum(out[j]) || out[j] == '_' || out[j] == ':')) ++j;
      if (j > i + 1 && j < out.size() && out[j] == '>' && out.compare(j + 1, 2, "::") == 0 &&
          out[i + 1] != ':') {
        res.append(out, i + 1, j - i - 1);
        i = j + 1;
        continue;
      }
    }
    res.push_back(out[i]);
    ++i;
  }
  return res;
}

// ---------------------------------------------------------------------------
// Rust legacy mangling: "_ZN" {len ident} "E" [".suffix"], last ident the hash.

bool is_legacy_hash(std::string_view e) {
  if (e.size() != 17 || e[0] != 'h') return false;
  for (char c : e.substr(1))
    if (!is_lower_hex(c)) return false;
  return true;
}

bool is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp < 0xA0); }

void append_legacy_element(std::string_view rest, std::string* out) {
  if (starts_with(rest, "_$")) rest.remove_prefix(1);
  while (!rest.empty()) {
    if (rest[0] == '.') {
      if (rest.size() > 1 && rest[1] == '.') {
        out->append("::");
        rest.remove_prefix(2);
      } else {
        out->push_back('.');
        rest.remove_prefix(1);
      }
    } else if (rest[0] == '$') {
      size_t end = rest.find('$', 1);
      if (end == std::string_view::npos) break;
      std::string_view esc = rest.substr(1, end - 1);
      const char* plain = nullptr;
      if (esc == "SP") plain = "@";
      else if (esc == "BP") plain = "*";
      else if (esc == "RF") plain = "&";
      else if (esc == "LT") plain = "<";
      else if (esc == "GT") plain = ">";
      else if (esc == "LP") plain = "(";
      else if (esc == "RP") plain = ")";
      else if (esc == "C") plain = ",";
      if (plain) {
        out->append(plain);
        rest.remove_prefix(end + 1);
        continue;
      }
      // "$u<lower hex>$": any non-control code point.
      if (esc.size() < 2 || esc.size() > 7 || esc[0] != 'u') break;
      uint32_t cp = 0;
      bool ok = true;
      for (char c : esc.substr(1)) {
        if (!is_lower_hex(c)) ok = false;
        cp = cp * 16 + static_cast<uint32_t>(is_digit(c) ? c - '0' : c - 'a' + 10);
      }
      if (!ok || !is_scalar_value(cp) || is_control(cp)) break;
      utf8_append(out, cp);
      rest.remove_prefix(end + 1);
    } else {
      size_t i = rest.find_first_of("$.");
      if (i == std::string_view::npos) break;
      out->append(rest.substr(0, i));
      rest.remove_prefix(i);
    }
  }
  out->append(rest);
}

bool demangle_rust_legacy(std::string_view sym, DemangleStyle style, std::string* out) {
  if (!starts_with(sym, "_ZN") || !all_ascii(sym)) return false;
  std::string_view inner = sym.substr(3);
  std::vector<std::string_view> elems;
  size_t pos = 0;
  while (true) {
    if (pos >= inner.size()) return false;
    if (inner[pos] == 'E') {
      ++pos;
      break;
    }
    if (!is_digit(inner[pos])) return false;
    size_t len = 0;
    while (pos < inner.size() && is_digit(inner[pos])) {
      len = len * 10 + static_cast<size_t>(inner[pos] - '0');
      if (len > inner.size()) return false;
      ++pos;
    }
    if (len > inner.size() - pos) return false;
    elems.push_back(inner.substr(pos, len));
    pos += len;
  }
  std::string_view suffix = inner.substr(pos);
  if (!suffix.empty() && (suffix[0] != '.' || !is_symbol_like(suffix))) return false;
  if (elems.size() < 2 || !is_legacy_hash(elems.back())) return false;
  std::string res;
  for (size_t i = 0; i + 1 < elems.size(); ++i) {
    if (i) res.append("::");
    append_legacy_element(elems[i], &res);
  }
  if (res.empty()) return false;
  if (style == DemangleStyle::kSimplified) {
    *out = simplify_rust_text(res);
  } else {
    *out = std::move(res);
    out->append(suffix);
  }
  return !out->empty();
}

// ---------------------------------------------------------------------------
// Rust v0 mangling (RFC 2603).

const char* v0_basic_type(char tag) {
  switch (tag) {
    case 'b': return "bool";
    case 'c': return "char";
    case 'e': return "str";
    case 'u': return "()";
    case 'a': return "i8";
    case 's': return "i16";
    case 'l': return "i32";
    case 'x': return "i64";
    case 'n': return "i128";
    case 'i': return "isize";
    case 'h': return "u8";
    case 't': return "u16";
    case 'm': return "u32";
    case 'y': return "u64";
    case 'o': return "u128";
    case 'j': return "usize";
    case 'f': return "f32";
    case 'd': return "f64";
    case 'z': return "!";
    case 'p': return "_";
    case 'v': return "...";
    default: return nullptr;
  }
}

struct V0Ident {
  std::string_view ascii;
  std::string_view punycode;
  bool empty() const { return ascii.empty() && punycode.empty(); }
};

// RFC 3492 decoding as used by v0 ("_" instead of "-" as the delimiter).
bool punycode_decode(const V0Ident& id, std::vector<uint32_t>* out) {
  constexpr size_t kMaxChars = 128;
  if (id.punycode.empty()) return false;
  out->clear();
  for (char c : id.ascii) {
    if (out->size() >= kMaxChars) return false;
    out->push_back(static_cast<unsigned char>(c));
  }
  const uint64_t base = 36, t_min = 1, t_max = 26, skew = 38;
  uint64_t damp = 700, bias = 72, i = 0, n = 0x80;
  size_t p = 0;
  const std::string_view code = id.punycode;
  while (true) {
    uint64_t delta = 0, w = 1, k = 0;
    while (true) {
      k += base;
      uint64_t t = k <= bias ? t_min : std::min(std::max(k - bias, t_min), t_max);
      if (p >= code.size()) return false;
      char ch = code[p++];
      uint64_t d;
      if (is_lower(ch)) d = static_cast<uint64_t>(ch - 'a');
      else if (is_digit(ch)) d = 26 + static_cast<uint64_t>(ch - '0');
      else return false;
      if (w != 0 && d > (UINT32_MAX - delta) / w) return false;  // keep values small
      delta += d * w;
      if (d < t) break;
      if (w > UINT32_MAX / (base - t)) return false;
      w *= base - t;
    }
    size_t len = out->size() + 1;
    i += delta;
    if (i > UINT32_MAX) return false;
    n += i / len;
    i %= len;
    if (!is_scalar_value(n)) return false;
    if (out->size() >= kMaxChars) return false;
    out->insert(out->begin() + static_cast<std::ptrdiff_t>(i), static_cast<uint32_t>(n));
    ++i;
    if (p >= code.size()) return true;
    delta /= damp;
    damp = 2;
    delta += delta / len;
    k = 0;
    while (delta > ((base - t_min) * t_max) / 2) {
      delta /= base - t_min;
      k += base;
    }
    bias = k + ((base - t_min + 1) * delta) / (delta + skew);
  }
}

// One printer does both passes, as rustc-demangle does: with muted_ > 0 it
// only parses (and does not follow backreferences), otherwise it prints.
class V0Printer {
 public:
  V0Printer(std::string_view sym, bool simplified) : sym_(sym), simplified_(simplified) {}

  // Validates the symbol: a path, optionally the instantiating crate, then
  // the vendor suffix. Returns the offset where the suffix starts.
  std::optional<size_t> validate() {
    ++muted_;
    if (!print_path(false)) return std::nullopt;
    if (pos_ < sym_.size() && is_upper(sym_[pos_]) && !print_path(false)) return std::nullopt;
    return pos_;
  }

  std::optional<std::string> render() {
    if (!print_path(true)) return std::nullopt;
    return std::move(out_);
  }

 private:
  // --- parsing primitives ---
  char peek() const { return pos_ < sym_.size() ? sym_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || pos_ >= sym_.size()) return false;
    ++pos_;
    return true;
  }
  bool next(char* c) {
    if (pos_ >= sym_.size()) return false;
    *c = sym_[pos_++];
    return true;
  }
  bool push_depth() { return ++depth_ <= kMaxDepth && ++steps_ <= kMaxSteps; }
  void pop_depth() { --depth_; }

  bool integer62(uint64_t* v) {
    if (eat('_')) {
      *v = 0;
      return true;
    }
    uint64_t x = 0;
    while (!eat('_')) {
      char c = peek();
      uint64_t d;
      if (is_digit(c)) d = static_cast<uint64_t>(c - '0');
      else if (is_lower(c)) d = 10 + static_cast<uint64_t>(c - 'a');
      else if (is_upper(c)) d = 36 + static_cast<uint64_t>(c - 'A');
      else return false;
      ++pos_;
      if (x > (UINT64_MAX - d) / 62) return false;
      x = x * 62 + d;
    }
    if (x == UINT64_MAX) return false;
    *v = x + 1;
    return true;
  }
  bool opt_integer62(char tag, uint64_t* v) {
    *v = 0;
    if (!eat(tag)) return true;
    if (!integer62(v) || *v == UINT64_MAX) return false;
    ++*v;
    return true;
  }
  bool disambiguator(uint64_t* v) { return opt_integer62('s', v); }
  bool namespace_tag(char* ns) {
    char c;
    if (!next(&c)) return false;
    if (is_upper(c)) {
      *ns = c;
      return true;
    }
    if (is_lower(c)) {
      *ns = 0;
      return true;
    }
    return false;
  }
  bool ident(V0Ident* id) {
    bool puny = eat('u');
    if (!is_digit(peek())) return false;
    size_t len = static_cast<size_t>(sym_[pos_++] - '0');
    if (len != 0) {
      while (is_digit(peek())) {
        len = len * 10 + static_cast<size_t>(sym_[pos_++] - '0');
        if (len > sym_.size()) return false;
      }
    }
    eat('_');
    if (len > sym_.size() - pos_) return false;
    std::string_view s = sym_.substr(pos_, len);
    pos_ += len;
    if (!puny) {
      *id = {s, {}};
      return true;
    }
    size_t us = s.rfind('_');
    if (us == std::string_view::npos) *id = {{}, s};
    else *id = {s.substr(0, us), s.substr(us + 1)};
    return !id->punycode.empty();
  }
  bool hex_nibbles(std::string_view* hex) {
    size_t start = pos_;
    while (true) {
      char c;
      if (!next(&c)) return false;
      if (c == '_') break;
      if (!is_lower_hex(c)) return false;
    }
    *hex = sym_.substr(start, pos_ - 1 - start);
    return true;
  }
  static std::optional<uint64_t> parse_hex_u64(std::string_view hex) {
    while (!hex.empty() && hex[0] == '0') hex.remove_prefix(1);
    if (hex.size() > 16) return std::nullopt;
    uint64_t v = 0;
    for (char c : hex) v = v * 16 + static_cast<uint64_t>(is_digit(c) ? c - '0' : c - 'a' + 10);
    return v;
  }

  // --- printing primitives ---
  bool print(std::string_view s) {
    if (muted_) return true;
    out_.append(s);
    return out_.size() <= kMaxOutput;
  }
  bool print_char(char c) { return print(std::string_view(&c, 1)); }
  bool print_u64(uint64_t v) { return print(std::to_string(v)); }
  bool print_ident(const V0Ident& id) {
    if (muted_) return true;
    if (id.punycode.empty()) return print(id.ascii);
    std::vector<uint32_t> chars;
    if (punycode_decode(id, &chars)) {
      std::string s;
      for (uint32_t c : chars) utf8_append(&s, c);
      return print(s);
    }
    if (!print("punycode{")) return false;
    if (!id.ascii.empty() && !(print(id.ascii) && print("-"))) return false;
    return print(id.punycode) && print("}");
  }
  // Rust's char::escape_debug for the characters a symbol can hold; other
  // non-ASCII characters are printed as they are.
  bool print_escaped(uint32_t c, char quote) {
    switch (c) {
      case 0: return print("\\0");
      case '\t': return print("\\t");
      case '\r': return print("\\r");
      case '\n': return print("\\n");
      case '\\': return print("\\\\");
      case '\'': return quote == '"' ? print("'") : print("\\'");
      case '"': return quote == '\'' ? print("\"") : print("\\\"");
      default: break;
    }
    std::string s;
    if (is_control(c)) {
      static const char* kHex = "0123456789abcdef";
      std::string h;
      for (uint32_t v = c; v; v >>= 4) h.insert(h.begin(), kHex[v & 15]);
      s = "\\u{" + h + "}";
    } else {
      utf8_append(&s, c);
    }
    return print(s);
  }

  template <typename F>
  bool print_backref(F f) {
    size_t b_pos = pos_ - 1;  // the 'B'
    uint64_t target;
    if (!integer62(&target) || target >= b_pos) return false;
    if (muted_) return true;
    if (!push_depth()) return false;
    size_t saved = pos_;
    pos_ = static_cast<size_t>(target);
    bool ok = f();
    pos_ = saved;
    pop_depth();
    return ok;
  }

  template <typename F>
  bool print_sep_list(F f, std::string_view sep, size_t* count = nullptr) {
    size_t n = 0;
    while (!eat('E')) {
      if (pos_ >= sym_.size()) return false;
      if (n && !print(sep)) return false;
      if (!f()) return false;
      ++n;
    }
    if (count) *count = n;
    return true;
  }

  // Parses generic arguments up to 'E' without printing them.
  bool skip_generic_args() {
    ++muted_;
    bool ok = print_sep_list([&] { return print_generic_arg(); }, "");
    --muted_;
    return ok;
  }

  // Whether the type at `at` is (after following backrefs) a path.
  bool type_is_path(size_t at) const {
    for (int hops = 0; hops < 64 && at < sym_.size(); ++hops) {
      char c = sym_[at];
      if (c != 'B') return c == 'C' || c == 'N' || c == 'M' || c == 'X' || c == 'Y' || c == 'I';
      V0Printer tmp(sym_, false);
      tmp.pos_ = at + 1;
      uint64_t target;
      if (!tmp.integer62(&target) || target >= at) return false;
      at = static_cast<size_t>(target);
    }
    return false;
  }

  // --- grammar ---
  bool print_path(bool in_value) {
    if (!push_depth()) return false;
    char tag;
    if (!next(&tag)) return false;
    switch (tag) {
      case 'C': {  // crate root; a shown crate name is never empty
        uint64_t dis;
        V0Ident name;
        if (!disambiguator(&dis) || !ident(&name) || (!muted_ && name.empty()) || !print_ident(name))
          return false;
        break;
      }
      case 'N': {  // nested path
        char ns;
        if (!namespace_tag(&ns) || !print_path(in_value)) return false;
        uint64_t dis;
        V0Ident name;
        if (!disambiguator(&dis) || !ident(&name)) return false;
        if (ns) {
          if (!print("::{")) return false;
          if (ns == 'C') {
            if (!print("closure")) return false;
          } else if (ns == 'S') {
            if (!print("shim")) return false;
          } else if (!print_char(ns)) {
            return false;
          }
          if (!name.empty() && !(print(":") && print_ident(name))) return false;
          if (!(print("#") && print_u64(dis) && print("}"))) return false;
        } else if (!name.empty()) {
          if (!(print("::") && print_ident(name))) return false;
        }
        break;
      }
      case 'M':    // inherent impl: <Type>
      case 'X':    // trait impl: <Type as Trait>
      case 'Y': {  // trait definition: <Type as Trait>
        if (tag != 'Y') {
          uint64_t dis;
          if (!disambiguator(&dis)) return false;
          ++muted_;  // the impl's own path is not shown
          bool ok = print_path(false);
          --muted_;
          if (!ok) return false;
        }
        bool brackets = !(simplified_ && tag == 'M' && type_is_path(pos_));
        if (brackets && !print("<")) return false;
        if (!print_type()) return false;
        if (tag != 'M' && !(print(" as ") && print_path(false))) return false;
        if (brackets && !print(">")) return false;
        break;
      }
      case 'I': {  // generic arguments
        if (!print_path(in_value)) return false;
        if (simplified_) {
          if (!skip_generic_args()) return false;
          break;
        }
        if (in_value && !print("::")) return false;
        if (!print("<") || !print_sep_list([&] { return print_generic_arg(); }, ", ") || !print(">"))
          return false;
        break;
      }
      case 'B':
        if (!print_backref([&] { return print_path(in_value); })) return false;
        break;
      default:
        return false;
    }
    pop_depth();
    return true;
  }

  bool print_generic_arg() {
    if (eat('L')) {
      uint64_t lt;
      return integer62(&lt) && print_lifetime(lt);
    }
    if (eat('K')) return print_const(false);
    return print_type();
  }

  bool print_lifetime(uint64_t lt) {
    if (muted_) return true;  // binders are not tracked while parsing only
    if (!print("'")) return false;
    if (lt == 0) return print("_");
    if (lt > bound_lifetimes_) return false;
    uint64_t depth = bound_lifetimes_ - lt;
    if (depth < 26) return print_char(static_cast<char>('a' + depth));
    return print("_") && print_u64(depth);
  }

  template <typename F>
  bool in_binder(F f) {
    uint64_t n;
    if (!opt_integer62('G', &n)) return false;
    if (muted_) return f();
    if (n > kMaxOutput) return false;
    if (n > 0) {
      if (!print("for<")) return false;
      for (uint64_t i = 0; i < n; ++i) {
        if (i && !print(", ")) return false;
        ++bound_lifetimes_;
        if (!print_lifetime(1)) return false;
      }
      if (!print("> ")) return false;
    }
    bool ok = f();
    bound_lifetimes_ -= n;
    return ok;
  }

  bool print_type() {
    char tag;
    if (!next(&tag)) return false;
    if (const char* basic = v0_basic_type(tag)) return print(basic);
    if (!push_depth()) return false;
    switch (tag) {
      case 'R':
      case 'Q': {  // &T, &mut T
        if (!print("&")) return false;
        if (eat('L')) {
          uint64_t lt;
          if (!integer62(&lt)) return false;
          if (lt != 0 && !(print_lifetime(lt) && print(" "))) return false;
        }
        if (tag == 'Q' && !print("mut ")) return false;
        if (!print_type()) return false;
        break;
      }
      case 'P':
      case 'O':  // *const T, *mut T
        if (!print(tag == 'P' ? "*const " : "*mut ") || !print_type()) return false;
        break;
      case 'A':
      case 'S':  // [T; N], [T]
        if (!print("[") || !print_type()) return false;
        if (tag == 'A' && !(print("; ") && print_const(true))) return false;
        if (!print("]")) return false;
        break;
      case 'T': {  // tuple
        size_t count = 0;
        if (!print("(") || !print_sep_list([&] { return print_type(); }, ", ", &count)) return false;
        if (count == 1 && !print(",")) return false;
        if (!print(")")) return false;
        break;
      }
      case 'F':  // fn pointer
        if (!in_binder([&] { return print_fn_sig(); })) return false;
        break;
      case 'D': {  // dyn Trait + 'a
        if (!print("dyn ")) return false;
        if (!in_binder([&] { return print_sep_list([&] { return print_dyn_trait(); }, " + "); }))
          return false;
        if (!eat('L')) return false;
        uint64_t lt;
        if (!integer62(&lt)) return false;
        if (lt != 0 && !(print(" + ") && print_lifetime(lt))) return false;
        break;
      }
      case 'B':
        if (!print_backref([&] { return print_type(); })) return false;
        break;
      default:  // a path
        --pos_;
        if (!print_path(false)) return false;
    }
    pop_depth();
    return true;
  }

  bool print_fn_sig() {
    bool is_unsafe = eat('U');
    std::string_view abi;
    bool has_abi = false;
    if (eat('K')) {
      has_abi = true;
      if (eat('C')) {
        abi = "C";
      } else {
        V0Ident id;
        if (!ident(&id) || id.ascii.empty() || !id.punycode.empty()) return false;
        abi = id.ascii;
      }
    }
    if (is_unsafe && !print("unsafe ")) return false;
    if (has_abi) {
      // The ABI had its '-' replaced with '_' to be an identifier.
      std::string a(abi);
      for (char& c : a)
        if (c == '_') c = '-';
      if (!(print("extern \"") && print(a) && print("\" "))) return false;
    }
    if (!print("fn(") || !print_sep_list([&] { return print_type(); }, ", ") || !print(")"))
      return false;
    if (eat('u')) return true;  // returns ()
    return print(" -> ") && print_type();
  }

  bool print_path_maybe_open_generics(bool* open) {
    *open = false;
    if (eat('B')) {
      bool o = false;
      if (!print_backref([&] { return print_path_maybe_open_generics(&o); })) return false;
      *open = o;
      return true;
    }
    if (eat('I')) {
      if (!print_path(false)) return false;
      if (simplified_) return skip_generic_args();
      *open = true;
      return print("<") && print_sep_list([&] { return print_generic_arg(); }, ", ");
    }
    return print_path(false);
  }

  bool print_dyn_trait() {
    bool open;
    if (!print_path_maybe_open_generics(&open)) return false;
    while (eat('p')) {  // associated type binding: Trait<Name = T>
      if (simplified_) ++muted_;
      bool ok;
      if (!open) {
        ok = print("<");
        open = !muted_;
      } else {
        ok = print(", ");
      }
      V0Ident name;
      ok = ok && ident(&name) && print_ident(name) && print(" = ") && print_type();
      if (simplified_) --muted_;
      if (!ok) return false;
    }
    return !open || print(">");
  }

  bool print_const_uint() {
    std::string_view hex;
    if (!hex_nibbles(&hex)) return false;
    if (auto v = parse_hex_u64(hex)) return print_u64(*v);
    return print("0x") && print(hex);
  }

  bool print_const_str() {
    std::string_view hex;
    if (!hex_nibbles(&hex) || hex.size() % 2) return false;
    std::string bytes;
    for (size_t i = 0; i < hex.size(); i += 2) {
      auto v = parse_hex_u64(hex.substr(i, 2));
      bytes.push_back(static_cast<char>(*v));
    }
    // Decode UTF-8 strictly; invalid strings make the symbol invalid.
    std::vector<uint32_t> chars;
    for (size_t i = 0; i < bytes.size();) {
      unsigned char b = static_cast<unsigned char>(bytes[i]);
      size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
      if (!len || i + len > bytes.size()) return false;
      uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
      for (size_t k = 1; k < len; ++k) {
        unsigned char cb = static_cast<unsigned char>(bytes[i + k]);
        if ((cb >> 6) != 2) return false;
        cp = (cp << 6) | (cb & 0x3F);
      }
      static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || !is_scalar_value(cp)) return false;
      chars.push_back(cp);
      i += len;
    }
    if (!print("\"")) return false;
    for (uint32_t c : chars)
      if (!print_escaped(c, '"')) return false;
    return print("\"");
  }

  bool print_const(bool in_value) {
    char tag;
    if (!next(&tag)) return false;
    if (!push_depth()) return false;
    bool opened = false;
    // Anything but a literal needs braces in generic-argument position.
    auto open_brace = [&] {
      if (in_value) return true;
      opened = true;
      return print("{");
    };
    switch (tag) {
      case 'p':
        if (!print("_")) return false;
        break;
      case 'h': case 't': case 'm': case 'y': case 'o': case 'j':
        if (!print_const_uint()) return false;
        break;
      case 'a': case 's': case 'l': case 'x': case 'n': case 'i':
        if (eat('n') && !print("-")) return false;
        if (!print_const_uint()) return false;
        break;
      case 'b': {
        std::string_view hex;
        if (!hex_nibbles(&hex)) return false;
        auto v = parse_hex_u64(hex);
        if (!v || *v > 1 || !print(*v ? "true" : "false")) return false;
        break;
      }
      case 'c': {
        std::string_view hex;
        if (!hex_nibbles(&hex)) return false;
        auto v = parse_hex_u64(hex);
        if (!v || !is_scalar_value(*v)) return false;
        if (!print("'") || !print_escaped(static_cast<uint32_t>(*v), '\'') || !print("'")) return false;
        break;
      }
      case 'e':  // str: printed as *"..."
        if (!open_brace() || !print("*") || !print_const_str()) return false;
        break;
      case 'R':
      case 'Q':
        if (tag == 'R' && eat('e')) {
          if (!print_const_str()) return false;
        } else {
          if (!open_brace() || !print("&")) return false;
          if (tag == 'Q' && !print("mut ")) return false;
          if (!print_const(true)) return false;
        }
        break;
      case 'A':
        if (!open_brace() || !print("[") ||
            !print_sep_list([&] { return print_const(true); }, ", ") || !print("]"))
          return false;
        break;
      case 'T': {
        size_t count = 0;
        if (!open_brace() || !print("(") ||
            !print_sep_list([&] { return print_const(true); }, ", ", &count))
          return false;
        if (count == 1 && !print(",")) return false;
        if (!print(")")) return false;
        break;
      }
      case 'V': {  // ADT value
        if (!open_brace() || !print_path(true)) return false;
        char kind;
        if (!next(&kind)) return false;
        if (kind == 'U') {
        } else if (kind == 'T') {
          if (!print("(") || !print_sep_list([&] { return print_const(true); }, ", ") || !print(")"))
            return false;
        } else if (kind == 'S') {
          auto field = [&] {
            uint64_t dis;
            V0Ident name;
            return disambiguator(&dis) && ident(&name) && print_ident(name) && print(": ") &&
                   print_const(true);
          };
          if (!print(" { ") || !print_sep_list(field, ", ") || !print(" }")) return false;
        } else {
          return false;
        }
        break;
      }
      case 'B':
        if (!print_backref([&] { return print_const(in_value); })) return false;
        break;
      default:
        return false;
    }
    if (opened && !print("}")) return false;
    pop_depth();
    return true;
  }

  std::string_view sym_;
  bool simplified_;
  size_t pos_ = 0;
  uint32_t depth_ = 0;
  size_t steps_ = 0;
  int muted_ = 0;
  uint64_t bound_lifetimes_ = 0;
  std::string out_;
};

bool demangle_rust_v0(std::string_view sym, DemangleStyle style, std::string* out) {
  if (!starts_with(sym, "_R") || !all_ascii(sym)) return false;
  std::string_view inner = sym.substr(2);
  if (inner.empty() || !is_upper(inner[0])) return false;
  bool simplified = style == DemangleStyle::kSimplified;
  auto end = V0Printer(inner, simplified).validate();
  if (!end) return false;
  std::string_view suffix = inner.substr(*end);
  if (!suffix.empty() && (suffix[0] != '.' || !is_symbol_like(suffix))) return false;
  auto text = V0Printer(inner, simplified).render();
  if (!text || text->empty()) return false;
  *out = std::move(*text);
  if (!simplified) out->append(suffix);
  return true;
}

// ---------------------------------------------------------------------------
// C++: simplification of __cxa_demangle output.

bool is_ident_char(char c) { return is_alnum(c) || c == '_' || c == '$'; }

// Operators spelled with symbols, longest first so "<<=" wins over "<<".
constexpr std::string_view kSymbolOps[] = {
    "->*", "<<=", ">>=", "<=>", "()", "[]", "->", "<<", ">>", "<=", ">=", "==", "!=",
    "&&",  "||",  "++",  "--",  "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", ",",
    "+",   "-",   "*",   "/",   "%",  "^",  "&",  "|",  "~",  "!",  "=",  "<",  ">"};

size_t symbol_op_len(std::string_view s) {
  for (std::string_view op : kSymbolOps)
    if (starts_with(s, op)) return op.size();
  return 0;
}

bool is_operator_word(std::string_view s, size_t at, size_t end) {
  return s.substr(at, end - at) == "operator" && (at == 0 || !is_ident_char(s[at - 1]));
}

// s[i] is one of "<([{"; returns the index after its matching closer, or npos.
// '>' only closes a '<' ('>' inside parentheses is a comparison), '<' right
// after ')' is a comparison, "->" is an arrow, and operator names are skipped.
size_t skip_group(std::string_view s, size_t i) {
  std::string stack;
  size_t j = i;
  while (j < s.size()) {
    char c = s[j];
    if (is_ident_char(c)) {
      size_t k = j;
      while (k < s.size() && is_ident_char(s[k])) ++k;
      if (is_operator_word(s, j, k)) k += symbol_op_len(s.substr(k));
      j = k;
      continue;
    }
    switch (c) {
      case '<':
        if (j > i && s[j - 1] == ')') break;
        stack.push_back('<');
        break;
      case '(': case '[': case '{':
        stack.push_back(c);
        break;
      case '>':
        if (j > i && s[j - 1] == '-') break;
        if (!stack.empty() && stack.back() == '<') {
          stack.pop_back();
          if (stack.empty()) return j + 1;
        }
        break;
      case ')': case ']': case '}': {
        char open = c == ')' ? '(' : c == ']' ? '[' : '{';
        while (!stack.empty() && stack.back() != open) stack.pop_back();
        if (stack.empty()) return std::string_view::npos;
        stack.pop_back();
        if (stack.empty()) return j + 1;
        break;
      }
      default:
        break;
    }
    ++j;
  }
  return std::string_view::npos;
}

enum class Tok { kIdent, kScope, kSpace, kAngle, kParen, kBrace, kBracket, kOp, kConvOp, kTilde, kOther };
struct Token {
  Tok kind;
  std::string_view text;
};

std::optional<std::vector<Token>> tokenize_cxx(std::string_view s) {
  std::vector<Token> toks;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (is_ident_char(c)) {
      size_t k = i;
      while (k < s.size() && is_ident_char(s[k])) ++k;
      if (is_operator_word(s, i, k)) {
        std::string_view rest = s.substr(k);
        if (starts_with(rest, "\"\"")) {  // operator"" _suffix
          size_t e = k + 2;
          if (e < s.size() && s[e] == ' ') ++e;
          while (e < s.size() && is_ident_char(s[e])) ++e;
          toks.push_back({Tok::kOp, s.substr(i, e - i)});
          i = e;
          continue;
        }
        if (size_t n = symbol_op_len(rest)) {
          toks.push_back({Tok::kOp, s.substr(i, k + n - i)});
          i = k + n;
          // "operator< <int>": the demangler separates the template arguments.
          if (i + 1 < s.size() && s[i] == ' ' && s[i + 1] == '<') ++i;
          continue;
        }
        if (starts_with(rest, " ")) {
          size_t kw_len = 0;
          for (std::string_view kw : {"new[]", "delete[]", "new", "delete", "co_await"}) {
            if (starts_with(rest.substr(1), kw) &&
                (k + 1 + kw.size() >= s.size() || !is_ident_char(s[k + 1 + kw.size()]))) {
              kw_len = kw.size();
              break;
            }
          }
          if (kw_len) {
            toks.push_back({Tok::kOp, s.substr(i, k + 1 + kw_len - i)});
            i = k + 1 + kw_len;
          } else {  // conversion operator; its type follows
            toks.push_back({Tok::kConvOp, s.substr(i, k - i)});
            i = k + 1;
          }
          continue;
        }
      }
      if (s.substr(i, k - i) == "string" && starts_with(s.substr(k), " literal")) k += 8;
      toks.push_back({Tok::kIdent, s.substr(i, k - i)});
      i = k;
      continue;
    }
    if (c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
      toks.push_back({Tok::kScope, s.substr(i, 2)});
      i += 2;
      continue;
    }
    if (c == ' ') {
      size_t k = i;
      while (k < s.size() && s[k] == ' ') ++k;
      toks.push_back({Tok::kSpace, s.substr(i, k - i)});
      i = k;
      continue;
    }
    if (c == '<' || c == '(' || c == '[' || c == '{') {
      size_t e = skip_group(s, i);
      if (e == std::string_view::npos) return std::nullopt;
      Tok kind = c == '<' ? Tok::kAngle : c == '(' ? Tok::kParen : c == '[' ? Tok::kBracket : Tok::kBrace;
      toks.push_back({kind, s.substr(i, e - i)});
      i = e;
      continue;
    }
    toks.push_back({c == '~' ? Tok::kTilde : Tok::kOther, s.substr(i, 1)});
    ++i;
  }
  return toks;
}

bool is_qualifier_word(std::string_view w) {
  return w == "const" || w == "volatile" || w == "restrict" || w == "noexcept" || w == "throw" ||
         w == "transaction_safe";
}

std::optional<std::string> simplify_cxx(std::string_view s, int depth);

// Index after the cv/ref/noexcept qualifiers that may follow the parameter
// list ending just before token `k`.
size_t skip_qualifiers(const std::vector<Token>& t, size_t k) {
  size_t j = k;
  while (true) {
    size_t m = j;
    if (m < t.size() && t[m].kind == Tok::kSpace) ++m;
    if (m < t.size() && t[m].kind == Tok::kIdent && is_qualifier_word(t[m].text)) {
      ++m;
      if ((t[m - 1].text == "noexcept" || t[m - 1].text == "throw") && m < t.size() &&
          t[m].kind == Tok::kParen)
        ++m;
      j = m;
      continue;
    }
    if (m < t.size() && t[m].kind == Tok::kOther && t[m].text == "&") {
      j = m + 1;
      continue;
    }
    return j;
  }
}

std::optional<std::string> simplify_cxx_tokens(const std::vector<Token>& t, int depth) {
  std::string cur;
  bool want_component = true;  // at the start of a name or right after "::"
  auto reset = [&] {
    cur.clear();
    want_component = true;
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const Token& tok = t[i];
    switch (tok.kind) {
      case Tok::kIdent:
      case Tok::kOp:
        if (!want_component) reset();
        cur.append(tok.text);
        want_component = false;
        break;
      case Tok::kTilde:
        if (!want_component) reset();
        cur.push_back('~');
        break;
      case Tok::kScope:
        cur.append("::");
        want_component = true;
        break;
      case Tok::kAngle:  // template arguments
        if (want_component) reset();
        break;
      case Tok::kBracket:
        if (want_component) reset();
        else if (!starts_with(tok.text, "[abi:")) cur.append(tok.text);
        break;
      case Tok::kBrace:  // {lambda(int)#1}, {unnamed type#1}, ...
        if (!want_component) reset();
        cur.append(tok.text);
        want_component = false;
        break;
      case Tok::kParen: {
        std::string_view inner = tok.text.substr(1, tok.text.size() - 2);
        if (want_component) {
          if (inner == "anonymous namespace") {
            cur.append(tok.text);
            want_component = false;
            break;
          }
          // Declarator of a function returning a function pointer:
          // "void (*f<int>(int))(int)".
          if (!inner.empty() && (inner[0] == '*' || inner[0] == '&') && i + 1 < t.size() &&
              t[i + 1].kind == Tok::kParen) {
            size_t p = inner.find_first_not_of("*& ");
            if (p != std::string_view::npos) {
              if (auto r = simplify_cxx(inner.substr(p), depth + 1)) return r;
            }
          }
          reset();
          break;
        }
        // A parameter list: the end of the name, or of the enclosing
        // function of a local entity ("f(int)::x").
        size_t j = skip_qualifiers(t, i + 1);
        if (j == t.size()) return cur;
        if (t[j].kind == Tok::kScope) {
          i = j - 1;
          break;
        }
        reset();
        break;
      }
      case Tok::kConvOp: {
        if (!want_component) reset();
        // The conversion type runs up to the parameter list, i.e. the first
        // parenthesized group followed only by qualifiers (and maybe "::").
        size_t params = std::string_view::npos;
        for (size_t k = i + 1; k < t.size(); ++k) {
          if (t[k].kind != Tok::kParen) continue;
          size_t j = skip_qualifiers(t, k + 1);
          if (j == t.size() || t[j].kind == Tok::kScope) {
            params = k;
            break;
          }
        }
        if (params == std::string_view::npos || params == i + 1) {
          reset();
          break;
        }
        std::string type;
        for (size_t k = i + 1; k < params; ++k) {
          if (t[k].kind == Tok::kAngle) continue;
          if (t[k].kind == Tok::kBracket && starts_with(t[k].text, "[abi:")) continue;
          type.append(t[k].kind == Tok::kSpace ? std::string_view(" ") : t[k].text);
        }
        while (!type.empty() && type.back() == ' ') type.pop_back();
        cur.append("operator ");
        cur.append(type);
        want_component = false;
        i = params - 1;
        break;
      }
      case Tok::kSpace:
      case Tok::kOther:
        reset();
        break;
    }
  }
  if (cur.empty() || want_component) return std::nullopt;
  return cur;
}

constexpr std::string_view kSpecialPrefixes[] = {
    "vtable for ",           "VTT for ",
    "typeinfo for ",         "typeinfo name for ",
    "typeinfo fn for ",      "non-virtual thunk to ",
    "virtual thunk to ",     "covariant return thunk to ",
    "java Class for ",       "guard variable for ",
    "TLS init function for ", "TLS wrapper function for ",
    "hidden alias for ",     "transaction clone for ",
    "non-transaction clone for ", "template parameter object for ",
};

std::optional<std::string> simplify_cxx(std::string_view s, int depth) {
  if (depth > 8) return std::nullopt;
  // GCC clones (".constprop.0", ".isra.0", ".part.0", ".cold", ...) are
  // merged into the function they were cloned from.
  while (!s.empty() && s.back() == ']') {
    size_t at = s.rfind(" [clone ");
    if (at == std::string_view::npos) break;
    s = s.substr(0, at);
  }
  for (std::string_view p : kSpecialPrefixes) {
    if (!starts_with(s, p)) continue;
    std::string_view rest = s.substr(p.size());
    auto r = simplify_cxx(rest, depth + 1);
    return std::string(p) + (r ? *r : std::string(rest));
  }
  if (starts_with(s, "construction vtable for ")) {
    std::string_view rest = s.substr(24);
    size_t in = rest.rfind("-in-");
    if (in == std::string_view::npos) return std::nullopt;
    auto a = simplify_cxx(rest.substr(0, in), depth + 1);
    auto b = simplify_cxx(rest.substr(in + 4), depth + 1);
    if (!a || !b) return std::nullopt;
    return "construction vtable for " + *a + "-in-" + *b;
  }
  if (starts_with(s, "reference temporary #")) {
    size_t f = s.find(" for ");
    if (f == std::string_view::npos) return std::nullopt;
    auto r = simplify_cxx(s.substr(f + 5), depth + 1);
    if (!r) return std::nullopt;
    return std::string(s.substr(0, f + 5)) + *r;
  }
  auto toks = tokenize_cxx(s);
  if (!toks) return std::nullopt;
  return simplify_cxx_tokens(*toks, depth);
}

// libstdc++ 12's __cxa_demangle never returns on some malformed names. In
// an expression's unresolved name ("sr", new-style qualifiers), its prefix
// loop does not notice a component that fails without consuming input, e.g.
// a ctor/dtor/unnamed-type marker without a valid code: "_Z1eIXsr1aCEE",
// "_Z1fDTsr1aDE", "_Z1eIXsr18haC_Seq". This replays that loop over the
// qualifiers up to the first template argument list and reports the stalls.
// Compiler output never stalls, so valid names are never refused; malformed
// ones that only go wrong inside template arguments are not caught.
bool cxa_may_hang(std::string_view m) {
  auto at_or_nul = [&](size_t i) { return i < m.size() ? m[i] : '\0'; };
  for (size_t at = m.find("sr"); at != std::string_view::npos; at = m.find("sr", at + 1)) {
    bool expr = (at >= 1 && m[at - 1] == 'X') ||
                (at >= 2 && m[at - 2] == 'D' && (m[at - 1] == 'T' || m[at - 1] == 't'));
    size_t i = at + 2;
    char first = at_or_nul(i);
    if (!expr || !(is_digit(first) || is_lower(first) || first == 'C' || first == 'U' || first == 'L'))
      continue;
    for (bool more = true; more && i < m.size();) {
      char c = m[i], n = at_or_nul(i + 1);
      if (is_digit(c)) {  // <source-name>; a too-long one stops after the digits
        size_t len = 0;
        while (i < m.size() && is_digit(m[i])) {
          len = std::min<size_t>(len * 10 + static_cast<size_t>(m[i] - '0'), m.size() + 1);
          ++i;
        }
        if (len <= m.size() - i) i += len;
      } else if (is_lower(c)) {  // operator name: two characters
        if (c == 'c' && n == 'v') break;
        i += 2;
      } else if (c == 'C') {
        if (n == 'I') break;
        if (!(n >= '1' && n <= '5')) return true;
        i += 2;
      } else if (c == 'D') {
        if (n == 'T' || n == 't') break;
        if (!(n >= '0' && n <= '5')) return true;
        i += 2;
      } else if (c == 'U') {
        if (n != 'l' && n != 't') return true;
        break;
      } else if (c == 'L') {
        ++i;
      } else if (c == 'T') {  // template parameter: T_ or T<n>_
        ++i;
        while (i < m.size() && is_digit(m[i])) ++i;
        if (at_or_nul(i) == '_') ++i;
      } else if (c == 'S') {  // substitution
        ++i;
        if (is_digit(at_or_nul(i)) || is_upper(at_or_nul(i))) {
          while (is_digit(at_or_nul(i)) || is_upper(at_or_nul(i))) ++i;
        }
        ++i;
      } else {
        more = false;  // 'E', template arguments, anything else: the loop ends
      }
    }
  }
  return false;
}

}  // namespace

std::string demangle(std::string_view name, DemangleStyle style) {
  // Itanium C++ ABI names ("_Z"), Rust legacy ("_ZN...17h<hash>E") and Rust
  // v0 ("_R"). Versioned names like "_ZN3foo3barEv@@GLIBCXX_3.4" are split
  // first; the version is dropped when demangling succeeds.
  if (name.size() < 3 || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
    return std::string(name);
  std::string_view mangled_view = name;
  if (size_t at = name.find('@'); at != std::string_view::npos) mangled_view = name.substr(0, at);

  std::string rust;
  if (name[1] == 'R') {
    if (demangle_rust_v0(strip_llvm_suffix(mangled_view), style, &rust)) return rust;
    return std::string(name);
  }
  if (demangle_rust_legacy(strip_llvm_suffix(mangled_view), style, &rust)) return rust;

  if (cxa_may_hang(mangled_view)) return std::string(name);
  std::string mangled(mangled_view);
  int status = 0;
  char* out = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  if (status != 0 || !out) {
    std::free(out);
    return std::string(name);
  }
  std::string result(out);
  std::free(out);
  if (style == DemangleStyle::kSimplified) {
    if (auto simple = simplify_cxx(result, 0)) return *simple;
  }
  return result;
}

}  // namespace ember
