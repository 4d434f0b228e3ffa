#!/usr/bin/env python3
"""bench/soak: `ember agent` under churn for a long time; does anything grow?

A node's agent lives for weeks while builds, shells, cron jobs and pods come
and go around it. This runs the agent (100 Hz, profiles to a scratch
directory, self-metrics on a loopback port) for SECONDS (default 3600) while:
  - a storm of short-lived processes execs STORM_RATE times a second
    (default 2000, from two storm processes; /bin/true, sh -c and env);
  - threads come and go: a process starts 8 short busy threads, joins them
    and rests 10 ms, over and over;
  - containers start and stop: runc runs a static workload for half a
    second in a new container, over and over (skipped without runc);
Every 10 s it records the agent's resident memory, open fds, threads, and
the entries of each BPF map (from its /metrics), and at the end checks:
  1. nothing grows without bound: after a warm-up (the first fifth), the
     maximum of the second half of the readings is at most the first half's
     maximum plus a slack (resident memory 10% + 4 MiB, fds +16, threads +2,
     each BPF map 10% + 256 entries);
  2. every sample is accounted for: with the churn stopped and the pipeline
     drained, samples the BPF program sent = drained from the ring + lost for
     a counted reason, and drained = profiled + unlabeled + lost for a
     counted reason (each within 0.1% or 100 samples, what can be in flight).
It prints the readings as a table and exits 1 if a check fails.

Usage (root, after scripts/build.sh): bench/soak/run.py [SECONDS]
  bench/soak/run.py       one hour
  bench/soak/run.py 60    one minute (a smoke run)
Environment: EMBER (default build/ember), STORM_RATE (default 2000).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import json
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EMBER = os.environ.get("EMBER", os.path.join(ROOT, "build", "ember"))
FIXTURES = os.path.join(ROOT, "build", "tests", "fixtures")
STORM_RATE = int(os.environ.get("STORM_RATE", "2000"))
READ_EVERY = 10.0

STORM_C = r"""
/* Execs its arguments' programs in turn, up to RATE times a second. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char** argv) {
  double rate = atof(argv[1]);
  char* progs[][4] = {{"/bin/true", 0}, {"/bin/sh", "-c", ":", 0}, {"/usr/bin/env", "true", 0}};
  unsigned long n = 0;
  double t0 = now(), last = t0;
  for (;;) {
    pid_t p = vfork();
    if (p == 0) {
      char** a = progs[n % 3];
      execv(a[0], a);
      _exit(127);
    }
    if (p > 0) waitpid(p, 0, 0);
    ++n;
    double t = now();
    if (t - last >= 10) {  /* the achieved rate, for the report */
      fprintf(stderr, "%.0f\n", n / (t - t0));
      last = t;
    }
    double ahead = n / rate - (t - t0);
    if (ahead > 0) {
      struct timespec s = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
      nanosleep(&s, 0);
    }
  }
}
"""

THREADS_C = r"""
/* Starts 8 threads that each spin ~0.1 ms, joins them, rests 10 ms,
 * repeats: hundreds of threads a second for little CPU. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
static volatile uint64_t sink;
static void* spin(void* arg) {
  uint64_t x = (uintptr_t)arg;
  for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ull + 1;
  sink = x;
  return 0;
}
int main(void) {
  for (;;) {
    pthread_t t[8];
    for (int i = 0; i < 8; ++i) pthread_create(&t[i], 0, spin, (void*)(uintptr_t)i);
    for (int i = 0; i < 8; ++i) pthread_join(t[i], 0);
    usleep(10000);
  }
}
"""


def die(msg):
    print("bench/soak: " + msg, file=sys.stderr)
    sys.exit(2)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    """{(name, labels): value} from the agent's /metrics."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def total(metrics, name, labels_like=None):
    return sum(v for (n, l), v in metrics.items() if n == name and (labels_like is None or labels_like in l))


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Containers(threading.Thread):
    """Runs a static workload in a new runc container, again and again."""

    def __init__(self, tmp):
        super().__init__(daemon=True)
        self.tmp = tmp
        self.stop = threading.Event()
        self.started = 0
        self.failed = 0

    def run(self):
        bundle = os.path.join(self.tmp, "bundle")
        os.makedirs(os.path.join(bundle, "rootfs", "tmp"))
        shutil.copy(os.path.join(FIXTURES, "jailed_workload"), os.path.join(bundle, "rootfs"))
        subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        # jailed_workload HOST_PATH SECONDS: half a second of CPU.
        spec["process"]["args"] = ["/jailed_workload", "/nonexistent", "0.5"]
        spec["root"]["readonly"] = False
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        n = 0
        while not self.stop.is_set():
            name = "ember-soak-%d-%d" % (os.getpid(), n)
            n += 1
            r = subprocess.run(["runc", "run", "--bundle", bundle, name], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            subprocess.run(["runc", "delete", "-f", name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                self.started += 1
            else:
                self.failed += 1
                time.sleep(1)


def check_growth(name, values, rel, slack):
    """After the warm-up, the second half's maximum must stay within the
    first half's maximum times (1 + rel) plus slack."""
    start = max(1, len(values) // 5)
    rest = values[start:]
    if len(rest) < 2:
        return True, "%s: too few readings" % name
    half = len(rest) // 2
    first, second = max(rest[:half]), max(rest[half:])
    bound = first * (1 + rel) + slack
    ok = second <= bound
    return ok, "%-34s first half max %12.0f, second half max %12.0f, bound %12.0f  %s" % (
        name, first, second, bound, "ok" if ok else "GROWS")


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
    if os.geteuid() != 0:
        die("run as root (the agent loads BPF)")
    for f in (EMBER, os.path.join(FIXTURES, "jailed_workload")):
        if not os.access(f, os.X_OK):
            die("%s is missing: build first (scripts/build.sh)" % f)
    tmp = tempfile.mkdtemp(prefix="ember-soak-")
    procs = []
    containers = None
    agent = None
    try:
        for name, src, flags in (("storm", STORM_C, []), ("threads", THREADS_C, ["-pthread"])):
            with open(os.path.join(tmp, name + ".c"), "w") as f:
                f.write(src)
            subprocess.run(["cc", "-O2", "-o", os.path.join(tmp, name), os.path.join(tmp, name + ".c")] + flags,
                           check=True)
        port = free_port()
        with open(os.path.join(tmp, "ember.yaml"), "w") as f:
            f.write("frequency: 100\ninterval: 10s\n"
                    "metrics:\n  listen: \"127.0.0.1:%d\"\n"
                    "output:\n  directory: %s\n  max_bytes: 256MiB\n" % (port, os.path.join(tmp, "profiles")))
        agent_log = open(os.path.join(tmp, "agent.log"), "w")
        agent = subprocess.Popen([EMBER, "agent", "--config", os.path.join(tmp, "ember.yaml")],
                                 stdout=agent_log, stderr=agent_log)
        deadline = time.time() + 30
        while True:
            try:
                scrape(port)
                break
            except Exception:
                if agent.poll() is not None or time.time() > deadline:
                    die("the agent did not start; its log:\n" + open(os.path.join(tmp, "agent.log")).read())
                time.sleep(0.2)

        procs.append(subprocess.Popen([os.path.join(tmp, "threads")]))
        storm_logs = []
        for i in range(2):
            log = open(os.path.join(tmp, "storm-%d.log" % i), "w")
            storm_logs.append(log.name)
            procs.append(subprocess.Popen([os.path.join(tmp, "storm"), str(STORM_RATE / 2)], stderr=log))
        if shutil.which("runc"):
            containers = Containers(tmp)
            containers.start()
        else:
            print("bench/soak: no runc here; containers are not part of this run")

        readings = []  # (t, rss_bytes, fds, threads, {map: entries}, metrics)
        t0 = time.time()
        print("%6s %10s %5s %7s %12s %12s %10s" % ("t (s)", "RSS (MiB)", "fds", "threads",
                                                 "BPF entries", "samples", "lost"))
        while time.time() - t0 < seconds:
            time.sleep(max(0.0, t0 + (len(readings) + 1) * READ_EVERY - time.time()))
            if agent.poll() is not None:
                die("the agent exited (%d); its log:\n%s" % (agent.returncode,
                                                           open(os.path.join(tmp, "agent.log")).read()[-4000:]))
            m = scrape(port)
            maps = {l: v for (n, l), v in m.items() if n == "ember_bpf_map_entries"}
            r = (time.time() - t0, proc_status(agent.pid, "VmRSS") * 1024, len(os.listdir("/proc/%d/fd" % agent.pid)),
                 proc_status(agent.pid, "Threads"), maps, m)
            readings.append(r)
            print("%6.0f %10.1f %5d %7d %12.0f %12.0f %10.0f" % (
                r[0], r[1] / 2**20, r[2], r[3], sum(maps.values()), total(m, "ember_bpf_samples_sent_total"),
                total(m, "ember_samples_lost_total")), flush=True)

        # Stop the churn, let the pipeline drain, then account for samples.
        if containers:
            containers.stop.set()
        for p in procs:
            p.kill()
            p.wait()
        procs = []
        if containers:
            containers.join(timeout=90)
        time.sleep(15)  # more than one interval: everything drained is aggregated
        m = scrape(port)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=120)

        ok = True
        print()
        for name, idx, rel, slack in (("resident memory (bytes)", 1, 0.10, 4 << 20), ("open fds", 2, 0.0, 16),
                                      ("threads", 3, 0.0, 2)):
            good, line = check_growth(name, [r[idx] for r in readings], rel, slack)
            ok &= good
            print(line)
        for map_name in sorted(readings[-1][4]) if readings else []:
            good, line = check_growth("BPF map " + map_name, [r[4].get(map_name, 0) for r in readings], 0.10, 256)
            ok &= good
            print(line)

        sent = total(m, "ember_bpf_samples_sent_total")
        received = total(m, "ember_samples_received_total")
        ring_lost = total(m, "ember_samples_lost_total", 'reason="ring_buffer_full"')
        processed = total(m, "ember_samples_processed_total")
        unlabeled = total(m, "ember_samples_unlabeled_total")
        queue_lost = total(m, "ember_samples_lost_total", 'reason="pipeline_queue_full"')
        malformed = total(m, "ember_records_malformed_total")
        tolerance = max(100.0, sent * 0.001)
        print()
        print("samples: %d sent by BPF, %d drained, %d lost with the ring full; %d processed, %d unlabeled, "
              "%d lost with the pipeline queue full, %d malformed records" % (
                  sent, received, ring_lost, processed, unlabeled, queue_lost, malformed))
        lost = ", ".join("%s %d" % (l, v) for (n, l), v in sorted(m.items())
                         if n == "ember_samples_lost_total" and v)
        print("lost by reason: " + (lost or "none"))
        for what, a, b in (("sent = drained + lost (ring full)", sent, received + ring_lost),
                           ("drained = processed + unlabeled + lost (queue full) + malformed", received,
                            processed + unlabeled + queue_lost + malformed)):
            good = abs(a - b) <= tolerance
            ok &= good
            print("%-70s %12d vs %12d  %s" % (what, a, b, "ok" if good else "UNACCOUNTED"))
        rates = []
        for name in storm_logs:
            lines = [l for l in open(name).read().split() if l]
            if lines:
                rates.append(float(lines[-1]))
        print()
        print("exec storm: %.0f execs/s achieved (target %d)" % (sum(rates), STORM_RATE))
        if containers:
            print("containers: %d run, %d failed" % (containers.started, containers.failed))
        print("agent CPU: %.1f s over %.0f s" % (total(m, "ember_agent_cpu_milliseconds_total") / 1000.0,
                                                 time.time() - t0))
        print("bench/soak: %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        if containers:
            containers.stop.set()
        for p in procs:
            p.kill()
        if agent and agent.poll() is None:
            agent.kill()
            agent.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
