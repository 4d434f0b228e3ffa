#!/usr/bin/env python3
"""Runs the test suite N times and reports how close each test comes to failing.

  scripts/flake_report.py [-n N] [--build DIR] [--log-dir DIR] [-- CTEST_ARGS...]
  scripts/flake_report.py --parse LOG_DIR     (summarize the logs of an earlier run)
  scripts/flake_report.py ... --digest FILE   (also write the runs' figures and failures as JSON)
  scripts/flake_report.py --merge FILE...     (one report over digests, e.g. of one commit's
                                               runs made in several sessions)

Each run is `ctest --test-dir build -V CTEST_ARGS` (default: the whole suite;
e.g. `-- -L e2e` for the end-to-end tests only, `-- -LE kernels` for all but
the kernel matrix). Tests print every figure they assert on as
`[ figure ] Suite.Test name=value` (tests/e2e/e2e_util.h, report_figure); this
prints, for each test and figure, its minimum and maximum over the runs, and
for each test how many runs it failed. The exit code is 1 if any test failed
in any run.

Run as root (the end-to-end tests load BPF), after scripts/build.sh.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

FIGURE = re.compile(r"\[ figure \] (\S+) (\S+)=(\S+)")
# "12/457 Test #12: Suite.Name ......   Passed    0.01 sec"; parameterized
# names carry spaces ("Suite/Test.Case/Name  # GetParam() = ...").
RESULT = re.compile(r"^\s*\d+/\d+ Test\s+#\d+: (.+?)\s+\.{3,}\s*"
                    r"(\*\*\*Failed|Failed|Passed|\*\*\*Timeout|Timeout|\*\*\*Exception.*|Not Run|\*\*\*Skipped|Skipped)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20, help="runs (default 20)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--log-dir", help="keep each run's output here")
    ap.add_argument("--parse", metavar="LOG_DIR", help="summarize the run-*.log files of an earlier --log-dir")
    ap.add_argument("--digest", metavar="FILE", help="write the runs' durations, figures and failures as JSON")
    ap.add_argument("--merge", metavar="FILE", nargs="+", help="report over digests written by --digest")
    ap.add_argument("--commit", help="the commit the runs tested, for the digest (default: HEAD)")
    ap.add_argument("ctest_args", nargs="*")
    args = ap.parse_args()

    figures = collections.defaultdict(list)  # (test, figure) -> values
    failures = collections.Counter()
    ran = collections.Counter()
    durations = []
    if args.merge:
        for path in args.merge:
            with open(path) as f:
                d = json.load(f)
            for key, values in d["figures"].items():
                test, name = key.split(" ", 1)
                figures[(test, name)].extend(values)
            ran.update(d["ran"])
            failures.update(d["failures"])
            durations.extend(r["duration"] for r in d["runs"])
            for r in d["runs"]:
                print(f"{path} ({d['commit'][:12]}): {r['tests']} tests, {len(r['failed'])} failed"
                      f"{': ' + ', '.join(r['failed']) if r['failed'] else ''} ({r['duration']:.0f} s)")
        return report(len(durations), durations, figures, failures, ran, args.ctest_args)
    run_records = []
    logs = sorted(os.path.join(args.parse, f) for f in os.listdir(args.parse)
                  if f.startswith("run-")) if args.parse else []
    runs = len(logs) if args.parse else args.n
    for i in range(1, runs + 1):
        start = time.time()
        if args.parse:
            with open(logs[i - 1], errors="replace") as f:
                output = f.read()
        else:
            p = subprocess.run(["ctest", "--test-dir", args.build, "-V", "--timeout", "900"] + args.ctest_args,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
            output = p.stdout
            if args.log_dir:
                os.makedirs(args.log_dir, exist_ok=True)
                with open(os.path.join(args.log_dir, f"run-{i:02d}.log"), "w") as f:
                    f.write(output)
        m = re.search(r"Total Test time \(real\) = +([\d.]+) sec", output)
        durations.append(float(m.group(1)) if m else time.time() - start)
        seen_now = set()
        failed_now = []
        for line in output.splitlines():
            m = FIGURE.search(line)
            if m:
                try:
                    figures[(m.group(1), m.group(2))].append(float(m.group(3)))
                except ValueError:
                    pass
                continue
            m = RESULT.match(line)
            if m:
                seen_now.add(m.group(1))
                ran[m.group(1)] += 1
                if "Failed" in m.group(2) or "Timeout" in m.group(2) or "Exception" in m.group(2):
                    failures[m.group(1)] += 1
                    failed_now.append(m.group(1))
        print(f"run {i}/{runs}: {len(seen_now)} tests, {len(failed_now)} failed"
              f"{': ' + ', '.join(failed_now) if failed_now else ''} ({durations[-1]:.0f} s)", flush=True)
        run_records.append({"duration": durations[-1], "tests": len(seen_now), "failed": failed_now})

    if args.digest:
        commit = args.commit or subprocess.run(["git", "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                                               text=True).stdout.strip()
        with open(args.digest, "w") as f:
            json.dump({"commit": commit, "ctest_args": args.ctest_args, "runs": run_records,
                       "figures": {f"{t} {n}": v for (t, n), v in sorted(figures.items())},
                       "ran": dict(ran), "failures": dict(failures)}, f, indent=1)
            f.write("\n")
    return report(runs, durations, figures, failures, ran, args.ctest_args)


def report(runs, durations, figures, failures, ran, ctest_args):
    print(f"\n{runs} runs of ctest {' '.join(ctest_args) or '(whole suite)'}, "
          f"median {sorted(durations)[len(durations) // 2]:.0f} s each")
    print(f"\n{'test':70} {'figure':34} {'min':>10} {'max':>10} {'runs':>5}")
    for (test, name), values in sorted(figures.items()):
        print(f"{test:70} {name:34} {min(values):10.4g} {max(values):10.4g} {len(values):5d}")
    if failures:
        print("\nfailures:")
        for test, n in failures.most_common():
            print(f"  {test}: failed {n} of {ran[test]} runs")
        return 1
    print(f"\nno test failed in {runs} runs ({len(ran)} tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
