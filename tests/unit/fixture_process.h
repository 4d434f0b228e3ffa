// FixtureProcess: runs one of the symbolizer fixtures (tests/fixtures/
// symbols_main.c), collects the function addresses it prints, and keeps it
// alive until destroyed, so tests can read its /proc/PID entries.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

namespace ember::testing {

class FixtureProcess {
 public:
  explicit FixtureProcess(const std::string& path) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      execl(path.c_str(), path.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    FILE* f = fdopen(out[0], "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
      if (std::strncmp(line, "ready", 5) == 0) {
        ready_ = true;
        break;
      }
      char name[256];
      unsigned long addr;
      if (std::sscanf(line, "%255s %lx", name, &addr) == 2) addresses_[name] = addr;
    }
    out_ = f;
  }
  ~FixtureProcess() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    if (out_) fclose(out_);
  }
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  const std::map<std::string, uint64_t>& addresses() const { return addresses_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  FILE* out_ = nullptr;
  bool ready_ = false;
  std::map<std::string, uint64_t> addresses_;
};

}  // namespace ember::testing
