#!/usr/bin/env bash
# ckptbench sysinfo and calibrate: the JSON documents carry the keys a
# results file promises, with sane values; the text forms read; usage errors.
. "$(dirname "$0")/lib.sh"

expect_status 0 "$CKPTBENCH" sysinfo --json --dir "$CB_TMP/not-made-yet"
"$PY" - "$CB_TMP/out" "$CB_TMP" <<'PYEOF' && pass || fail "sysinfo --json content"
import json, os, sys
m = json.load(open(sys.argv[1]))
for key in ["hostname", "cpu_model", "topology_source", "packages", "cores", "pus",
            "numa_nodes", "caches", "memory_bytes", "kernel", "os", "thp", "data_dir", "gpus"]:
    assert key in m, key
assert m["topology_source"] in ("hwloc", "sysfs")
assert m["pus"] >= m["cores"] >= m["packages"] >= 1, m
assert m["numa_nodes"] >= 1
assert m["memory_bytes"] > 64 << 20
assert m["kernel"] == os.uname().release
# The GPUs are the ones the NVIDIA driver reports (one directory each under
# /proc/driver/nvidia/gpus); where it reports some that ckptbench cannot
# list (no CUDA in this build, no NVML), gpus_note says why.
driver = "/proc/driver/nvidia/gpus"
n_driver = len(os.listdir(driver)) if os.path.isdir(driver) else 0
if n_driver == 0:
    assert m["gpus"] == [], m["gpus"]
else:
    assert len(m["gpus"]) == n_driver or (m["gpus"] == [] and m.get("gpus_note")), m
# Whether this is a VM, from the CPU's own flag, and whether it hands freed
# memory back to its host (the kernel's free page reporting order).
flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), None)
assert m["hypervisor"] == (None if flags is None else "hypervisor" in flags.split()), m["hypervisor"]
order = "/sys/module/page_reporting/parameters/page_reporting_order"
assert m["free_page_reporting_order"] == (int(open(order).read()) if os.path.exists(order) else None)
for c in m["caches"]:
    assert set(c) == {"level", "type", "size_bytes", "count"}, c
    assert c["size_bytes"] > 0 and c["count"] >= 1
d = m["data_dir"]
assert d["path"].endswith("not-made-yet")
# The directory does not exist yet: it is described by the filesystem of
# its nearest parent, as statfs sees it.
assert d["fs_type"], d
for key in ("device", "rotational", "mount_point"):
    assert key in d, key
PYEOF

expect_status 0 "$CKPTBENCH" sysinfo
grep -q "^  cpu_model " "$CB_TMP/out" && pass || fail "text form has no cpu_model line"
grep -q "^  caches " "$CB_TMP/out" && pass || fail "text form has no caches line"
expect_status 2 "$CKPTBENCH" sysinfo --bogus
expect_status 0 "$CKPTBENCH" sysinfo --help

# A small calibration: every figure measured is positive and finite; the
# GPU figure is null without a GPU the driver reports, and positive or null
# with a note where there is one; the scratch file is gone afterwards.
mkdir -p "$CB_TMP/cal"
expect_status 0 "$CKPTBENCH" calibrate --json --size 16M --dir "$CB_TMP/cal"
"$PY" - "$CB_TMP/out" <<'PYEOF' && pass || fail "calibrate --json content: $(cat "$CB_TMP/out")"
import json, math, os, sys
c = json.load(open(sys.argv[1]))
driver = "/proc/driver/nvidia/gpus"
n_driver = len(os.listdir(driver)) if os.path.isdir(driver) else 0
for key in ["cold_read_gbps", "warm_read_gbps", "memcpy_gbps", "memcpy_all_gbps"]:
    assert isinstance(c[key], float) and math.isfinite(c[key]) and c[key] > 0, key
# O_DIRECT may be refused by the filesystem; then null with a note.
d = c["cold_read_direct_gbps"]
assert (d is None and c["note"]) or (isinstance(d, float) and d > 0), c
if n_driver == 0:
    assert c["h2d_gbps"] is None, c
else:
    assert (c["h2d_gbps"] or 0) > 0 or c["note"], c
assert c["file_bytes"] == 16 << 20
# Medians of the passes, each read's fastest pass beside it.
assert c["cold_read_best_gbps"] >= c["cold_read_gbps"], c
assert c["warm_read_best_gbps"] >= c["warm_read_gbps"], c
# The classic reused-buffer reads, kept beside the ceilings.
for key in ["cold_read_reused_gbps", "warm_read_reused_gbps"]:
    assert isinstance(c[key], float) and c[key] > 0, key
PYEOF
[ -z "$(ls -A "$CB_TMP/cal")" ] && pass || fail "calibrate left files behind: $(ls -A "$CB_TMP/cal")"

CKPTBENCH_CALIBRATE_SIZE=nonsense expect_status 2 "$CKPTBENCH" calibrate --dir "$CB_TMP/cal"
expect_stderr_line "CKPTBENCH_CALIBRATE_SIZE"
expect_status 2 "$CKPTBENCH" calibrate --size 0
expect_status 0 "$CKPTBENCH" calibrate --help
finish
