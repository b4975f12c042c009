#!/usr/bin/env bash
# scripts/deps.sh's cb_configure: a build directory configured while a
# dependency was missing is configured again once it is there, so the
# feature is on without the user wiping anything. The dependency hidden is
# liburing (a pkg-config search path without its .pc file); the proof is
# what meson introspect and the generated cb_config.h say.
. "$(dirname "$0")/lib.sh"
: "${CKPTBENCH_SOURCE:?run through meson test}"

pc_file=$(pkg-config --path liburing 2>/dev/null) || {
	echo "liburing's pkg-config file is not installed (scripts/deps.sh installs it)" >&2
	exit 77
}

# A copy of the source tree as a clone has it (tracked and new files, no
# build directories), so nothing here touches the caller's builds.
src=$CB_TMP/src
mkdir -p "$src"
if git -C "$CKPTBENCH_SOURCE" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$CKPTBENCH_SOURCE" ls-files -z -co --exclude-standard |
		(cd "$CKPTBENCH_SOURCE" && xargs -0 tar -cf - --) | tar -xf - -C "$src"
else
	(cd "$CKPTBENCH_SOURCE" && tar -cf - --exclude='./build*' .) | tar -xf - -C "$src"
fi

# The same pkg-config search path less liburing.pc.
hidden=$CB_TMP/pkgconfig
mkdir -p "$hidden"
IFS=: read -r -a pc_dirs <<<"$(pkg-config --variable pc_path pkg-config)"
for dir in "${pc_dirs[@]}"; do
	for pc in "$dir"/*.pc; do
		[ -e "$pc" ] && [ "$pc" != "$pc_file" ] && ln -sf "$pc" "$hidden/"
	done
done

uring_in() { # DIR: "1" when the configured build found liburing
	$PY - "$1" <<'PYEOF'
import json, subprocess, sys
deps = json.loads(subprocess.check_output(["meson", "introspect", "--dependencies", sys.argv[1]]))
print(int(any(d["name"] == "liburing" for d in deps)))
PYEOF
}

cd "$src" || exit 1
. scripts/deps.sh
b=$CB_TMP/b

expect_status 0 env PKG_CONFIG_LIBDIR="$hidden" bash -c '. scripts/deps.sh && cb_configure "$1"' _ "$b"
[ "$(uring_in "$b")" = 0 ] && pass || fail "liburing found although hidden"
grep -qx '#define CB_HAVE_URING 0' "$b/cb_config.h" && pass || fail "cb_config.h: io_uring on while hidden"

# Visible again: the next configure sees the change and finds it.
expect_status 0 bash -c '. scripts/deps.sh && cb_configure "$1"' _ "$b"
grep -q "dependencies changed" "$CB_TMP/err" && pass || fail "not reconfigured: $(cat "$CB_TMP/err")"
[ "$(uring_in "$b")" = 1 ] && pass || fail "liburing not found after it became visible"
grep -qx '#define CB_HAVE_URING 1' "$b/cb_config.h" && pass || fail "cb_config.h: io_uring still off"

# Nothing changed since: no new configure step.
expect_status 0 bash -c '. scripts/deps.sh && cb_configure "$1"' _ "$b"
[ ! -s "$CB_TMP/err" ] && pass || fail "configured again with nothing changed: $(cat "$CB_TMP/err")"
finish
