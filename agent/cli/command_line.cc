#include "agent/cli/command_line.h"

#include <iostream>

#include "agent/cli/commands.h"

namespace ember {

std::optional<cxxopts::ParseResult> parse_command_line(cxxopts::Options& options,
                                                       const char* command, int argc, char** argv,
                                                       bool allow_extra_args, int* exit_code) {
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << command << ": " << e.what() << "\n" << options.help() << std::endl;
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  if (args.count("help")) {
    std::cout << options.help() << std::endl;
    *exit_code = 0;
    return std::nullopt;
  }
  if (!allow_extra_args && !args.unmatched().empty()) {
    std::cerr << command << ": unexpected argument '" << args.unmatched()[0] << "'" << std::endl;
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return args;
}

std::optional<Config> load_config_option(const cxxopts::ParseResult& args, const char* command,
                                         int* exit_code) {
  if (!args.count("config")) return Config{};
  auto loaded = load_config_file(args["config"].as<std::string>());
  if (!loaded) {
    std::cerr << command << ": invalid config:\n" << loaded.error().message << std::endl;
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return std::move(*loaded);
}

std::optional<log::Level> log_level_option(const cxxopts::ParseResult& args, const char* command,
                                           log::Level fallback, int* exit_code) {
  std::string text;
  try {
    text = args["log-level"].as<std::string>();  // given, or the option's default
  } catch (const cxxopts::exceptions::exception&) {
    return fallback;  // no such option, or no value
  }
  log::Level level;
  if (!log::parse_level(text, &level)) {
    std::cerr << command << ": --log-level must be debug, info, warn or error" << std::endl;
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return level;
}

}  // namespace ember
