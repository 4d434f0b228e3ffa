// Load-failure diagnosis: turns what libbpf printed while a BPF object failed
// to load into one message a user can act on. It names the program, the
// kernel field (a CO-RE relocation that failed) or the verifier's complaint
// (with the first and last lines of its log), and the running kernel.
//
// Pure text processing, so it is unit-tested on real libbpf logs.
#pragma once

#include <string>

namespace ember {

// `libbpf_log`: every line libbpf printed during the load (debug level
// included). `kernel`: the running kernel's release. `err`: the negative
// errno the load returned.
std::string explain_load_failure(const std::string& libbpf_log, const std::string& kernel, int err);

}  // namespace ember
