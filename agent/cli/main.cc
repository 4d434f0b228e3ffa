// The `ember` command: dispatches to its subcommands.
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
    "  ember version\n"
    "\n"
    "Run 'ember <command> --help' for its options.\n";

}  // namespace

int main(int argc, char** argv) {
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
  if (cmd == "version" || cmd == "--version") {
    std::cout << "ember " << EMBER_VERSION << std::endl;
    return 0;
  }
  std::cerr << "ember: unknown command '" << cmd << "'\n\n" << kUsage;
  return ember::kExitUsage;
}
