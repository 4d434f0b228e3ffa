// Ground truth from other tools, for tests that judge Ember against them:
// run a command and capture its output, quote a path for the shell, and ask
// llvm-symbolizer --inlining for the frames of many addresses at once.
//
// Tests only: blocking, failures show up as empty results.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace ember::reftools {

// stdout of `cmd` run by /bin/sh; its wait status in *status (-1 if it
// could not start).
inline std::string run_capture(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    if (status) *status = -1;
    return out;
  }
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status) *status = st;
  return out;
}

// `s` single-quoted for /bin/sh.
inline std::string shq(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

struct Frame {
  std::string function, file;  // "" where llvm-symbolizer says "??"
  int line = 0;
};

// llvm-symbolizer's answer for each address of `path`: frames innermost
// first, one vector per address, in order. `demangle` false passes
// --no-demangle.
inline std::vector<std::vector<Frame>> llvm_symbolize(const std::string& path,
                                                      const std::vector<uint64_t>& addrs,
                                                      bool demangle) {
  char tmpl[] = "/tmp/ember-addrs-XXXXXX";
  int fd = mkstemp(tmpl);
  std::string list;
  for (uint64_t a : addrs) {
    char b[32];
    std::snprintf(b, sizeof(b), "0x%llx\n", (unsigned long long)a);
    list += b;
  }
  EXPECT_EQ(write(fd, list.data(), list.size()), ssize_t(list.size()));
  close(fd);
  std::string out = run_capture(std::string("llvm-symbolizer --inlining ") +
                                (demangle ? "" : "--no-demangle ") + "--obj=" + shq(path) + " < " + tmpl);
  unlink(tmpl);
  // Per address: "function\nfile:line:column\n" per frame, then a blank line.
  std::vector<std::vector<Frame>> result;
  std::istringstream in(out);
  std::string name, loc;
  std::vector<Frame> cur;
  while (std::getline(in, name)) {
    if (name.empty()) {
      result.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    std::getline(in, loc);
    Frame f;
    f.function = name == "??" ? "" : name;
    size_t c2 = loc.rfind(':');
    size_t c1 = c2 == std::string::npos || c2 == 0 ? std::string::npos : loc.rfind(':', c2 - 1);
    if (c1 != std::string::npos) {
      f.file = loc.substr(0, c1);
      f.line = std::atoi(loc.substr(c1 + 1, c2 - c1 - 1).c_str());
    }
    if (f.file == "??") f.file.clear();
    cur.push_back(f);
  }
  return result;
}

}  // namespace ember::reftools
