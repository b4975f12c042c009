#!/bin/sh
# Builds build-gpu-static/ckptbench: the binary bench/tools/gpu-check.sh carries to
# a GPU machine that may have no compiler, meson or libraries. Every library
# is linked statically except glibc's (libc, libm, libdl, libpthread, librt
# and the loader): jansson, xxhash, zlib and liburing from their .a files,
# the CUDA runtime from libcudart_static.a (so any driver as new or newer
# than this toolkit runs it). hwloc is left out (its archive needs libudev's,
# which Debian does not ship); sysinfo and the GPU loaders read sysfs
# instead. libtorch is left out (a module of its own, not carried).
#
#   bench/tools/gpu-build.sh [BUILD_DIR]     default: build-gpu-static
# Exit status: 0 built and checked; 1 a non-glibc shared library is linked;
# other: the build failed.
set -eu
cd "$(dirname "$0")/../.."
dir=${1:-build-gpu-static}
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" -Dprefer_static=true -Dbuildtype=release -Db_ndebug=true \
		-Dcuda=enabled -Dhwloc=disabled -Dtorch=disabled -During=auto >/dev/null
fi
ninja -C "$dir" ckptbench >/dev/null
# ldd lists what the dynamic loader will need; only glibc's may remain.
bad=$(ldd "$dir/ckptbench" | awk '{print $1}' |
	grep -v -E '^(linux-vdso\.so|/lib64/ld-linux|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s\.so)' || true)
if [ -n "$bad" ]; then
	echo "gpu-build: $dir/ckptbench links shared libraries other than glibc's:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "$dir/ckptbench"
