// bench/demangle: Ember's Rust demangler against the two libraries that could
// replace it, LLVM's (libLLVMDemangle, llvm::rustDemangle) and GNU libiberty's
// (cplus_demangle with DMGL_RUST), on the same inputs:
//   1. the v0 hand vectors of tests/unit/demangle_test.cc (the specification):
//      how many each library gets right, and what it prints where it does not;
//   2. hostile symbols: the malformed inputs of the same test, and chains of
//      type backreferences that double the output at every level (the input
//      a tenant can put in a binary's symbol table). Each library runs in a
//      child process with a 4 GiB address-space limit and a 20 s alarm, so a
//      hang, an abort or an out-of-memory is reported instead of stopping the
//      bench;
//   3. speed on the hand vectors (ns per symbol).
// Built and run by bench/demangle/run.sh, not by the project's build: neither
// library is a dependency of Ember.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <llvm/Demangle/Demangle.h>

#include "symbolizer/demangle.h"

// libiberty.h declares basename() in a way that clashes with glibc's C++ one.
#define HAVE_DECL_BASENAME 1
extern "C" {
#include <libiberty/demangle.h>
}

namespace {

constexpr const char* kRefused = "(refused)";
volatile size_t sink = 0;

std::string with_ember(const std::string& s) {
  std::string r = ember::demangle(s);
  return r == s ? kRefused : r;
}

std::string with_llvm(const std::string& s) {
  int status = 0;
  char* r = llvm::rustDemangle(s.c_str(), nullptr, nullptr, &status);
  std::string out = r && status == 0 ? std::string(r) : kRefused;
  std::free(r);
  return out;
}

std::string with_libiberty(const std::string& s) {
  char* r = cplus_demangle(s.c_str(), DMGL_RUST);
  std::string out = r ? std::string(r) : kRefused;
  std::free(r);
  return out;
}

struct Demangler {
  const char* name;
  std::function<std::string(const std::string&)> run;
};

// Runs one demangler on one input in a child: returns "refused in 0.015 s",
// "12582870 B in 0.113 s", "killed by SIGABRT after 3.2 s", ...
std::string guarded(const Demangler& d, const std::string& input) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    rlimit as{4ull << 30, 4ull << 30};
    setrlimit(RLIMIT_AS, &as);
    alarm(20);
    std::string r = d.run(input);
    dprintf(fds[1], "%s", r == kRefused ? "refused" : (std::to_string(r.size()) + " B").c_str());
    _exit(0);
  }
  close(fds[1]);
  char buf[64] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  int ws = 0;
  waitpid(pid, &ws, 0);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[160];
  if (WIFSIGNALED(ws)) {
    int sig = WTERMSIG(ws);
    snprintf(line, sizeof line, "%s after %.1f s", sig == SIGALRM ? "still running (20 s alarm)" : strsignal(sig), secs);
  } else {
    snprintf(line, sizeof line, "%s in %.3f s", n > 0 ? buf : "nothing", secs);
  }
  return line;
}

// base-62 number as v0 backrefs spell it ("_" is 0, "0_" is 1, ...).
std::string base62(size_t n) {
  if (n == 0) return "_";
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string s;
  for (--n;; n /= 62) {
    s.insert(s.begin(), kDigits[n % 62]);
    if (n < 62) break;
  }
  return s + "_";
}

// a::f::<u8, (u8, u8), ((u8, u8), (u8, u8)), ...>: each generic argument is a
// tuple of two backreferences to the previous one, so `levels` levels cost
// about 10 bytes each and print about 2^(levels+2) bytes.
std::string doubling(int levels) {
  std::string s = "INvC1a1f";
  size_t prev = s.size();
  s += "h";
  for (int i = 0; i < levels; ++i) {
    size_t at = s.size();
    s += "TB" + base62(prev) + "B" + base62(prev) + "E";
    prev = at;
  }
  return "_R" + s + "E";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASES.tsv   (mangled<TAB>expected per line)\n", argv[0]);
    return 2;
  }
  std::vector<Demangler> demanglers = {
      {"ember", with_ember}, {"llvm14", with_llvm}, {"libiberty", with_libiberty}};

  std::vector<std::pair<std::string, std::string>> cases;
  std::ifstream in(argv[1]);
  for (std::string line; std::getline(in, line);) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) cases.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }

  printf("== v0 hand vectors (tests/unit/demangle_test.cc): right answers\n");
  std::vector<int> right(demanglers.size());
  for (const auto& [mangled, want] : cases) {
    std::string wrong;
    for (size_t i = 0; i < demanglers.size(); ++i) {
      std::string got = demanglers[i].run(mangled);
      if (got == want) {
        ++right[i];
      } else {
        wrong += "    " + std::string(demanglers[i].name) + ": " + got + "\n";
      }
    }
    if (!wrong.empty()) printf("  %s\n    want: %s\n%s", mangled.c_str(), want.c_str(), wrong.c_str());
  }
  for (size_t i = 0; i < demanglers.size(); ++i)
    printf("  %-10s %d of %zu\n", demanglers[i].name, right[i], cases.size());

  printf("\n== hostile symbols (child process, 4 GiB address space, 20 s alarm)\n");
  std::string deep = "_R";
  for (int i = 0; i < 600; ++i) deep += "Nv";
  deep += "C1a";
  for (int i = 0; i < 600; ++i) deep += "1f";
  std::vector<std::pair<std::string, std::string>> hostile = {
      {"_RYFG_FGyyEvRYFF_EvRYFFEvERLB_B_B_ERLRjB_B_B_", "nested fn-pointer backrefs"},
      {"_RMC0FGZZZ_Eu", "binder of 2^36 lifetimes"},
      {"_RNvB_1a", "path backref to itself"},
      {deep, "600 nested paths"},
  };
  for (int levels : {10, 20, 24, 28, 32}) hostile.emplace_back(doubling(levels), "doubling backrefs x" + std::to_string(levels));
  for (const auto& [input, what] : hostile) {
    printf("  %s (%zu B input)\n", what.c_str(), input.size());
    for (const auto& d : demanglers) printf("    %-10s %s\n", d.name, guarded(d, input).c_str());
  }

  printf("\n== speed on the hand vectors (median of 5 passes of 2,000 rounds)\n");
  for (const auto& d : demanglers) {
    std::vector<double> passes;
    for (int pass = 0; pass < 5; ++pass) {
      auto start = std::chrono::steady_clock::now();
      size_t bytes = 0;
      for (int round = 0; round < 2000; ++round)
        for (const auto& c : cases) bytes += d.run(c.first).size();
      double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
      sink += bytes;  // keeps the calls
      passes.push_back(ns / (2000.0 * cases.size()));
    }
    std::sort(passes.begin(), passes.end());
    printf("  %-10s %.0f ns/symbol\n", d.name, passes[passes.size() / 2]);
  }
  return 0;
}
