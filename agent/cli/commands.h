// Entry points of the `ember` subcommands. Each takes the arguments after
// its name and returns the process exit code.
#pragma once

namespace ember {

int run_record(int argc, char** argv);
int run_agent(int argc, char** argv);
int run_targets(int argc, char** argv);
int run_kernel_check(int argc, char** argv);
int run_report(int argc, char** argv);
int run_diff(int argc, char** argv);

// Exit codes shared by the subcommands.
constexpr int kExitUsage = 2;        // bad flags or config
constexpr int kExitCannotRun = 3;    // kernel/privileges insufficient, or setup failed

}  // namespace ember
