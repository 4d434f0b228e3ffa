// What every subcommand does with its command line, in one place: parse the
// flags (an error prints the usage), --help, stray arguments, --config, and
// --log-level. Each returns nullopt after printing what went wrong (or the
// help), with the exit code to return in *exit_code.
#pragma once

#include <cxxopts.hpp>
#include <optional>
#include <string>

#include "agent/config/config.h"
#include "common/log.h"

namespace ember {

// `command` names the subcommand in messages ("ember agent").
std::optional<cxxopts::ParseResult> parse_command_line(cxxopts::Options& options,
                                                       const char* command, int argc, char** argv,
                                                       bool allow_extra_args, int* exit_code);

// The file named by --config (or the defaults without one).
std::optional<Config> load_config_option(const cxxopts::ParseResult& args, const char* command,
                                         int* exit_code);

// --log-level as given or defaulted; `fallback` when the command has no such
// option or it has no value.
std::optional<log::Level> log_level_option(const cxxopts::ParseResult& args, const char* command,
                                           log::Level fallback, int* exit_code);

}  // namespace ember
