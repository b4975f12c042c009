#!/bin/bash
# The install (docs/install.md): a fresh build of a copy of the source tree
# ($CKPTBENCH_SOURCE, configured with the feature options of the build that
# runs this test, $CKPTBENCH_BUILD), `meson install`ed into a temp prefix;
# the prefix is then moved elsewhere and the copied source and build trees
# are deleted, so only the relative layout can work. From a directory outside
# every tree: gen, run (a C loader and a Python peer), plot, report, and the
# libtorch loaders available where the build has libtorch. Then the errors:
# a binary without its tree names where it looked.
# Exit 77 (skipped) without meson or ninja.
set -u
. "$(dirname "$0")/lib.sh"
: "${CKPTBENCH_SOURCE:?run through meson test}" "${CKPTBENCH_BUILD:?run through meson test}"
# A signal (meson's timeout) also runs lib.sh's EXIT trap, which removes it all.
trap 'exit 143' TERM INT HUP
command -v meson >/dev/null && command -v ninja >/dev/null ||
	{ echo "no meson or ninja: skipped"; exit 77; }
T=$(cd "$CB_TMP" && pwd -P)
start=$(date +%s)

# --- a copy of the source tree: what git would commit, as it is now ----------
mkdir -p "$T/a/src" "$T/b" "$T/elsewhere"
if git -C "$CKPTBENCH_SOURCE" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$CKPTBENCH_SOURCE" ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$CKPTBENCH_SOURCE/$f" ] && printf '%s\0' "$f"
		done | tar -C "$CKPTBENCH_SOURCE" --null -T - -cf - | tar -C "$T/a/src" -xf -
else
	tar -C "$CKPTBENCH_SOURCE" --exclude='./build*' --exclude=./datasets/data \
		--exclude=./results -cf - . | tar -C "$T/a/src" -xf -
fi
[ -f "$T/a/src/meson.build" ] && pass || { fail "copying $CKPTBENCH_SOURCE"; finish; exit; }

