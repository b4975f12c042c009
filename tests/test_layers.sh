#!/bin/sh
# No file includes a header of a layer above its own (docs/architecture.md,
# "Layers"). Bottom to top: base (loaders/base) < formats (loaders/format)
# < loaders (loaders/, its engine/, cuda/, torch/) and datasets (datasets/,
# beside the loaders: neither includes the other) < harness (bench/harness).
# Statistics (bench/stats) are pure: no jansson, no header of the project
# but their own and the base's error vocabulary (error.h). Results
# (bench/results) may use statistics and the base. The CLI (bench/cli) may
# use every layer. A quoted include is resolved by its path's end against
# the headers of every layer; generated headers (cb_config.h, cb_commit.h)
# belong to no layer.
set -eu
src=${CKPTBENCH_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"

# The layer of a header (a path relative to the source root).
layer_of() {
	case $1 in
	loaders/base/*) echo base ;;
	loaders/format/*) echo format ;;
	loaders/*) echo loaders ;;
	datasets/*) echo datasets ;;
	bench/harness/*) echo harness ;;
	bench/storage/*) echo storage ;; # storage profiles: above the base only
	bench/stats/*) echo stats ;;
	bench/results/*) echo results ;;
	bench/cli/*) echo cli ;;
	*) echo other ;;
	esac
}

# What a layer may include, besides its own headers.
allowed() {
	case $1 in
	base) echo "" ;;
	format) echo "base" ;;
	loaders) echo "base format" ;;
	datasets) echo "base format" ;;
	harness) echo "base format loaders datasets stats storage" ;;
	storage) echo "base" ;;
	stats) echo "" ;; # and error.h, checked below
	results) echo "base stats" ;;
	cli) echo "base format loaders datasets harness stats results storage" ;;
	esac
}

headers=$(find loaders datasets bench -name '*.h' | sort)
bad=0
for dir in loaders/base loaders/format loaders datasets bench/harness bench/storage bench/stats bench/results bench/cli; do
	files=$(find "$dir" \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) | sort)
	for f in $files; do
		own=$(layer_of "$f")
		[ "$own" = "$(layer_of "$dir/x")" ] || continue # a sub-layer's file, checked there
		if [ "$own" = stats ] && grep -q '#include <jansson.h>' "$f"; then
			echo "$f: statistics include jansson" >&2
			bad=1
		fi
		for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
			case $inc in cb_config.h | cb_commit.h) continue ;; esac
			# the header that include names: beside the file first, then
			# any layer's header whose path ends with it
			if [ -f "$(dirname "$f")/$inc" ]; then
				hit=$(dirname "$f")/$inc
			else
				hit=$(printf '%s\n' $headers | grep -E "(^|/)$(printf '%s' "$inc" | sed 's/[.]/[.]/g')\$" | head -n 1 || true)
			fi
			[ -n "$hit" ] || continue # not a project header
			theirs=$(layer_of "$hit")
			[ "$theirs" = "$own" ] && continue
			[ "$own" = stats ] && [ "$hit" = loaders/base/error.h ] && continue
			case " $(allowed "$own") " in
			*" $theirs "*) ;;
			*)
				echo "$f: includes \"$inc\" ($hit, layer $theirs) from layer $own" >&2
				bad=1
				;;
			esac
		done
	done
done
[ "$bad" = 0 ] && echo "layers: no include points up"
exit "$bad"
