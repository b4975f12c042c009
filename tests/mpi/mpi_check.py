#!/usr/bin/python3
"""Checks for tests/mpi/test_mpi.sh: a results file of `run --mpi` against
what docs/mpi.md and docs/results-schema.md promise.

usage: mpi_check.py PART FILE [ARGS]
  replicate FILE RANKS    every trial ok and verified on every rank, each
                          rank's bytes the model's (RANKS x the model in all)
  files FILE RANKS        every trial ok; the ranks' bytes add up to the model
  tp FILE RANKS           every trial ok; the ranks' bytes add up to the model
                          and at most 5% more (replicated tensors, on each rank)
  memory FILE             the node's figures against the ranks' own (see below)
  groups FILE GROUPS      GROUPS nodes, each with its leader's figures
  crash FILE              test-crash recorded as a crash, the other cell ok
  lost FILE RANK          a valid file, interrupted, ranks_error naming RANK
  ranks FILE RANKS        a run of RANKS ranks (run --ranks)
Exits 1 with the reason on the first failed check.
"""
import json
import os
import sys

TRIAL_AGG = ["aggregate_gbps", "effective_gbps", "first_done_s", "last_done_s",
             "start_skew_s", "spawn_skew_s", "node_anon_over_model", "node_file_over_model",
             "node_memavailable_drop_over_model"]
PER_RANK = ["rank", "host", "local_rank", "node", "device", "outcome", "bytes", "wall_s",
            "gbps", "spawn_s", "start_s", "end_s", "peak_anon_bytes", "peak_file_bytes",
            "major_faults", "peak_vram_bytes", "residency_before"]
SUMMARY = ["aggregate_gbps", "effective_gbps", "first_done_s", "last_done_s", "start_skew_s",
           "node_anon_over_model", "node_file_over_model", "node_memavailable_drop_over_model"]


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: not a valid results file: {e}")


def ran_cells(doc):
    return [c for c in doc["cells"] if c["status"] != "skipped"]


def check_shape(doc, ranks):
    """Every cell has its ranks object; every trial its per-rank rows and
    aggregates; every summary the rank figures."""
    if doc["config"].get("ranks", {}).get("n") != ranks:
        fail(f"config.ranks.n is not {ranks}: {doc['config'].get('ranks')}")
    for c in doc["cells"]:
        r = c.get("ranks")
        if not isinstance(r, dict) or r.get("n") != ranks:
            fail(f"{c['loader']} {c['cache']}: cells[].ranks.n is not {ranks}: {r}")
        for k in ("nodes", "dist", "per_rank"):
            if k not in r:
                fail(f"{c['loader']}: cells[].ranks has no {k}")
        for k in SUMMARY:
            if k not in c["summary"]:
                fail(f"{c['loader']}: summary has no {k}")
        for t in c["trials"] + c["warmup"]:
            rows = t.get("ranks", {}).get("per_rank")
            if not isinstance(rows, list) or len(rows) != ranks:
                fail(f"{c['loader']}: a trial's ranks.per_rank has not {ranks} rows")
            for row in rows:
                for k in PER_RANK:
                    if k not in row:
                        fail(f"{c['loader']}: a per-rank row has no {k}")
            for k in TRIAL_AGG:
                if k not in t:
                    fail(f"{c['loader']}: a trial has no {k}")


def check_all_ok(doc, bytes_of):
    for c in ran_cells(doc):
        model = c["model_bytes"]
        for t in c["trials"] + c["warmup"]:
            if t["outcome"] != "ok" or not t["verified"]:
                fail(f"{c['loader']} {c['cache']}: trial {t['outcome']}: {t['message']}")
            rows = t["ranks"]["per_rank"]
            for row in rows:
                if row["outcome"] != "ok":
                    fail(f"{c['loader']}: rank {row['rank']} {row['outcome']}")
            total = sum(row["bytes"] for row in rows)
            lo, hi = bytes_of(model, len(rows))
            if not lo - 1e-9 * lo <= total <= hi + 1e-9 * hi:
                fail(f"{c['loader']} {c['cache']}: the ranks loaded {total} bytes, "
                     f"want {lo} to {hi}")
            for k in ("aggregate_gbps", "effective_gbps", "last_done_s", "start_skew_s"):
                if not isinstance(t[k], (int, float)) or t[k] < 0:
                    fail(f"{c['loader']}: {k} is {t[k]}")
            if t["first_done_s"] > t["last_done_s"]:
                fail(f"{c['loader']}: first_done_s after last_done_s")
            agg = total / t["last_done_s"] / 1e9
            if abs(agg - t["aggregate_gbps"]) > 1e-6 * agg:
                fail(f"{c['loader']}: aggregate_gbps {t['aggregate_gbps']}, want {agg}")


def near(a, b, tol=0.05):
    return abs(a - b) <= tol * max(a, b)