# --- configure, build what is installed, install ------------------------------
# The user options of the running build (torch, libtorch_dir, cuda, ...),
# but not fuzz (it needs clang).
mapfile -t opts < <(meson introspect --buildoptions "$CKPTBENCH_BUILD" | "$PY" -c '
import json, sys
for o in json.load(sys.stdin):
    if o["section"] == "user" and o["name"] != "fuzz":
        v = o["value"]
        print("-D%s=%s" % (o["name"], str(v).lower() if isinstance(v, bool) else v))')
prefix=$T/a/prefix
build=$T/a/build
if ! meson setup "$build" "$T/a/src" --prefix "$prefix" -Dbuildtype=debugoptimized \
	"${opts[@]}" >"$T/setup.log" 2>&1; then
	fail "meson setup ${opts[*]}: $(tail -5 "$T/setup.log")"
	finish
	exit
fi
# Only the installed targets (the binary, the libtorch module), not the tests.
cat >"$T/installed.py" <<'PYEOF'
import json, os, sys
build = sys.argv[1]
for t in json.load(sys.stdin):
    if t["installed"]:
        for f in t["filename"]:
            print(os.path.relpath(f, build))
PYEOF
mapfile -t targets < <(meson introspect --targets "$build" | "$PY" "$T/installed.py" "$build")
build_start=$(date +%s)
if ! ninja -C "$build" "${targets[@]}" >"$T/build.log" 2>&1 ||
	! meson install -C "$build" --no-rebuild >"$T/install.log" 2>&1; then
	fail "build or install: $(tail -5 "$T/build.log" "$T/install.log")"
	finish
	exit
fi
echo "built ${targets[*]} and installed in $(($(date +%s) - build_start)) s"
libdir=$(meson introspect --buildoptions "$build" |
	"$PY" -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
has_torch=0
case " ${targets[*]} " in *ckptbench-torch.so*) has_torch=1 ;; esac

# --- first, the build directory itself: out of the source tree, it still
# finds the source tree's templates and peers and its own module -------------
(cd "$T/elsewhere" && "$build/ckptbench" plot -o "$T/oot-charts" \
	"$T/a/src/tests/data/results/cpu-warm.json" >"$T/out" 2>"$T/err") &&
	[ -s "$T/oot-charts/memory.svg" ] && pass ||
	fail "plot from the out-of-tree build directory: $(cat "$T/err")"
if (cd "$T/elsewhere" && "$build/ckptbench" loaders --json >"$T/out" 2>"$T/err"); then
	"$PY" - "$T/out" "$has_torch" <<'PYEOF' && pass || fail "loaders from the out-of-tree build directory: $(head -c 1500 "$T/out")"
import json, sys
ls = {l["name"]: l for l in json.load(open(sys.argv[1]))}
assert "not found" not in (ls["torch-load"]["reason"] or ""), ls["torch-load"]
if sys.argv[2] == "1":
    assert ls["libtorch-pickle"]["available"], ls["libtorch-pickle"]
PYEOF
else
	fail "loaders from the out-of-tree build directory: $(cat "$T/err")"
fi

# --- move the prefix away; the source and build trees go ----------------------
p=$T/b/relocated
mv "$prefix" "$p"
rm -rf "$T/a"
cb=$p/bin/ckptbench
for f in bin/ckptbench share/ckptbench/plots/common.gp share/ckptbench/plots/memory.gp \
	libexec/ckptbench/peers/python-peer libexec/ckptbench/peers/peer.py \
	libexec/ckptbench/peers/torch_paths.py; do
	[ -f "$p/$f" ] && pass || fail "not installed: PREFIX/$f"
done
[ -x "$p/libexec/ckptbench/peers/python-peer" ] && pass || fail "python-peer is not executable"
if [ "$has_torch" = 1 ]; then
	[ -f "$p/$libdir/ckptbench/ckptbench-torch.so" ] && pass ||
		fail "not installed: PREFIX/$libdir/ckptbench/ckptbench-torch.so"
fi
# Built from the copy, the binary names no part of the real source tree.
if grep -qF "$CKPTBENCH_SOURCE/" "$cb"; then
	fail "the installed binary holds the path $CKPTBENCH_SOURCE/"
else
	pass
fi

# --- gen, run, plot, report, loaders: from elsewhere, no overrides -------------
cd "$T/elsewhere" || exit 1
unset CKPTBENCH_PLOTS CKPTBENCH_PEERS CKPTBENCH_TORCH_MODULE CKPTBENCH_DATA
expect_status 0 "$cb" gen --preset llama --size 8M --dtype F16 --formats safetensors,pytorch \
	-o "$T/data" --no-sync --quiet
d=$T/data/llama-8M-F16-s1
[ -f "$d/model.safetensors" ] && [ -f "$d/model.pt" ] && [ -f "$d/manifest.json" ] && pass ||
	fail "gen made no llama-8M-F16-s1 in both formats: $(ls "$d" 2>&1)"

peer_ok=0
"$PY" -c 'import torch, xxhash' 2>/dev/null && peer_ok=1
if expect_status 0 "$cb" run --loaders safetensors-read,torch-load --datasets "$d" \
	--cache warm --repeat 2 --warmup 0 --no-calibrate --device cpu --quiet -o "$T/r.json"; then
	"$PY" - "$T/r.json" "$peer_ok" <<'PYEOF' && pass || fail "run from the moved install: $(head -c 800 "$T/r.json")"
import json, sys
cells = {c["loader"]: c for c in json.load(open(sys.argv[1]))["cells"]}
st, tl = cells["safetensors-read"], cells["torch-load"]
assert st["status"] == "ok", st
assert all(t["outcome"] == "ok" and t.get("verified") for t in st["trials"]), st["trials"]
if sys.argv[2] == "1":
    assert tl["status"] == "ok", (tl["status"], tl.get("reason"))
    assert all(t["outcome"] == "ok" and t.get("verified") for t in tl["trials"]), tl["trials"]
else:  # no torch here: skipped, for that reason, not for a missing program
    reason = tl.get("reason") or ""
    assert tl["status"] == "skipped" and reason, tl
    assert "not found" not in reason, reason
PYEOF
fi

if expect_status 0 "$cb" plot -o "$T/charts" "$T/r.json"; then
	for f in memory.png memory.svg time.png time.svg; do
		[ -s "$T/charts/$f" ] && pass || fail "plot drew no $f: $(ls "$T/charts")"
	done
fi

if expect_status 0 "$cb" report -o "$T/report.md" "$T/r.json"; then
	[ -s "$T/report.md" ] && grep -q safetensors-read "$T/report.md" &&
		grep -q torch-load "$T/report.md" && pass ||
		fail "the report does not name both loaders"
	ls "$T"/report-charts/*.svg >/dev/null 2>&1 && pass || fail "the report drew no charts"
fi

# Through a symbolic link too: the binary's own path is what counts.
ln -s "$cb" "$T/elsewhere/ckptbench"
if expect_status 0 ./ckptbench loaders --json; then
	"$PY" - "$T/out" "$has_torch" "$peer_ok" <<'PYEOF' && pass || fail "loaders from the moved install: $(head -c 1500 "$T/out")"
import json, sys
ls = {l["name"]: l for l in json.load(open(sys.argv[1]))}
peer = ls["torch-load"]
assert peer["available"] or "not found" not in (peer["reason"] or ""), peer
if sys.argv[3] == "1":
    assert peer["available"], peer
cpu = [ls[n] for n in ("libtorch-safetensors", "libtorch-safetensors-mmap",
                       "libtorch-pickle", "libtorch-pickle-load")]
if sys.argv[2] == "1":
    assert all(l["available"] for l in cpu), [(l["name"], l["reason"]) for l in cpu]
else:
    assert all(not l["available"] and l["reason"].startswith("not built") for l in cpu), cpu
PYEOF
fi

# --- what is missing is named, with where it was looked for --------------------
expect_status 3 env CKPTBENCH_PLOTS="$T/none" "$cb" plot -o "$T/c2" "$T/r.json" &&
	expect_stderr_line "gnuplot templates not found: no [a-z]*\.gp in \$CKPTBENCH_PLOTS ($T/none)"
# The binary alone, without its tree: each resource names its install place.
mkdir -p "$T/lonely/bin"
cp "$cb" "$T/lonely/bin/"
expect_status 3 "$T/lonely/bin/ckptbench" plot -o "$T/c3" "$T/r.json" &&
	expect_stderr_line "gnuplot templates not found: no [a-z]*\.gp in $T/lonely/share/ckptbench/plots (set CKPTBENCH_PLOTS)"
if expect_status 0 "$T/lonely/bin/ckptbench" loaders --json; then
	"$PY" - "$T/out" "$T/lonely" "$libdir" "$has_torch" <<'PYEOF' && pass || fail "reasons of the binary alone: $(head -c 1500 "$T/out")"
import json, sys
ls = {l["name"]: l for l in json.load(open(sys.argv[1]))}
root, libdir = sys.argv[2], sys.argv[3]
want = ("peer programs not found: no python-peer in %s/libexec/ckptbench/peers "
        "(set CKPTBENCH_PEERS); not in PATH either" % root)
assert ls["torch-load"]["reason"] == want, ls["torch-load"]
if sys.argv[4] == "1":
    want = ("libtorch module not found: no ckptbench-torch.so in %s/%s/ckptbench "
            "(set CKPTBENCH_TORCH_MODULE to the file)" % (root, libdir))
    assert ls["libtorch-pickle"]["reason"] == want, ls["libtorch-pickle"]
PYEOF
fi

echo "test_install: $(($(date +%s) - start)) s in all"
finish
