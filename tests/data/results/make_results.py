#!/usr/bin/python3
"""Writes the hand-made results files the plot and report tests read.

They follow docs/results-schema.md (schema ckptbench/1) and stand for runs on a small
2-core machine: figures are invented but shaped like real ones (pickle
peaks at about 2x the model, safetensors-read at 1x, safetensors-mmap holds
file-backed pages, not anonymous ones). Deterministic: run it again and the
files come out byte for byte the same.

    /usr/bin/python3 tests/data/results/make_results.py tests/data/results

cpu-cold.json and cpu-warm.json are one machine's two runs (--cache cold with
--timeline, then --cache warm); gpu.json is a GPU machine's run.
"""
import json
import os
import random
import statistics
import sys

MIB = 1 << 20
CAL = {"cold_read_gbps": 2.1, "warm_read_gbps": 20.5, "memcpy_gbps": 9.8,
       "memcpy_all_gbps": 15.0, "h2d_gbps": None}
MACHINE = {"hostname": "bench-vm", "cpu_model": "AMD EPYC 7B13", "arch": "x86_64",
           "topology_source": "hwloc", "packages": 1, "cores": 2, "pus": 2,
           "numa_nodes": 1, "memory_bytes": 25276026880,
           "kernel": "6.1.0-18-amd64", "os": "Debian GNU/Linux 12 (bookworm)",
           "thp": "madvise",
           "data_dir": {"path": "datasets/data", "fs_type": "ext4", "device": "vda",
                        "rotational": False},
           "gpus": []}

# loader -> (format, seconds per GB cold, per GB warm, anon x, file x, vram x)
CPU = {
    "safetensors-read": ("safetensors", 0.52, 0.16, 1.01, 0.0, None),
    "safetensors-mmap": ("safetensors", 0.50, 0.11, 0.0, 1.0, None),
    "pickle": ("pytorch", 0.61, 0.29, 2.03, 0.0, None),
    "torch-load": ("pytorch", 0.66, 0.33, 2.06, 0.0, None),
}
GPU = {
    "safetensors-gpu": ("safetensors", 0.55, 0.09, 0.02, 0.0, 1.0),
    "safetensors-gpu-naive": ("safetensors", 0.70, 0.21, 0.0, 1.0, 1.0),
    "pickle-gpu": ("pytorch", 0.80, 0.40, 2.02, 0.0, 1.0),
}
BASE_RSS = 9 * MIB
TRIALS = 6


def ci95(times):
    # Under 6 trials no pair of order statistics reaches 95%: [min, max]
    # (stats.h), flagged by ci95_is_range.
    return [min(times), max(times)]


def timeline(rng, model, secs, anon_x, file_x, vram_x, phases):
    n = 40
    t_s, anon, filed, vram = [], [], [], []
    for i in range(n + 1):
        t = secs * 1.15 * i / n
        f = min(1.0, t / secs)
        # pickle-like loaders: the model is allocated first (1x), the
        # storages read next (up to 2x), then the read copies are freed.
        if anon_x > 1.5:
            a = (min(1.0, f * 4) + min(1.0, max(0.0, f - 0.25) / 0.6)) * model
            if f >= 1.0:
                a = 1.0 * model
        else:
            a = anon_x * f * model
        anon.append(int(BASE_RSS + a + rng.randint(0, 64) * 4096))
        filed.append(int(2 * MIB + file_x * f * model))
        vram.append(int(vram_x * f * model) if vram_x is not None else None)
        t_s.append(round(t, 4))
    ph = [{"name": name, "start_s": round(a * secs, 4), "end_s": round(b * secs, 4)}
          for name, a, b in phases]
    return {"t_s": t_s, "anon_bytes": anon, "file_bytes": filed,
            "vram_bytes": vram if vram_x is not None else None, "phases": ph}


def phases_of(loader):
    if loader.startswith("pickle") or loader == "torch-load":
        return [("init", 0.0, 0.25), ("read", 0.25, 0.85), ("copy", 0.85, 1.0)]
    if loader.endswith("gpu") or loader.endswith("naive"):
        return [("init", 0.0, 0.05), ("read", 0.05, 0.6), ("to_device", 0.6, 1.0)]
    return [("init", 0.0, 0.05), ("read", 0.05, 1.0)]


