#!/bin/bash
# Partial loads through `ckptbench run` (docs/partial-loads.md): every loader
# that can load a part loads each rank's slice verified (gpt2's vocabulary
# split unevenly, as vLLM pads it), a cold row-split load's bytes read are
# measured from the trial (and agree with the page cache's growth), the
# whole-file loaders read the whole file, and every bad selection or split
# is one line and exit 2.
. "$(dirname "$0")/cli/lib.sh"
: "${CKPTBENCH_SCRATCH:?run through meson test}"
# On the build directory's disk: cold trials need block I/O (not tmpfs).
DATA="$CKPTBENCH_SCRATCH/partial"
mkdir -p "$DATA"
export CKPTBENCH_DATA="$DATA"
RUN=("$CKPTBENCH" run --no-calibrate --quiet --warmup 0 --force)

# gpt2 has its one size; F16 keeps it at 250 MB.
ls -d "$DATA"/llama-* >/dev/null 2>&1 ||
	"$CKPTBENCH" gen --preset llama --size 32M --formats safetensors,pytorch -o "$DATA" \
		--quiet >/dev/null 2>&1 || fail "gen llama"
ls -d "$DATA"/gpt2-* >/dev/null 2>&1 ||
	"$CKPTBENCH" gen --preset gpt2 --dtype F16 --formats safetensors,pytorch -o "$DATA" \
		--quiet >/dev/null 2>&1 || fail "gen gpt2"
LLAMA=$(ls -d "$DATA"/llama-* | head -1)
GPT2=$(ls -d "$DATA"/gpt2-* | head -1)

# jq-free checks of a results file, in Python.
check() { # FILE PYTHON-EXPRESSION-OVER-d MESSAGE
	cb_checks=$((cb_checks + 1))
	"$PY" - "$1" "$2" <<'EOF' || fail "$3"
import json, sys
d = json.load(open(sys.argv[1]))
cells = d["cells"]
ok = eval(sys.argv[2])
if not ok:
    for c in cells:
        print(c["loader"], c.get("selection"), c["status"], c.get("reason"),
              {k: c["summary"].get(k) for k in ("n", "asked_bytes", "read_bytes",
               "read_amplification", "read_over_pages")},
              [t.get("message") for t in c["trials"] if t.get("outcome") != "ok"][:1],
              file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}

# Every rank of a 2- and 4-way split, each loader that can, verified.
for ds in "$LLAMA" "$GPT2"; do
	# gpt2 is larger: two loaders, one of each kind.
	loaders=safetensors-read,safetensors-mmap,pickle,pickle-mmap,torch-load,libtorch-safetensors
	[ "$ds" = "$GPT2" ] && loaders=safetensors-read,pickle-mmap
	n_loaders=$(tr ',' '\n' <<<"$loaders" | wc -l)
	out="$CB_TMP/all-$(basename "$ds").json"
	if expect_status 0 "${RUN[@]}" --datasets "$ds" --loaders "$loaders" --tp 2,4 \
		--cache warm --repeat 1 -o "$out"; then
		check "$out" "all(c['status'] == 'skipped' or all(t['outcome'] == 'ok' and t['verified'] for t in c['trials'])
		              for c in cells) and sum(c['status'] == 'ok' for c in cells) >= ($n_loaders - 1) * 6" \
			"$(basename "$ds"): every rank's slice loads verified"
		# The ranks' asked bytes of a split add up to at least the model
		# (replicated tensors count once per rank) and a rank asks less
		# than the whole.
		check "$out" 'all(sum(c["asked_bytes"] for c in cells if c["loader"] == "safetensors-read" and c["selection"]["tp"] == n) >= cells[0]["model_bytes"] and
		              max(c["asked_bytes"] for c in cells if c["selection"]["tp"] == n) < cells[0]["model_bytes"] for n in (2, 4))' \
			"$(basename "$ds"): asked bytes per rank"
	fi
done

# A selection: exactly the tensors it names, and the cell says so.
out="$CB_TMP/select.json"
if expect_status 0 "${RUN[@]}" --datasets "$LLAMA" --loaders safetensors-read,pickle \
	--select 'layers.0-1,lm_head' --cache warm --repeat 1 -o "$out"; then
	check "$out" 'all(c["selection"]["select"] == ["layers.0-1", "lm_head"] and c["trials"][0]["outcome"] == "ok" for c in cells)' \
		"a selection loads verified, recorded in the cell"
fi

# Cold, a row split only (o_proj, down_proj: one strided run per row). The
# bytes read come from the trial's /proc/PID/io and the page cache's growth,
# both measured: safetensors-read with gap=0 (each run its own read) reads
# the pages its runs lie in and no more; pickle reads every record whole.
out="$CB_TMP/row.json"
if expect_status 0 "${RUN[@]}" --datasets "$LLAMA" --loaders safetensors-read:gap=0,pickle \
	--select '*.o_proj.weight,*.down_proj.weight' --tp 2:1 --cache cold --repeat 2 -o "$out"; then
	check "$out" 'all(c["summary"]["read_bytes"] == int(sum(t["read_bytes"] for t in c["trials"]) / 2) for c in cells)' \
		"read_bytes is the median of the trials' measured figures"
	check "$out" 'all(c["summary"]["read_amplification"] > 1.5 for c in cells)' \
		"a half of each row read cold reads more than the half"
	check "$out" '[c for c in cells if c["loader"] == "safetensors-read"][0]["summary"]["read_over_pages"] < 1.05' \
		"safetensors-read reads only the pages of its runs"
	check "$out" 'all(abs(t["cache_growth_bytes"] - t["read_bytes"]) < 0.1 * t["read_bytes"] + (1 << 20)
	                  for c in cells for t in c["trials"])' \
		"the page cache grew by the bytes read"
	pt_bytes=$(stat -c %s "$LLAMA"/*.pt)
	check "$out" "all(t['read_bytes'] >= 0.95 * $pt_bytes for c in cells if c['loader'] == 'pickle' for t in c['trials'])" \
		"pickle reads the whole file for a part"
fi

# Bad selections and splits: one line, exit 2, no results file.
bad() { # MESSAGE-PATTERN ARGS...
	local pattern=$1
	shift
	rm -f "$CB_TMP/bad.json"
	expect_status 2 "${RUN[@]}" --datasets "$LLAMA" --loaders safetensors-read \
		-o "$CB_TMP/bad.json" "$@" && expect_stderr_line "$pattern"
	cb_checks=$((cb_checks + 1))
	[ ! -e "$CB_TMP/bad.json" ] || fail "a results file was left for $*"
}
bad "matches no tensor" --select 'no_such_tensor'
bad "vLLM" --tp 5
bad "not a split" --tp 0
bad "out of range" --tp 4:7
bad "selection" --select 'layers.7-3'
bad "selection" --select '[abc'
bad "tp" --tp 2:x

finish
