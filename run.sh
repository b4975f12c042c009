#!/usr/bin/env bash
# Sets everything up and runs the default benchmark: installs what is
# missing, builds build/ckptbench, makes the default datasets and checks them,
# then runs every available CPU loader over them, cold and warm, and writes
# the report and its charts.
#
# Datasets go to $CKPTBENCH_DATA (default datasets/data). The default set is
# GPT-2 small in F32 and Llama-style models of 256 MiB and 1 GiB in F16, each
# as safetensors and as a PyTorch checkpoint. Results go to results/.
# CKPTBENCH_REPEAT and CKPTBENCH_WARMUP change the trials per cell;
# CKPTBENCH_BUILD the build directory (default build).
set -eu
cd "$(dirname "$0")"
. scripts/deps.sh

# shellcheck disable=SC2086
cb_ensure_packages $CB_BUILD_PACKAGES $CB_RUN_PACKAGES
build=${CKPTBENCH_BUILD:-build}  # another build directory, e.g. one per worktree
cb_build "$build"

ckptbench=$build/ckptbench
data=${CKPTBENCH_DATA:-datasets/data}

formats=--formats=safetensors,pytorch
"$ckptbench" gen --preset gpt2 $formats -o "$data"
"$ckptbench" gen --preset llama --size 256M --dtype F16 $formats -o "$data"
"$ckptbench" gen --preset llama --size 1G --dtype F16 $formats -o "$data"

# Each dataset must read back exactly as its manifest says: same tensors,
# same bytes (inspect re-hashes the files and compares).
for name in gpt2-523M-F32-s1 llama-256M-F16-s1 llama-1G-F16-s1; do
	"$ckptbench" inspect --verify "$data/$name/manifest.json" "$data/$name"
done

# The default benchmark: every loader (--device cpu skips the GPU ones, and
# loaders that cannot run here are recorded as skipped with their reason),
# cold and warm. 3 trials per cell and no warm-up: about 8 minutes on the
# 2-core development VM with libtorch and torch installed (README, "Results");
# a trial is a fresh process either way, and the harness prepares the cache
# state before each one.
# Every loader by its defaults, plus two modes as cells of their own:
# safetensors-mmap as the library maps (no population, each page faulted in
# as it is first read: populate-read=0) beside its populated default, and
# safetensors-read with O_DIRECT beside its buffered default.
loaders=$("$ckptbench" loaders | awk '/^[a-z]/ { print $1 }' | paste -sd, -)
loaders=$loaders,safetensors-mmap:populate-read=0,safetensors-read:direct=1
stamp=$(date -u +%Y%m%d-%H%M%S)
results=results/default-$stamp.json
mkdir -p results
"$ckptbench" run --device cpu --cache cold,warm --loaders "$loaders" \
	--repeat "${CKPTBENCH_REPEAT:-3}" --warmup "${CKPTBENCH_WARMUP:-0}" \
	--datasets gpt2-523M-F32-s1,llama-256M-F16-s1,llama-1G-F16-s1 -o "$results"
report=results/default-$stamp-report.md
"$ckptbench" report -o "$report" "$results"

echo
echo "results: $results (and ${results%.json}.csv)"
echo "report:  $report"
echo "charts:  ${report%.md}-charts/"
