#include "symbolizer/symbolizer.h"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "symbolizer/demangle.h"

namespace ember {

namespace {
PerfMapCache::Options perf_map_options(const SymbolizerOptions& o) {
  PerfMapCache::Options p = o.perf_map;
  p.proc_root = o.proc_root;
  return p;
}
}  // namespace

Symbolizer::Symbolizer(SymbolizerOptions opts)
    : opts_(std::move(opts)), cache_(opts_.cache), perf_maps_(perf_map_options(opts_), *opts_.clock) {}

std::shared_ptr<const Binary> Symbolizer::binary_for(const ProcessSnapshot& proc,
                                                     const MapEntry& m) {
  std::string name(m.clean_path());
  UniqueFd fd = open_mapped_file(proc, m);
  if (!fd.valid()) {
    // Unreachable now; it may still be cached from an earlier sighting.
    return cache_.find_by_inode(uint64_t(m.dev()), m.inode);
  }
  auto bin = cache_.get(std::move(fd), name, load_options(proc));
  // Parsed (or known unusable) and cached by identity now: our use of the
  // pin is over.
  if (PinnedFile* pin = pin_of(proc, m)) pin->release(kPinSymbolizer);
  if (!bin) {
    EMBER_DEBUG("cannot read %s: %s", name.c_str(), bin.error().message.c_str());
    return nullptr;
  }
  return *bin;
}

std::shared_ptr<const Binary> Symbolizer::exe_from_hint(const ProcessSnapshot& proc) {
  const ExecHint& h = *proc.exec_hint;
  if (auto bin = cache_.find_by_inode(uint64_t(h.dev), h.inode)) return bin;
  if (proc.exe_fd && proc.exe_fd->fd() >= 0) {
    UniqueFd fd(::fcntl(proc.exe_fd->fd(), F_DUPFD_CLOEXEC, 0));
    if (fd.valid()) {
      // libelf reads by offset (pread), so sharing the file description is safe.
      auto bin = cache_.get(std::move(fd), proc.exe_path.empty() ? "[exe]" : proc.exe_path,
                            load_options(proc));
      proc.exe_fd->release(kPinSymbolizer);  // cached by inode now
      if (bin) return *bin;
    }
  }
  return nullptr;
}

std::shared_ptr<const Binary> Symbolizer::vdso() {
  // Every process maps the same vDSO image the kernel gave us, so our own copy
  // (found through the auxiliary vector) symbolizes everyone's.
  std::call_once(vdso_once_, [this] {
    auto base = reinterpret_cast<const unsigned char*>(getauxval(AT_SYSINFO_EHDR));
    if (!base) return;
    auto ehdr = reinterpret_cast<const Elf64_Ehdr*>(base);
    size_t size = size_t(ehdr->e_shoff) + size_t(ehdr->e_shnum) * ehdr->e_shentsize;
    auto elf = ElfFile::from_memory(base, size, "[vdso]");
    if (!elf) return;
    auto bin = Binary::load(**elf);
    if (bin) vdso_ = *bin;
  });
  return vdso_;
}

Binary::LoadOptions Symbolizer::load_options(const ProcessSnapshot& proc) const {
  Binary::LoadOptions o;
  o.dwarf = opts_.lines;
  o.debug.debug_dirs = opts_.debug_dirs;
  o.debuginfod = opts_.debuginfod.get();
  o.now_ns = opts_.clock->monotonic_ns();
  // Debug files of a containerized process live in its own filesystem,
  // reached through the root its snapshot holds open.
  if (proc.pid > 0) o.debug.root = proc.root_path();
  return o;
}

void Symbolizer::fill_function(const Binary& bin, uint64_t vaddr, UserSymbol* out) {
  if (const Symbol* sym = bin.lookup(vaddr)) out->function_offset = vaddr - sym->start;
  // DWARF names every frame, the outermost too: the symbol table may only
  // have a clone's name (foo.constprop.0, foo.cold) for the same function.
  bin.describe(vaddr, opts_.lines, opts_.demangle, &out->frames);
  if (out->frames.empty()) return;
  if (opts_.demangle && opts_.demangle_style == DemangleStyle::kSimplified) {
    for (auto& f : out->frames)
      if (!f.system_name.empty()) f.function = demangle(f.system_name, DemangleStyle::kSimplified);
  }
  out->function = out->frames.back().function;
  out->system_name = out->frames.back().system_name;
  if (out->frames.size() == 1 && out->frames[0].file.empty()) out->frames.clear();  // name only
}

UserSymbol Symbolizer::resolve_user(const ProcessSnapshot& proc, uint64_t addr,
                                    bool return_address, BinaryMemo* memo) {
  UserSymbol out;
  uint64_t lookup = return_address && addr > 0 ? addr - 1 : addr;
  const MapEntry* m = proc.find(addr);
  if (m) {
    out.module = std::string(m->clean_path());
    out.module_offset = addr - m->start + m->offset;
    if (m->path == "[vdso]") {
      out.binary = vdso();
      if (out.binary && !out.binary->segments().empty()) {
        // The vDSO is mapped whole from its first page.
        uint64_t vaddr = lookup - m->start + out.binary->segments().front().vaddr;
        fill_function(*out.binary, vaddr, &out);
      }
      return out;
    }
    if (!m->is_file()) {
      fill_jit(proc, lookup, &out);  // anonymous executable memory: JIT code
      return out;
    }
    if (memo && memo->known) {
      out.binary = memo->binary;
    } else {
      out.binary = binary_for(proc, *m);
      if (memo) *memo = BinaryMemo{true, out.binary};
    }
    if (!out.binary) {
      fill_jit(proc, lookup, &out);  // e.g. a memfd holding JIT code
      return out;
    }
    auto vaddr = out.binary->file_offset_to_vaddr(lookup - m->start + m->offset);
    if (vaddr) fill_function(*out.binary, *vaddr, &out);
    return out;
  }
  // No mapping: if the process died before its maps were read, the exec
  // event still tells us where its executable's text was loaded.
  if (proc.exec_hint && addr >= proc.exec_hint->start_code && addr < proc.exec_hint->end_code) {
    out.binary = exe_from_hint(proc);
    out.via_exec_hint = true;
    out.module = proc.exe_path;
    if (!out.binary) return out;
    if (out.module.empty()) out.module = out.binary->path();
    uint64_t bias = proc.exec_hint->entry - out.binary->entry();
    uint64_t vaddr = lookup - bias;
    // Report the file offset, which is what pprof mappings describe.
    for (const auto& seg : out.binary->segments()) {
      if (vaddr >= seg.vaddr && vaddr < seg.vaddr + seg.memsz) {
        out.module_offset = vaddr - seg.vaddr + seg.offset + (lookup != addr ? 1 : 0);
        break;
      }
    }
    fill_function(*out.binary, vaddr, &out);
    return out;
  }
  // Code mapped after the snapshot was taken is most likely JIT code.
  fill_jit(proc, lookup, &out);
  return out;
}

bool Symbolizer::fill_jit(const ProcessSnapshot& proc, uint64_t addr, UserSymbol* out) {
  if (!opts_.perf_maps || proc.pid <= 0) return false;
  // `addr` is already the call instruction for return addresses, so a call
  // ending a region is not attributed to the next one.
  std::string name = perf_maps_.lookup(proc.pid, addr);
  if (name.empty()) return false;
  out->function = std::move(name);
  out->jit = true;
  return true;
}

std::optional<KernelSymbolInfo> Symbolizer::resolve_kernel(uint64_t addr, uint64_t now_ns) {
  std::shared_ptr<const Kallsyms> ks;
  {
    std::lock_guard<std::mutex> lock(kallsyms_mu_);
    if (!kallsyms_tried_) {
      kallsyms_tried_ = true;
      auto loaded = Kallsyms::load(opts_.proc_root);
      if (loaded) kallsyms_ = *loaded;
      else EMBER_WARN("kernel symbols unavailable: %s", loaded.error().message.c_str());
      kallsyms_loaded_ns_ = now_ns;
    }
    ks = kallsyms_;
  }
  std::optional<KernelSymbol> sym;
  if (ks) sym = ks->lookup(addr);
  if (!sym) {
    // Maybe a module or BPF program that appeared after we loaded; reload,
    // but not more often than the configured interval.
    std::lock_guard<std::mutex> lock(kallsyms_mu_);
    if (now_ns - kallsyms_loaded_ns_ >= opts_.kallsyms_reload_interval_ns) {
      kallsyms_loaded_ns_ = now_ns;
      auto loaded = Kallsyms::load(opts_.proc_root);
      if (loaded) kallsyms_ = *loaded;
    }
    ks = kallsyms_;
    if (ks) sym = ks->lookup(addr);
  }
  if (!sym) return std::nullopt;
  KernelSymbolInfo info;
  info.function = std::string(sym->name);
  info.module = std::string(sym->module);
  info.offset = sym->offset;
  return info;
}

}  // namespace ember
