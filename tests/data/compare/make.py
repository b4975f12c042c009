#!/usr/bin/env python3
"""Writes the small hand-made results files of tests/cli/test_compare.sh.

Each cell has 10 trials: a centre times a fixed jitter pattern (no random
numbers: the verdicts are those of the values below, checkable by hand).
Run from this directory: python3 make.py
"""
import json

MIB = 1024 * 1024
# +-3% patterns; two different ones so "same" files are not identical copies
JIT_A = [1.000, 1.012, 0.988, 1.021, 0.979, 1.005, 0.995, 1.030, 0.970, 1.008]
JIT_B = [0.992, 1.018, 1.003, 0.975, 1.026, 0.997, 1.011, 0.984, 1.007, 0.989]

MACHINE = {"hostname": "bench-vm", "cpu_model": "AMD EPYC 7B13", "arch": "x86_64",
           "pus": 2, "numa_nodes": 1, "memory_bytes": 25276026880,
           "kernel": "6.1.0-18-amd64", "gpus": []}
CALIBRATION = {"cold_read_gbps": 2.1, "warm_read_gbps": 20.5, "memcpy_gbps": 9.8,
               "memcpy_all_gbps": 15.0, "h2d_gbps": None}


def trials(wall, jitter, rss_mib, instr, outcome="ok", n=10):
    out = []
    for i in range(n):
        j = jitter[i % len(jitter)]
        w = round(wall * j, 6)
        out.append({"outcome": outcome, "message": "", "wall_s": w,
                    "phases": {"init": 0.0, "read": w, "copy": 0.0, "to_device": 0.0},
                    "baseline_rss_bytes": 8 * MIB,
                    "peak_rss_bytes": int(rss_mib * MIB) + 4096 * i,
                    "peak_anon_bytes": int(rss_mib * MIB), "peak_file_bytes": 0,
                    "peak_vram_bytes": None, "major_faults": 0, "minor_faults": 100,
                    "read_bytes": 0, "user_s": round(w * 0.3, 6), "sys_s": round(w * 0.6, 6),
                    "instructions": int(instr * (1 + (j - 1) / 30)),
                    "residency_before": 0.0, "verified": outcome == "ok"})
    return out


def cell(loader, dataset, cache, t, status="ok", reason=""):
    return {"loader": loader, "dataset": dataset, "format": "safetensors",
            "model_bytes": 64 * MIB, "cache": cache, "device": "cpu", "status": status,
            "reason": reason, "options": {}, "trials": t, "summary": {}}


def doc(cells, commit, machine=MACHINE, calibration=CALIBRATION):
    return {"schema": "ckptbench/1", "tool": {"version": "0.1.0", "commit": commit},
            "timestamp": "2026-11-26T10:00:00Z", "machine": machine,
            "calibration": calibration, "config": {"repeat": 10}, "cells": cells}


def matrix(jit, read=0.040, pickle=0.090, mmap=0.010, read_instr=50e6,
           mmap_rss=70, read_trials=10, read_outcome="ok"):
    return [
        cell("safetensors-read", "llama-64M-F16-s1", "cold",
             trials(read, jit, 80, read_instr, read_outcome, read_trials)),
        cell("pickle", "llama-64M-F16-s1", "cold", trials(pickle, jit[::-1], 150, 120e6)),
        cell("safetensors-mmap", "llama-64M-F16-s1", "warm", trials(mmap, jit, mmap_rss, 9e6)),
        cell("pickle-gpu", "llama-64M-F16-s1", "cold", [], "skipped", "no GPU visible"),
    ]


def write(name, d):
    with open(name, "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")


write("base.json", doc(matrix(JIT_A), "aaaaaaaaaaaa"))
write("head-same.json", doc(matrix(JIT_B), "bbbbbbbbbbbb"))
# safetensors-read 20% slower (instructions too), pickle 20% faster,
# safetensors-mmap's peak RSS 100 MiB higher at the same speed
write("head-slow.json", doc(matrix(JIT_B, read=0.048, pickle=0.072, read_instr=60e6,
                                   mmap_rss=170), "cccccccccccc"))
write("head-few.json", doc(matrix(JIT_B, read=0.048, read_trials=3), "dddddddddddd"))
write("head-failed.json", doc(matrix(JIT_B, read_outcome="crash"), "eeeeeeeeeeee"))
other = dict(MACHINE, cpu_model="Intel Xeon Platinum 8375C", hostname="ci-runner")
write("head-other-machine.json",
      doc(matrix(JIT_B), "ffffffffffff", other, dict(CALIBRATION, cold_read_gbps=1.0)))
disjoint = doc(matrix(JIT_B), "999999999999")
for c in disjoint["cells"]:
    c["dataset"] = "gpt2-1G-F32-s1"
write("head-disjoint.json", disjoint)
write("not-results.json", {"schema": "something/1", "cells": []})
