#!/bin/bash
# The parse benchmark (bench/tools/parsebench.c, bench/tools/parse-compare.sh) runs and
# reports in the promised shape; no timing is asserted (a benchmark reports
# figures, a test only checks that they are there). One part per meson test:
#   parse    ckptbench-parsebench --repeat 2 on a small .pt (the official
#            jl_model fixture converted by `ckptbench convert`: tests/data
#            holds no well-formed .pt) prints one JSON line with exactly
#            file, tensors (as many as inspect lists), repeat, median_s and
#            min_s; malformed, unsafe, missing and non-.pt files are refused
#            with one stderr line naming the file, nothing on stdout, and
#            the exit status of docs/cli.md
#   compare  bench/tools/parse-compare.sh --tensors 200 --repeat 2 against the real
#            torch ends with its `parse-compare:` line (skipped, 77, without
#            Debian's python3-torch); usage errors exit 2
part=${1:?usage: test_parsebench.sh parse|compare}
: "${CKPTBENCH_PARSEBENCH:?run through meson test}" "${CKPTBENCH_SOURCE:?}"
. "$CKPTBENCH_SOURCE/tests/cli/lib.sh"
pb=$CKPTBENCH_PARSEBENCH
src=$CKPTBENCH_SOURCE

# check_json FILE PATH TENSORS REPEAT: $CB_TMP/out is parsebench's one line.
check_json() {
	cb_checks=$((cb_checks + 1))
	"$PY" - "$CB_TMP/out" "$1" "$2" "$3" <<'PYEOF' || fail "parsebench JSON: $(cat "$CB_TMP/out")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
doc = json.loads(lines[0])
assert list(doc) == ["file", "tensors", "repeat", "median_s", "min_s"], doc
assert doc["file"] == sys.argv[2], doc
assert doc["tensors"] == int(sys.argv[3]), doc
assert doc["repeat"] == int(sys.argv[4]), doc
assert isinstance(doc["median_s"], float) and isinstance(doc["min_s"], float), doc
assert 0 < doc["min_s"] <= doc["median_s"], doc
PYEOF
}

# expect_refused STATUS PATTERN FILE: one stderr line naming FILE, no stdout.
expect_refused() {
	expect_status "$1" "$pb" --repeat 2 "$3" || return
	expect_stderr_line "^ckptbench: $3: .*$2"
	cb_checks=$((cb_checks + 1))
	[ ! -s "$CB_TMP/out" ] || fail "stdout not empty for $3: $(cat "$CB_TMP/out")"
}

case $part in
parse)
	pt=$CB_TMP/jl_model.pt
	"$CKPTBENCH" convert "$CKPTBENCH_FIXTURES/safetensors-official/jl_model.safetensors" \
		"$pt" >/dev/null || fail "convert jl_model.safetensors"
	n=$("$CKPTBENCH" inspect --json --no-hash "$pt" |
		"$PY" -c 'import json, sys; print(len(json.load(sys.stdin)["tensors"]))') ||
		fail "inspect $pt"
	[ "${n:-0}" -gt 0 ] || fail "no tensors in $pt"
	if expect_status 0 "$pb" --repeat 2 "$pt"; then
		check_json "$pt" "$n" 2
	fi
	expect_status 0 "$pb" "$pt" && check_json "$pt" "$n" 20 # the default repeat

	bad=$src/tests/data/bad
	expect_refused 1 "no end-of-central-directory" "$bad/zip-truncated-half.pt"
	expect_refused 1 "refused global os.system" "$bad/pk-os-system.pt"
	expect_refused 1 "cannot open" "$CB_TMP/missing.pt"
	# A checkpoint of the other format: the loader's path (cb_ckpt_open with
	# CB_FORMAT_PYTORCH) says which it is, a usage error (status 2). Text
	# under a torch name is a bad input (status 1), named as not PyTorch.
	expect_refused 2 "not pytorch" "$CKPTBENCH_FIXTURES/safetensors-official/jl_model.safetensors"
	printf 'hello, world\n' >"$CB_TMP/text.pt"
	expect_refused 1 "not a PyTorch checkpoint" "$CB_TMP/text.pt"

	expect_status 2 "$pb" --repeat 0 "$pt" && expect_stderr_line "^ckptbench-parsebench: "
	expect_status 2 "$pb" && expect_stderr_line "^ckptbench-parsebench: "
	expect_status 2 "$pb" "$pt" "$pt"
	;;
compare)
	script=$src/bench/tools/parse-compare.sh
	expect_status 2 "$script" --tensors 0
	expect_status 2 "$script" --bogus
	/usr/bin/python3 -c 'import torch' 2>/dev/null ||
		{ echo "SKIP: /usr/bin/python3 has no torch"; exit 77; }
	# Through CKPTBENCH_BUILD, as a user runs it, not the direct path.
	if expect_status 0 env -u CKPTBENCH_PARSEBENCH "$script" --tensors 200 --repeat 2; then
		cb_checks=$((cb_checks + 1))
		last='^parse-compare: ours [0-9.]+ ms, torch\.load [0-9.]+ ms \(weights_only [0-9.]+ ms\): [0-9.]+x$'
		tail -n 1 "$CB_TMP/out" | grep -Eq "$last" ||
			fail "last line is not the parse-compare line: $(tail -n 3 "$CB_TMP/out")"
		cb_checks=$((cb_checks + 1))
		grep -q '^parse-compare: 200 tensors' "$CB_TMP/out" ||
			fail "the table does not say 200 tensors: $(head -n 1 "$CB_TMP/out")"
	fi
	;;
*)
	fail "unknown part $part" ;;
esac
finish
