#!/usr/bin/env bash
# The malformed-file corpus (tests/data/bad/, its rules in EXPECTED): for each
# file, `inspect` and `convert` exit with the status the table says, print
# exactly one line on stderr naming the file and the rule, write nothing
# (convert's output directory stays empty), and run nothing (the malicious
# pickles' commands leave no trace). Every run is under a 256 MiB
# address-space limit (ulimit -v), the resource bound: a file of a few KiB is
# refused as bad input (status 1), never with "out of memory" (status 3) or a
# crash, so it never made us allocate much.
. "$(dirname "$0")/lib.sh"
bad=$CKPTBENCH_SOURCE/tests/data/bad
rm -f /tmp/ckptbench-pwned

# ulimit -v and AddressSanitizer do not mix (its shadow memory is terabytes
# of address space): the bound is checked in the plain build only.
limit=262144
if ldd "$CKPTBENCH" 2>/dev/null | grep -q libasan; then
	limit=unlimited
fi
# bounded CMD...: CMD under the address-space limit.
bounded() {
	(ulimit -v "$limit" && exec "$@")
}

# The control: a good file passes under the same limit.
expect_status 0 bounded "$CKPTBENCH" inspect --threads 1 \
	"$CKPTBENCH_FIXTURES/safetensors-official/jl_model.safetensors"

n=0
while IFS=$'\t' read -r file status rule; do
	case $file in '#'* | '') continue ;; esac
	n=$((n + 1))
	path=$bad/$file
	[ -f "$path" ] || { fail "$file: listed in EXPECTED but missing"; continue; }

	# inspect (hashing on, one thread: the bound is about the reader)
	if expect_status "$status" bounded "$CKPTBENCH" inspect --threads 1 "$path"; then
		expect_stderr_line "ckptbench: $path: "
		grep -qF -- "$rule" "$CB_TMP/err" && pass ||
			fail "$file: inspect said '$(cat "$CB_TMP/err")', wanted '$rule'"
	fi
	[ -s "$CB_TMP/out" ] && fail "$file: inspect printed a table for a bad file" || pass

	# convert into an empty directory: refused the same way, nothing left
	out=$CB_TMP/convert
	rm -rf "$out" && mkdir "$out"
	case $file in *.safetensors) target=$out/model.pt ;; *) target=$out/model.safetensors ;; esac
	if expect_status "$status" bounded "$CKPTBENCH" convert "$path" "$target"; then
		expect_stderr_line "ckptbench: $path: "
		grep -qF -- "$rule" "$CB_TMP/err" && pass ||
			fail "$file: convert said '$(cat "$CB_TMP/err")', wanted '$rule'"
	fi
	[ -z "$(ls -A "$out")" ] && pass || fail "$file: convert left $(ls -A "$out")"
done <"$bad/EXPECTED"

# Every file of the corpus has its line, and there are enough of them.
for path in "$bad"/*; do
	file=$(basename "$path")
	case $file in EXPECTED | make_bad.py | README*) continue ;; esac
	grep -q "^$file	" "$bad/EXPECTED" && pass || fail "$file: no line in EXPECTED"
done
[ "$n" -ge 60 ] && pass || fail "only $n files in EXPECTED"

# Nothing ran: the malicious pickles would have touched this file.
[ ! -e /tmp/ckptbench-pwned ] && pass || fail "a pickle's command ran"
finish
