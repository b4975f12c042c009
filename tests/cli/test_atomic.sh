#!/usr/bin/env bash
# Safety of what we write: gen and convert killed with SIGKILL in the middle
# of a large write leave nothing under a final name (model files and
# manifest.json appear only by rename, after fsync), and a rerun completes;
# convert refuses to overwrite its input and leaves it intact.
. "$(dirname "$0")/lib.sh"

# kill_mid PATTERN CMD...: starts CMD, waits until a file matching PATTERN
# (a glob, the temporary name) holds at least 1 MiB, then SIGKILLs it.
# Fails when CMD finished first (the write was too quick to catch).
kill_mid() {
	local pattern=$1
	shift
	"$@" >/dev/null 2>&1 &
	local pid=$! f size
	for _ in $(seq 1 2000); do
		for f in $pattern; do
			[ -f "$f" ] || continue
			size=$(stat -c %s "$f" 2>/dev/null || echo 0)
			if [ "$size" -ge 1048576 ]; then
				kill -KILL $pid 2>/dev/null
				wait $pid 2>/dev/null
				return 0
			fi
		done
		kill -0 $pid 2>/dev/null || break
		sleep 0.01
	done
	wait $pid 2>/dev/null
	fail "$*: finished before it could be killed mid-write"
	return 1
}

# gen: 512 MiB, fsync on, killed while the model is being written.
ds=$CB_TMP/data/few-large-512M-F16-s1
if kill_mid "$ds/model.safetensors.tmp.*" "$CKPTBENCH" gen --preset few-large --size 512M \
	-o "$CB_TMP/data" --quiet; then
	pass
	for name in model.safetensors manifest.json; do
		[ ! -e "$ds/$name" ] && pass || fail "gen killed mid-write left $name"
	done
fi
# A rerun completes and the dataset verifies.
expect_status 0 "$CKPTBENCH" gen --preset few-large --size 512M -o "$CB_TMP/data" --quiet --no-sync
expect_status 0 "$CKPTBENCH" inspect --verify "$ds/manifest.json" "$ds"

# convert: killed while writing OUT, nothing under OUT's name.
if kill_mid "$CB_TMP/out.pt.tmp.*" "$CKPTBENCH" convert "$ds/model.safetensors" "$CB_TMP/out.pt"; then
	pass
	[ ! -e "$CB_TMP/out.pt" ] && pass || fail "convert killed mid-write left out.pt"
fi
rm -f "$CB_TMP"/out.pt.tmp.*

# convert never overwrites its input: status 2, the input's bytes unchanged.
before=$(cksum <"$ds/model.safetensors")
expect_status 2 "$CKPTBENCH" convert "$ds/model.safetensors" "$ds/model.safetensors"
expect_stderr_line "refusing to overwrite"
[ "$(cksum <"$ds/model.safetensors")" = "$before" ] && pass || fail "the input changed"
finish
