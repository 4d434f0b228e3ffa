// `ember kernel-check`: will Ember run on this kernel, or on another one?
//
// For the running kernel (no --btf), or for the kernel a BTF file describes
// (--btf, repeatable: /sys/kernel/btf/vmlinux of another machine, or a
// vmlinux), it prints which BPF features that kernel has, what each one buys,
// and loads every program Ember could use there, without attaching anything.
// With --btf, libbpf relocates every CO-RE access against that kernel's types,
// so a field whose type, size or name differs there fails here, in a second,
// naming the field; the build runs this against every kernel BTF it has
// (tests/kernels). Loading needs the privileges `ember record` needs; the
// programs are verified by the running kernel.
//
// Exit codes: 0 every kernel OK, 1 some kernel fails, 3 this machine cannot
// load BPF at all (privileges, no BTF), 2 usage.
//
// Single-threaded.
#include <cxxopts.hpp>
#include <iostream>

#include "agent/cli/command_line.h"
#include "agent/cli/commands.h"
#include "agent/cli/preflight.h"
#include "agent/sampler/bpf_sampler.h"
#include "agent/sampler/kernel_features.h"
#include "common/log.h"

namespace ember {
namespace {

// One line per feature: what it buys and what happens without it.
void print_features(const KernelFeatures& f) {
  std::cout << "  bpf_loop: " << (f.bpf_loop ? "yes" : "no") << " (Linux 5.17+) - "
            << (f.bpf_loop ? "unwind tables: complete user stacks without frame pointers"
                           : "frame pointers only: code built without them shows truncated stacks")
            << "\n";
  std::cout << "  task_pt_regs: " << (f.task_pt_regs ? "yes" : "no") << " (bpf_task_pt_regs, Linux 5.15+) - "
            << (f.task_pt_regs ? "Ember's own user-stack walk for samples taken in the kernel"
                               : "the kernel's frame-pointer walk for samples taken in the kernel")
            << "\n";
}

}  // namespace

int run_kernel_check(int argc, char** argv) {
  cxxopts::Options options("ember kernel-check",
                           "Check that Ember's BPF programs load on this kernel, or relocate onto "
                           "the kernel a BTF file describes.\n\n"
                           "  ember kernel-check [--btf FILE]... [--features-only]\n");
  options.add_options()
      ("btf", "Check against the kernel this BTF file describes (raw BTF or an ELF vmlinux; "
              "repeatable) instead of the running kernel", cxxopts::value<std::vector<std::string>>())
      ("features-only", "Print the kernel's features and load nothing (needs no privileges with --btf)")
      ("disable-kernel-feature", "Check as if the kernel lacked this feature (bpf_loop, task_pt_regs)",
       cxxopts::value<std::vector<std::string>>())
      ("log-level", "debug, info, warn or error", cxxopts::value<std::string>()->default_value("warn"))
      ("h,help", "Show this help");
  int exit_code = 0;
  auto parsed = parse_command_line(options, "ember kernel-check", argc, argv, false, &exit_code);
  if (!parsed) return exit_code;
  const cxxopts::ParseResult& args = *parsed;
  auto level = log_level_option(args, "ember kernel-check", log::Level::kWarn, &exit_code);
  if (!level) return exit_code;
  log::set_level(*level);

  SamplerOptions opts;
  if (args.count("disable-kernel-feature")) {
    opts.disabled_features = args["disable-kernel-feature"].as<std::vector<std::string>>();
    KernelFeatures probe;
    for (const auto& name : opts.disabled_features)
      if (auto st = disable_kernel_feature(&probe, name); !st) {
        std::cerr << "ember kernel-check: " << st.error().message << std::endl;
        return kExitUsage;
      }
  }
  const bool features_only = args.count("features-only") > 0;
  std::vector<std::string> targets;
  if (args.count("btf")) targets = args["btf"].as<std::vector<std::string>>();
  const bool running = targets.empty();
  if (running) targets.emplace_back();

  if (!features_only || running) {
    auto pre = preflight("/sys");
    if (!pre.ok()) {
      for (const auto& e : pre.errors) std::cerr << "ember: error: " << e << std::endl;
      return kExitCannotRun;
    }
  }

  int failures = 0;
  for (const auto& btf : targets) {
    const std::string what = btf.empty() ? "the running kernel" : btf;
    KernelFeatures features;
    if (btf.empty()) {
      features = probe_running_kernel();
    } else {
      auto f = kernel_features_from_btf(btf);
      if (!f) {
        std::cout << what << ": FAIL: " << f.error().message << "\n";
        ++failures;
        continue;
      }
      features = *f;
    }
    for (const auto& name : opts.disabled_features) (void)disable_kernel_feature(&features, name);
    std::cout << what << ":\n";
    print_features(features);
    if (features_only) continue;
    auto check = BpfSampler::check_load(opts, btf);
    if (!check) {
      std::cout << "  FAIL: " << check.error().message << "\n";
      ++failures;
      continue;
    }
    std::cout << "  OK: loaded";
    for (const auto& p : check->programs) std::cout << " " << p;
    std::cout << "\n";
  }
  std::cout.flush();
  // 1: a kernel Ember would not load on; 3 (above): this machine cannot check.
  return failures ? 1 : 0;
}

}  // namespace ember
