#!/usr/bin/env python3
"""Layers point one way: fails if a folder includes a folder above it.

The order, bottom first. A folder may include only folders listed before it
(and itself). Run by ctest (unit label) and by hand: scripts/check_layers.py
"""
import os
import re
import sys

LAYERS = [
    "common",
    "symbolizer",
    "k8s",
    "agent/model",       # the values between stages and the stage interfaces
    "agent/config",      # parsed once, at the edge, into typed values
    "agent/process",
    "agent/frames",      # frame origins: handler interfaces and registry
    "agent/unwind",
    "agent/runtimes",    # one folder of handlers per origin
    "agent/symbolize",
    "agent/label",
    "agent/aggregate",
    "agent/export",
    "agent/analyze",     # profiles read back from files: report, diff
    "agent/pipeline",    # the threads that run the stages
    "agent/sampler",     # BPF
    "agent/cli",
]


def folder_of(path):
    parts = path.split("/")
    if parts[0] == "agent" and len(parts) > 2:
        return "agent/" + parts[1]
    return parts[0]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for top in ("common", "symbolizer", "k8s", "agent"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if not f.endswith((".h", ".cc")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, f), root)
                src = folder_of(path)
                if src not in rank:
                    bad.append(f"{path}: folder {src} is not in scripts/check_layers.py's LAYERS")
                    continue
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        m = re.match(r'\s*#include "([^"]+)"', line)
                        if not m or "/" not in m.group(1):
                            continue
                        dst = folder_of(m.group(1))
                        if dst in rank and rank[dst] > rank[src]:
                            bad.append(f"{path}:{n}: {src} includes {m.group(1)} from {dst}, a layer above it")
    for b in bad:
        print(b)
    if bad:
        return 1
    print(f"layers: {len(LAYERS)} folders, every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