def check_memory(doc):
    """The node's sampled figures against the ranks' own, for two quantities
    that are really the same thing:
    - anonymous memory: test-hog allocates 48 MiB and holds it until the
      timeout kills it, so every rank's child holds its peak at once, for
      seconds; the node's peak of the sum of its children's RssAnon
      (sampled by the leader) must be the sum of the ranks' peaks (sampled
      by each rank's own sampler);
    - file pages: test-mapfile maps the whole file and touches every page,
      warm; the page cache's residency of the files (cachestat or mincore,
      by the leader) must be what one child has mapped (its RssFile peak
      less its baseline: the binary's own mapped pages)."""
    cells = {c["loader"].split(":")[0]: c for c in doc["cells"]}
    hog = cells["test-hog"]["trials"][0]
    if hog["outcome"] != "timeout":
        fail(f"test-hog: outcome {hog['outcome']}, want timeout")
    node = hog["ranks"]["nodes"][0]["peak_anon_bytes"]
    ranks = sum(r["peak_anon_bytes"] for r in hog["ranks"]["per_rank"])
    if not near(node, ranks):
        fail(f"node anon {node} vs the ranks' sum {ranks}: more than 5% apart")
    mapc = cells["test-mapfile"]
    t = mapc["trials"][0]
    if t["outcome"] != "ok":
        fail(f"test-mapfile: {t['outcome']} {t['message']}")
    node_file = t["ranks"]["nodes"][0]["peak_file_bytes"]
    one = t["peak_file_bytes"] - t["baseline_file_bytes"]
    if not near(node_file, one):
        fail(f"node file pages {node_file} vs one rank's mapped {one}: more than 5% apart")
    if not near(t["node_file_over_model"], node_file / mapc["model_bytes"], 1e-6):
        fail("node_file_over_model is not the node's file peak over the model")
    print(f"node anon {node} = ranks {ranks}; node file {node_file} ~ rank {one}")


def check_schema(doc, label):
    """The file against docs/results-schema.md, by tests/test_schema.py's
    own reading of it: every key written documented, every key documented
    always written."""
    source = os.environ.get("CKPTBENCH_SOURCE") or \
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.join(source, "tests"))
    import test_schema
    results, compare, _ = test_schema.parse_doc(os.path.join(source, "docs",
                                                             "results-schema.md"))
    report = test_schema.Report()
    for problem in results.finish() + compare.finish():
        report.fail(problem)
    test_schema.check_doc(doc, results, label, report, True)
    if report.failures:
        fail("; ".join(report.failures.keys()))


def main():
    part, path = sys.argv[1], sys.argv[2]
    doc = load(path)
    if part in ("replicate", "files", "tp"):
        ranks = int(sys.argv[3])
        check_shape(doc, ranks)
        check_schema(doc, path)
        if part == "replicate":
            check_all_ok(doc, lambda model, n: (n * model, n * model))
        elif part == "files":
            check_all_ok(doc, lambda model, n: (model, model))
        else:  # tp: the split weights once, the replicated tensors (norms) on every rank
            check_all_ok(doc, lambda model, n: (model, 1.05 * model))
        if not ran_cells(doc):
            fail("no cell ran")
    elif part == "memory":
        check_shape(doc, 4)
        check_memory(doc)
    elif part == "groups":
        groups = int(sys.argv[3])
        for c in ran_cells(doc):
            if c["ranks"]["nodes"] != groups:
                fail(f"cells[].ranks.nodes is {c['ranks']['nodes']}, want {groups}")
            for t in c["trials"]:
                nodes = t["ranks"]["nodes"]
                if sorted(n["node"] for n in nodes) != list(range(groups)):
                    fail(f"the trial's nodes: {nodes}")
                leaders = sorted(n["leader_rank"] for n in nodes)
                rows = t["ranks"]["per_rank"]
                want = sorted(r["rank"] for r in rows if r["local_rank"] == 0)
                if leaders != want or len(want) != groups:
                    fail(f"leaders {leaders}, local rank 0 of {want}")
                if any(n["prepared_files"] < 1 for n in nodes):
                    fail(f"a leader prepared no file: {nodes}")
    elif part == "crash":
        cells = {c["loader"]: c for c in doc["cells"]}
        t = cells["test-crash"]["trials"][0]
        if t["outcome"] != "crash" or "rank " not in t["message"]:
            fail(f"test-crash: {t['outcome']}: {t['message']}")
        if any(r["outcome"] != "crash" for r in t["ranks"]["per_rank"]):
            fail("a rank of test-crash did not crash")
        if cells["safetensors-read"]["status"] != "ok":
            fail("the cell after the crash did not run")
    elif part == "lost":
        rank = sys.argv[3]
        if doc.get("interrupted") is not True:
            fail("the file is not marked interrupted")
        if f"rank {rank} " not in doc.get("ranks_error", ""):
            fail(f"ranks_error does not name rank {rank}: {doc.get('ranks_error')}")
    elif part == "ranks":
        check_shape(doc, int(sys.argv[3]))
        check_all_ok(doc, lambda model, n: (n * model, n * model))
    else:
        fail(f"unknown part {part}")


if __name__ == "__main__":
    main()