def cell(rng, loader, spec, size_mib, cache, device, with_timeline):
    fmt, cold, warm, anon_x, file_x, vram_x = spec
    model = size_mib * MIB
    per_gb = cold if cache == "cold" else warm
    secs = model / 1e9 * per_gb + 0.004
    trials = []
    for i in range(TRIALS):
        wall = round(secs * (1 + rng.uniform(-0.04, 0.06)), 5)
        t = {"outcome": "ok", "message": "", "wall_s": wall,
             "phases": {"init": round(wall * 0.05, 5), "read": round(wall * 0.8, 5),
                        "copy": round(wall * 0.15, 5), "to_device": 0.0},
             "baseline_rss_bytes": BASE_RSS + 2 * MIB, "baseline_anon_bytes": BASE_RSS,
             "baseline_file_bytes": 2 * MIB,
             "peak_anon_bytes": int(BASE_RSS + anon_x * model * (1 + rng.uniform(0, 0.004))),
             "peak_file_bytes": int(2 * MIB + file_x * model),
             "peak_vram_bytes": int(vram_x * model * 1.003) if vram_x is not None else None,
             "major_faults": 0, "minor_faults": int(model / 4096 * (anon_x + file_x)),
             "read_bytes": model if cache == "cold" else 0,
             "user_s": round(wall * 0.2, 4), "sys_s": round(wall * 0.6, 4),
             "residency_before": 0.0 if cache == "cold" else 1.0, "verified": True}
        t["peak_rss_bytes"] = t["peak_anon_bytes"] + t["peak_file_bytes"]
        if with_timeline and i == 0:
            t["timeline"] = timeline(rng, model, wall, anon_x, file_x, vram_x,
                                     phases_of(loader))
        trials.append(t)
    times = [t["wall_s"] for t in trials]
    med = round(statistics.median(times), 6)

    def ratio(peak, base):
        return round(statistics.median((t[peak] - t[base]) / model for t in trials), 4)

    gbps = model / med / 1e9
    ceiling = "warm_read_gbps" if cache == "warm" else "cold_read_gbps"
    summary = {"n": TRIALS, "median_s": med, "min_s": min(times), "max_s": max(times),
               "mean_s": round(statistics.mean(times), 6),
               "stddev_s": round(statistics.stdev(times), 6),
               "mad_s": round(statistics.median(abs(x - med) for x in times), 6),
               "ci95_s": ci95(times), "ci95_is_range": TRIALS < 6,
               "gbps": round(gbps, 4), "ceiling": ceiling,
               "ceiling_fraction": round(gbps / CAL[ceiling], 4),
               "peak_rss_over_model": ratio("peak_rss_bytes", "baseline_rss_bytes"),
               "peak_anon_over_model": ratio("peak_anon_bytes", "baseline_anon_bytes"),
               "peak_file_over_model": ratio("peak_file_bytes", "baseline_file_bytes"),
               "peak_vram_over_model": (round(statistics.median(t["peak_vram_bytes"] / model
                                                                for t in trials), 4)
                                        if vram_x is not None else None),
               "outliers": []}
    return {"loader": loader, "dataset": "llama-%dM-F16-s1" % size_mib, "format": fmt,
            "model_bytes": model, "cache": cache, "device": device, "status": "ok",
            "reason": "", "options": {}, "trials": trials, "summary": summary}


def failed(c, outcome, message):
    for t in c["trials"]:
        t.update({"outcome": outcome, "message": message, "wall_s": None, "verified": False})
        t.pop("timeline", None)
    c["status"] = "failed"
    c["reason"] = "%s: %s" % (outcome, message)
    c["summary"] = {"n": 0, "median_s": None, "ci95_s": None, "gbps": None,
                    "ceiling": c["summary"]["ceiling"], "ceiling_fraction": None,
                    "peak_rss_over_model": None, "peak_anon_over_model": None,
                    "peak_file_over_model": None, "peak_vram_over_model": None}
    return c


def skipped(loader, fmt, size_mib, cache, device, reason):
    return {"loader": loader, "dataset": "llama-%dM-F16-s1" % size_mib, "format": fmt,
            "model_bytes": size_mib * MIB, "cache": cache, "device": device,
            "status": "skipped", "reason": reason, "options": {}, "trials": []}


def document(cells, timestamp, machine, cal, config):
    return {"schema": "ckptbench/1", "tool": {"version": "0.1.0", "commit": "0123456789ab"},
            "timestamp": timestamp, "machine": machine, "calibration": cal,
            "config": config, "cells": cells}


def cpu_run(rng, cache):
    cells = []
    for size in (64, 256, 1024):
        if True:
            for loader, spec in CPU.items():
                if loader == "torch-load" and size == 1024:
                    cells.append(skipped(loader, spec[0], size, cache, "cpu",
                                         "needs 2x the model (2.0 GiB) in memory, over "
                                         "--mem-limit 1.5G"))
                    continue
                c = cell(rng, loader, spec, size, cache, "cpu",
                         size == 256 and cache == "cold")
                if loader == "pickle" and size == 1024 and cache == "warm":
                    c = failed(c, "oom", "killed by the kernel's OOM killer at 1.9 GiB RSS")
                cells.append(c)
    stamp = "2026-11-26T10:00:00Z" if cache == "cold" else "2026-11-26T10:20:00Z"
    return document(cells, stamp, MACHINE, CAL,
                    {"repeat": TRIALS, "warmup": 1, "cache": [cache],
                     "timeline": cache == "cold", "device": "cpu"})


def gpu_run(rng):
    """Two sizes, cold and warm: the VRAM figures and the H2D ceiling."""
    machine = dict(MACHINE, gpus=[{"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85045870592}])
    cal = dict(CAL, h2d_gbps=24.6)
    cells = []
    for size in (256, 1024):
        for cache in ("cold", "warm"):
            for loader, spec in GPU.items():
                cells.append(cell(rng, loader, spec, size, cache, "cuda:0",
                                  size == 1024 and cache == "warm"))
    return document(cells, "2026-11-27T09:30:00Z", machine, cal,
                    {"repeat": TRIALS, "warmup": 1, "timeline": True, "device": "cuda:0"})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__)
    docs = (("cpu-cold.json", cpu_run(random.Random(8), "cold")),
            ("cpu-warm.json", cpu_run(random.Random(7), "warm")),
            ("gpu.json", gpu_run(random.Random(9))))
    for name, doc in docs:
        with open(os.path.join(out, name), "w") as f:
            json.dump(doc, f, indent=None, separators=(",", ":"))
            f.write("\n")


main()
