#!/usr/bin/env bash
# Sets everything up and runs the default benchmark: installs what is
# missing, builds build/ckptbench, makes the default datasets and checks them.
#
# Datasets go to $CKPTBENCH_DATA (default datasets/data). The default set is
# GPT-2 small in F32 and Llama-style models of 256 MiB and 1 GiB in F16.
set -eu
cd "$(dirname "$0")"
. scripts/deps.sh

# shellcheck disable=SC2086
cb_ensure_packages $CB_BUILD_PACKAGES $CB_RUN_PACKAGES
cb_build build

ckptbench=build/ckptbench
data=${CKPTBENCH_DATA:-datasets/data}

"$ckptbench" gen --preset gpt2 -o "$data"
"$ckptbench" gen --preset llama --size 256M --dtype F16 -o "$data"
"$ckptbench" gen --preset llama --size 1G --dtype F16 -o "$data"

# Each dataset must read back exactly as its manifest says: same tensors,
# same bytes (inspect re-hashes the files and compares).
for name in gpt2-523M-F32-s1 llama-256M-F16-s1 llama-1G-F16-s1; do
	"$ckptbench" inspect --verify "$data/$name/manifest.json" "$data/$name"
done
