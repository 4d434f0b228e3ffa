#include "symbolizer/kallsyms.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "common/unique_fd.h"

namespace ember {

// Parser: turns kallsyms lines into a Kallsyms, one line at a time. Owned by
// the loading thread for the length of one load.
class Kallsyms::Parser {
 public:
  Parser() : ks_(std::make_shared<Kallsyms>()) {
    // Reference 0 is the empty module name of the core kernel.
    new_block();
    used_ = 1;
    // Symbols, not lines: about 4 in 5 lines of a distribution kernel's
    // kallsyms are text symbols. Reserved once so the vector does not
    // double (and briefly hold 1.5 times its size) on the way.
    ks_->syms_.reserve(1 << 17);
  }

  Result<void> line(std::string_view line) {
    ++line_no_;
    if (line.empty()) return {};
    // "ffffffff81000000 T _stext" or "ffffffffc0123000 t foo\t[module]"
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 + 3 > line.size() || line[sp1 + 2] != ' ')
      return Errorf("kallsyms line %zu is malformed", line_no_);
    uint64_t addr = 0;
    for (size_t i = 0; i < sp1; ++i) {
      char c = line[i];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
      if (d < 0) return Errorf("kallsyms line %zu has a bad address", line_no_);
      addr = (addr << 4) | uint64_t(d);
    }
    char type = line[sp1 + 1];
    // Text symbols only: data symbols would claim code addresses wrongly.
    bool text_sym = type == 't' || type == 'T' || type == 'w' || type == 'W';
    if (!text_sym || addr == 0) return {};
    std::string_view rest = line.substr(sp1 + 3);
    std::string_view name = rest, module;
    size_t tab = rest.find('\t');
    if (tab != std::string_view::npos) {
      name = rest.substr(0, tab);
      module = rest.substr(tab + 1);
      if (module.size() >= 2 && module.front() == '[' && module.back() == ']')
        module = module.substr(1, module.size() - 2);
    }
    uint32_t mod_ref = 0;
    if (!module.empty()) {
      auto [it, inserted] = modules_.try_emplace(std::string(module), 0);
      if (inserted) it->second = store(module);
      mod_ref = it->second;
    }
    // Linux 6.2+ gives every function a `__pfx_NAME` symbol for its padding
    // just before `NAME` (47% of this machine's text symbols, 1.6 MB of
    // names): NAME then shares the bytes of the "__pfx_NAME" just stored.
    uint32_t name_ref;
    constexpr std::string_view kPfx = "__pfx_";
    if (!last_pfx_.empty() && name == last_pfx_.substr(kPfx.size())) {
      name_ref = last_pfx_ref_ + uint32_t(kPfx.size());
      last_pfx_ = {};
    } else {
      name_ref = store(name);
      last_pfx_ = name.substr(0, kMaxName).rfind(kPfx, 0) == 0 ? stored(name_ref) : std::string_view();
      last_pfx_ref_ = name_ref;
    }
    ks_->syms_.push_back(Sym{addr, name_ref, mod_ref});
    return {};
  }

  std::shared_ptr<const Kallsyms> finish() {
    auto& syms = ks_->syms_;
    std::stable_sort(syms.begin(), syms.end(),
                     [](const Sym& a, const Sym& b) { return a.start < b.start; });
    syms.shrink_to_fit();
    return std::move(ks_);
  }

 private:
  static constexpr size_t kBlock = size_t(1) << kBlockBits;
  // KSYM_NAME_LEN is 512; a longer name is cut rather than straddle blocks.
  static constexpr size_t kMaxName = 1023;

  void new_block() {
    ks_->blocks_.push_back(std::make_unique<char[]>(kBlock));
    used_ = 0;
  }
  uint32_t store(std::string_view s) {
    s = s.substr(0, kMaxName);
    if (used_ + s.size() + 1 > kBlock) new_block();
    char* block = ks_->blocks_.back().get();
    std::memcpy(block + used_, s.data(), s.size());
    block[used_ + s.size()] = '\0';
    uint32_t ref = uint32_t(((ks_->blocks_.size() - 1) << kBlockBits) | used_);
    used_ += s.size() + 1;
    return ref;
  }

  std::string_view stored(uint32_t ref) const { return ks_->str(ref); }

  std::shared_ptr<Kallsyms> ks_;
  std::unordered_map<std::string, uint32_t> modules_;
  std::string_view last_pfx_;  // the last name stored, if it starts with __pfx_
  uint32_t last_pfx_ref_ = 0;
  size_t used_ = 0;
  size_t line_no_ = 0;
};

Result<std::shared_ptr<const Kallsyms>> Kallsyms::load(const std::string& proc_root) {
  const std::string path = proc_root + "/kallsyms";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Errorf("open %s: %s", path.c_str(), std::strerror(errno));
  Parser parser;
  // A line is at most ~600 bytes; the carried-over partial line stays at the
  // front of the buffer while the rest of it is read.
  std::vector<char> buf(64 << 10);
  size_t have = 0;
  for (;;) {
    if (have == buf.size()) return Errorf("%s: a line longer than %zu bytes", path.c_str(), buf.size());
    ssize_t n = ::read(fd.get(), buf.data() + have, buf.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errorf("read %s: %s", path.c_str(), std::strerror(errno));
    if (n == 0) break;
    have += size_t(n);
    std::string_view chunk(buf.data(), have);
    size_t nl;
    while ((nl = chunk.find('\n')) != std::string_view::npos) {
      if (auto r = parser.line(chunk.substr(0, nl)); !r) return r.error();
      chunk.remove_prefix(nl + 1);
    }
    std::memmove(buf.data(), chunk.data(), chunk.size());
    have = chunk.size();
  }
  if (have > 0) {
    if (auto r = parser.line(std::string_view(buf.data(), have)); !r) return r.error();
  }
  return parser.finish();
}

Result<std::shared_ptr<const Kallsyms>> Kallsyms::parse(std::string_view text) {
  Parser parser;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (auto r = parser.line(text.substr(0, nl)); !r) return r.error();
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  return parser.finish();
}

std::string_view Kallsyms::str(uint32_t ref) const {
  return std::string_view(blocks_[ref >> kBlockBits].get() + (ref & ((1u << kBlockBits) - 1)));
}

std::optional<KernelSymbol> Kallsyms::lookup(uint64_t addr) const {
  auto it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                             [](uint64_t a, const Sym& s) { return a < s.start; });
  if (it == syms_.begin()) return std::nullopt;
  --it;
  // Kallsyms carries no sizes. No kernel function is anywhere near 1 MiB, so
  // an address that far past the nearest symbol (e.g. in a module loaded
  // after we read the table) stays unresolved instead of misattributed.
  uint64_t off = addr - it->start;
  if (off >= (1u << 20)) return std::nullopt;
  KernelSymbol ks;
  ks.name = str(it->name);
  ks.module = str(it->module);
  ks.start = it->start;
  ks.offset = off;
  return ks;
}

}  // namespace ember
