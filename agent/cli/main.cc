// The `ember` command: dispatches to its subcommands.
#include <malloc.h>

#include <cstring>
#include <iostream>

#include "agent/cli/commands.h"

namespace {

const char* kUsage =
    "Ember: a whole-system continuous profiler for Linux.\n"
    "\n"
    "Usage:\n"
    "  ember record [options] -- COMMAND [ARGS...]   profile a command and its children\n"
    "  ember record [options] -p PID                 profile a running process\n"
    "  ember record [options] -a [-d 30s]            profile the whole system\n"
    "  ember agent --config FILE                     run the continuous profiling daemon\n"
    "  ember targets --config FILE [--json] [--all]  list what the agent would profile, with labels\n"
    "  ember kernel-check [--btf FILE]...            check that Ember loads on this (or that) kernel\n"
    "  ember report FILE                             the top functions of a profile (pprof or folded)\n"
    "  ember diff [--fail-above PP] BASE NEW         what changed between two profiles, and whether\n"
    "                                                it is more than noise\n"
    "  ember version\n"
    "\n"
    "Run 'ember <command> --help' for its options.\n";

// glibc's defaults suit short programs, not a daemon with a dozen threads:
// an arena per allocating thread (up to 8 per core), and an mmap threshold
// that rises to the largest block ever freed, so that after start-up (a 5.8
// MB decompressed DWARF section, 2 MB symbol vectors) even big buffers come
// from, and stay in, the heap. Two arenas, and blocks of 1 MiB or more always
// mmap'd (returned to the system when freed): `ember agent` with two busy
// CPUs at 100 Hz (bench/overhead/agent_cost.sh 10 40 3 100, six runs each)
// peaked at 44.2-47.3 MiB instead of 47.5-50.1, its CPU per sample unchanged
// within noise (median 2.65 against 3.15 us). A fixed 128 KiB threshold
// saved as much memory but raised the CPU per sample from 3.96 to 9.73 us
// (medians of three): per-drain buffers of a few hundred KiB were mapped
// and unmapped every time.
void tune_malloc() {
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc();
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? ember::kExitUsage : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "record") return ember::run_record(argc - 1, argv + 1);
  if (cmd == "agent") return ember::run_agent(argc - 1, argv + 1);
  if (cmd == "targets") return ember::run_targets(argc - 1, argv + 1);
  if (cmd == "kernel-check") return ember::run_kernel_check(argc - 1, argv + 1);
  if (cmd == "report") return ember::run_report(argc - 1, argv + 1);
  if (cmd == "diff") return ember::run_diff(argc - 1, argv + 1);
  if (cmd == "version" || cmd == "--version") {
    std::cout << "ember " << EMBER_VERSION << std::endl;
    return 0;
  }
  std::cerr << "ember: unknown command '" << cmd << "'\n\n" << kUsage;
  return ember::kExitUsage;
}
