// The process environment behind a function, so code that reads variables
// (the in-cluster Kubernetes settings, a CI run's labels) runs in tests on
// an environment of the test's own.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace ember {

// Looks up an environment variable; nullopt when unset.
using EnvGetter = std::function<std::optional<std::string>(const std::string&)>;

// The process environment (getenv).
EnvGetter process_env();

}  // namespace ember
