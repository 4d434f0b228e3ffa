#include "symbolizer/kallsyms.h"

#include <algorithm>
#include <unordered_map>

#include "common/files.h"

namespace ember {

Result<std::shared_ptr<const Kallsyms>> Kallsyms::load(const std::string& proc_root) {
  auto text = read_file(proc_root + "/kallsyms");
  if (!text) return text.error();
  return parse(*text);
}

Result<std::shared_ptr<const Kallsyms>> Kallsyms::parse(std::string_view text) {
  auto ks = std::make_shared<Kallsyms>();
  ks->pool_.push_back('\0');  // offset 0 is the empty module name
  std::unordered_map<std::string, uint32_t> modules;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty()) continue;
    // "ffffffff81000000 T _stext" or "ffffffffc0123000 t foo\t[module]"
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 + 3 > line.size() || line[sp1 + 2] != ' ')
      return Errorf("kallsyms line %zu is malformed", line_no);
    uint64_t addr = 0;
    for (size_t i = 0; i < sp1; ++i) {
      char c = line[i];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
      if (d < 0) return Errorf("kallsyms line %zu has a bad address", line_no);
      addr = (addr << 4) | uint64_t(d);
    }
    char type = line[sp1 + 1];
    std::string_view rest = line.substr(sp1 + 3);
    std::string_view name = rest, module;
    size_t tab = rest.find('\t');
    if (tab != std::string_view::npos) {
      name = rest.substr(0, tab);
      module = rest.substr(tab + 1);
      if (module.size() >= 2 && module.front() == '[' && module.back() == ']')
        module = module.substr(1, module.size() - 2);
    }
    // Text symbols only: data symbols would claim code addresses wrongly.
    bool text_sym = type == 't' || type == 'T' || type == 'w' || type == 'W';
    if (!text_sym || addr == 0) continue;
    uint32_t mod_off = 0;
    if (!module.empty()) {
      auto [it, inserted] = modules.try_emplace(std::string(module), 0);
      if (inserted) {
        it->second = uint32_t(ks->pool_.size());
        ks->pool_.append(module);
        ks->pool_.push_back('\0');
      }
      mod_off = it->second;
    }
    uint32_t name_off = uint32_t(ks->pool_.size());
    ks->pool_.append(name);
    ks->pool_.push_back('\0');
    ks->syms_.push_back(Sym{addr, name_off, mod_off});
  }
  std::stable_sort(ks->syms_.begin(), ks->syms_.end(),
                   [](const Sym& a, const Sym& b) { return a.start < b.start; });
  ks->syms_.shrink_to_fit();
  return std::shared_ptr<const Kallsyms>(std::move(ks));
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
  ks.name = std::string_view(pool_.c_str() + it->name);
  ks.module = std::string_view(pool_.c_str() + it->module);
  ks.start = it->start;
  ks.offset = off;
  return ks;
}

}  // namespace ember
