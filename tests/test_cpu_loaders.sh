#!/bin/bash
# The CPU loaders, end to end through `ckptbench run`, judged by
# the harness's own verification and figures. One part per meson test:
#   exact     every CPU loader on every fixture kind loads byte-exact: every
#             dtype gen writes, 0-dim scalars, empty tensors, an unaligned
#             data section, many small tensors, sharded models (both
#             formats), the official fixtures, and torch.save files with tied
#             weights and strided views (skipped without python3-torch)
#   memory    each loader's memory class on a 256 MiB model: anonymous ~1x
#             (safetensors-read), ~0 with ~1x file-backed (safetensors-mmap,
#             pickle-mmap), ~2x (pickle, safetensors-eager)
#   fallback  O_DIRECT and io_uring on tmpfs (/dev/shm) load, and say how:
#             buffered where tmpfs refuses O_DIRECT (before Linux 6.6), direct
#             where it takes it
# Datasets live in CKPTBENCH_SCRATCH (the build directory's disk), except
# the fallback part's, which must be on tmpfs.
set -u
part=${1:?usage: test_cpu_loaders.sh exact|memory|fallback}
bin=${CKPTBENCH:?CKPTBENCH unset}
scratch=${CKPTBENCH_SCRATCH:?CKPTBENCH_SCRATCH unset}
src=${CKPTBENCH_SOURCE:?}
check=$src/tests/cpu_loaders_check.py
py=/usr/bin/python3
mkdir -p "$scratch"
out=$(mktemp -d "$scratch/cpu.XXXXXX")
trap 'rm -rf "$out"' EXIT
loaders="safetensors-read safetensors-mmap pickle pickle-mmap safetensors-eager"
variants="safetensors-read,safetensors-read:shares=0,safetensors-read:threads=3:chunk=64K,safetensors-read:uring=1,safetensors-read:direct=1:chunk=64K"
variants="$variants,safetensors-read:uring=1:direct=1:qd=3:chunk=64K,safetensors-mmap"
variants="$variants,safetensors-mmap:populate=1:populate-read=0,safetensors-mmap:populate-read=0:willneed=1:sequential=1,pickle,pickle:threads=1,pickle-mmap"
variants="$variants,pickle-mmap:populate-read=0:threads=3,pickle-mmap:populate=1:willneed=1:sequential=1"
variants="$variants,safetensors-eager,safetensors-eager:threads=1:thp=0"

fail() { echo "FAIL: $*" >&2; exit 1; }

gen() { "$bin" gen --no-sync --quiet -o "$out/data" "$@" | sed -n 's/: .*//p'; }

run() {
	"$bin" run --no-calibrate --quiet --warmup 0 --repeat 1 --cache warm "$@"
}

case $part in
exact)
	sets=()
	for dt in BOOL U8 I8 I16 U16 I32 U32 I64 U64 F16 BF16 F32 F64 C64 F8_E4M3 F8_E5M2 \
		F8_E8M0 F8_E4M3FNUZ F8_E5M2FNUZ F4 F6_E2M3 F6_E3M2; do
		# both formats where torch has the dtype, safetensors alone otherwise
		d=$(gen --preset few-large --size 64K --dtype "$dt" --formats safetensors,pytorch \
			2>/dev/null) || d=
		[ -n "$d" ] || d=$(gen --preset few-large --size 64K --dtype "$dt") ||
			fail "gen --dtype $dt"
		sets+=("$d")
	done
	sets+=("$(gen --preset llama --size 6M --formats safetensors,pytorch)")
	sets+=("$(gen --preset llama --size 6M --shards 3 --formats safetensors,pytorch)")
	sets+=("$(gen --preset many-small --size 2M --formats safetensors,pytorch)")
	$py "$src/tests/make_loader_fixtures.py" safetensors "$out/odd" || fail "odd fixture"
	"$bin" convert "$out/odd/model.safetensors" "$out/odd/model.pt" >/dev/null ||
		fail "convert the odd fixture"
	sets+=("$out/odd")
	fixtures=$src/tests/data/fixtures/safetensors-official
	for f in "$fixtures"/*.safetensors "$fixtures/sharded"; do
		case $f in *bad_*) continue ;; esac
		name=$(basename "$f" .safetensors)
		mkdir -p "$out/official/$name"
		if [ -d "$f" ]; then
			cp "$f"/* "$out/official/$name/"
			"$bin" convert "$out/official/$name" "$out/official/$name-pt" >/dev/null ||
				fail "convert $f"
			mv "$out/official/$name-pt"/* "$out/official/$name/"
		else
			cp "$f" "$out/official/$name/model.safetensors"
			"$bin" convert "$f" "$out/official/$name/model.pt" >/dev/null ||
				fail "convert $f"
		fi
		sets+=("$out/official/$name")
	done
	$py "$src/tests/make_loader_fixtures.py" torch "$out/torch" 2>/dev/null
	status=$?
	case $status in
	0) sets+=("$out/torch") ;;
	77) echo "note: no python3-torch; the torch.save views and tied weights are skipped" ;;
	*) fail "make_loader_fixtures.py torch exited $status" ;;
	esac
	list=$(IFS=,; echo "${sets[*]}")
	run --datasets "$list" --loaders "$variants" -o "$out/exact.json" >/dev/null
	status=$?
	[ $status -eq 0 ] || fail "run exited $status"
	$py "$check" exact "$out/exact.json" $loaders || fail "exact loads"
	;;
memory)
	d=$(gen --preset llama --size 256M --formats safetensors,pytorch) || fail "gen 256M"
	run --datasets "$d" --loaders safetensors-read,safetensors-mmap,pickle,pickle-mmap,safetensors-eager \
		--repeat 2 -o "$out/mem.json" >/dev/null || fail "run exited $?"
	$py "$check" memory "$out/mem.json" || fail "memory classes"
	;;
fallback)
	[ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ] ||
		{ echo "SKIP: no tmpfs at /dev/shm"; exit 77; }
	shm=$(mktemp -d /dev/shm/ckptbench-cpu.XXXXXX)
	trap 'rm -rf "$out" "$shm"' EXIT
	d=$("$bin" gen --no-sync --quiet -o "$shm" --preset llama --size 6M --shards 2 |
		sed -n 's/: .*//p')
	[ -n "$d" ] || fail "gen on tmpfs"
	run --datasets "$d" -o "$out/fb.json" \
		--loaders safetensors-read:direct=1,safetensors-read:uring=1:direct=1,safetensors-read:uring=1 \
		>/dev/null || fail "run exited $?"
	$py "$check" fallback "$out/fb.json" || fail "fallback"
	;;
*)
	fail "unknown part $part" ;;
esac
echo "ok: cpu loaders $part"
