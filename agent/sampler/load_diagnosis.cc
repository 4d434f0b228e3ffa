#include "agent/sampler/load_diagnosis.h"

#include <cstring>
#include <regex>
#include <sstream>
#include <vector>

namespace ember {
namespace {

// libbpf's marker for an instruction whose CO-RE relocation found no field:
// the verifier reports a call to this helper id when such code is reachable.
constexpr const char* kPoisonedCall = "unknown#195896080";

constexpr size_t kVerifierHead = 4;   // first lines of the verifier log shown
constexpr size_t kVerifierTail = 12;  // and its last lines, where the error is

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.rfind("libbpf: ", 0) == 0) line.erase(0, 8);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// The accessed field of relocation #relo, e.g. "struct bpf_perf_event_data.regs.cs",
// from libbpf's first line about it:
//   prog 'P': relo #40: <byte_off> [91] struct bpf_perf_event_data.regs.cs (0:0:17:0 @ offset 136)
std::string spec_of(const std::vector<std::string>& lines, const std::string& prog, const std::string& relo) {
  static const std::regex spec_re(R"(^<[a-z_]+> \[\d+\] (.+?) \()");
  const std::string prefix = "prog '" + prog + "': relo #" + relo + ": ";
  for (const auto& l : lines) {
    if (l.rfind(prefix, 0) != 0) continue;
    std::smatch m;
    std::string rest = l.substr(prefix.size());
    if (std::regex_search(rest, m, spec_re)) return m[1].str();
  }
  return "";
}

// Kernels older than a helper print "invalid func unknown#181": name the
// helpers Ember uses by their ids (include/uapi/linux/bpf.h).
std::string helper_name(const std::string& name, int id) {
  if (name != "unknown") return name;
  switch (id) {
    case 158: return "bpf_get_current_task_btf (Linux 5.11)";
    case 175: return "bpf_task_pt_regs (Linux 5.15)";
    case 181: return "bpf_loop (Linux 5.17)";
  }
  return "#" + std::to_string(id);
}

std::string indent(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "\n    " + l;
  return out;
}

}  // namespace

std::string explain_load_failure(const std::string& libbpf_log, const std::string& kernel, int err) {
  const std::vector<std::string> lines = lines_of(libbpf_log);
  const std::string where = " on Linux " + (kernel.empty() ? std::string("(unknown release)") : kernel) +
                            " (" + std::strerror(err < 0 ? -err : err) + ")";

  // 1. A CO-RE relocation that could not be applied: the field is named.
  static const std::regex relo_fail(R"(^prog '([^']+)': relo #(\d+): (.*(failed|unexpected|incorrectly|mismatch).*)$)");
  for (const auto& l : lines) {
    std::smatch m;
    if (!std::regex_match(l, m, relo_fail)) continue;
    std::string prog = m[1].str(), relo = m[2].str(), what = m[3].str();
    std::string spec = spec_of(lines, prog, relo);
    std::string msg = "cannot load the BPF program '" + prog + "'" + where + ": the kernel's " +
                      (spec.empty() ? std::string("type information") : "field " + spec) +
                      " does not match what Ember reads (CO-RE relocation #" + relo + ": " + what + ")";
    return msg;
  }

  // 2. The verifier refused a program: its log says why.
  static const std::regex load_fail(R"(^prog '([^']+)': BPF program load failed: (.*)$)");
  std::string prog;
  std::vector<std::string> vlog;
  bool in_log = false;
  for (const auto& l : lines) {
    std::smatch m;
    if (prog.empty() && std::regex_match(l, m, load_fail)) {
      prog = m[1].str();
      continue;
    }
    if (l.find("-- BEGIN PROG LOAD LOG --") != std::string::npos) {
      in_log = vlog.empty();  // the first failing program's log only
      continue;
    }
    if (l.find("-- END PROG LOAD LOG --") != std::string::npos) {
      in_log = false;
      continue;
    }
    if (in_log) vlog.push_back(l);
  }
  if (!prog.empty()) {
    std::string msg = "cannot load the BPF program '" + prog + "'" + where + ": ";
    std::string log_text;
    for (const auto& l : vlog) log_text += l + "\n";
    static const std::regex unknown_helper(
        R"((unknown func|invalid func|program of this type cannot use helper) ([A-Za-z_0-9]+)#(\d+))");
    std::smatch m;
    if (log_text.find(kPoisonedCall) != std::string::npos) {
      // Which field: the relocations libbpf poisoned name them.
      static const std::regex poisoned(R"(^prog '([^']+)': relo #(\d+): substituting insn)");
      std::string fields;
      for (const auto& l : lines) {
        std::smatch pm;
        if (std::regex_search(l, pm, poisoned) && pm[1].str() == prog) {
          std::string spec = spec_of(lines, prog, pm[2].str());
          if (!spec.empty() && fields.find(spec) == std::string::npos)
            fields += (fields.empty() ? "" : ", ") + spec;
        }
      }
      msg += "it reads a kernel field this kernel does not have" +
             (fields.empty() ? std::string() : " (" + fields + ")");
    } else if (std::regex_search(log_text, m, unknown_helper)) {
      msg += "this kernel lacks the BPF helper " + helper_name(m[2].str(), std::stoi(m[3].str()));
    } else {
      msg += "the kernel's verifier rejected it";
    }
    if (!vlog.empty()) {
      std::vector<std::string> shown;
      if (vlog.size() <= kVerifierHead + kVerifierTail) {
        shown = vlog;
      } else {
        shown.assign(vlog.begin(), vlog.begin() + kVerifierHead);
        shown.push_back("... (" + std::to_string(vlog.size() - kVerifierHead - kVerifierTail) +
                        " lines; --log-level=debug prints them all)");
        shown.insert(shown.end(), vlog.end() - kVerifierTail, vlog.end());
      }
      msg += "; verifier log:" + indent(shown);
    }
    return msg;
  }

  // 3. Anything else (a map the kernel refused, BTF it cannot take): the
  // last warnings libbpf printed.
  std::vector<std::string> tail;
  for (auto it = lines.rbegin(); it != lines.rend() && tail.size() < 6; ++it) tail.insert(tail.begin(), *it);
  std::string msg = "cannot load the BPF object" + where;
  if (!tail.empty()) msg += ":" + indent(tail);
  return msg;
}

}  // namespace ember
