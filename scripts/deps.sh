# Installs the Debian packages ckptbench needs; sourced by run.sh and test.sh.
#
#   cb_ensure_packages PKG...   installs what is missing: apt-get as root,
#                               sudo otherwise, or prints the exact command
#                               and exits 3 when neither can.

# Build: compiler, meson, and the required libraries (JSON, XXH3, CRC-32);
# hwloc, liburing and libtorch are optional features that the default build
# uses. libtorch (the ATen shim's module, the libtorch-* loaders of the
# default benchmark): the C++ compiler and Debian's libtorch 1.13 CPU
# headers and CMake package (26 MB installed, plus -dev packages of glog,
# gflags, protobuf); its 131 MB of shared libraries come with python3-torch.
# Open MPI (optional feature mpi): run --mpi and --ranks (docs/mpi.md);
# mpirun (openmpi-bin) is also needed to run them.
CB_BUILD_PACKAGES="gcc pkg-config meson ninja-build libjansson-dev libxxhash-dev zlib1g-dev
libhwloc-dev liburing-dev g++ cmake libtorch-dev python3-torch
openmpi-bin libopenmpi-dev"
# Tests: the real torch and Python's xxhash for compatibility checks,
# clang and valgrind for the robustness checks.
# clang-format 14 checks the code's layout against .clang-format.
# openssh-server and sshfs: the sshfs storage profile (docs/storage.md).
CB_TEST_PACKAGES="python3 python3-torch python3-xxhash clang libclang-rt-dev valgrind
clang-format-14 openssh-server sshfs"
# Benchmark runs: charts, and the real torch and Python's xxhash for the
# Python peers (torch-load), which are otherwise skipped with that reason;
# mpirun for run --ranks.
# openssh-server and sshfs: run --storage sshfs (docs/storage.md).
CB_RUN_PACKAGES="gnuplot-nox python3 python3-torch python3-xxhash openmpi-bin
openssh-server sshfs"

cb_missing_packages() {
	local pkg missing=""
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $pkg"
	done
	echo "$missing"
}

cb_ensure_packages() {
	local missing
	missing=$(cb_missing_packages "$@")
	[ -z "$missing" ] && return 0
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "ckptbench: missing packages:$missing (this script installs them on Debian/Ubuntu only)" >&2
		exit 3
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			sudo="sudo"
		else
			echo "ckptbench: missing packages; run this, then try again:" >&2
			echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
			exit 3
		fi
	fi
	echo "ckptbench: installing$missing" >&2
	$sudo apt-get update -qq >/dev/null 2>&1 || true
	if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		$missing >/dev/null; then
		echo "ckptbench: apt-get could not install:$missing" >&2
		exit 3
	fi
}

# What a configure step found depends on: the installed packages, the
# pkg-config and CMake search paths, and the compiler. A build directory
# keeps the fingerprint it was configured under (ckptbench-deps.stamp), so
# a dependency installed after the first build (libtorch-dev by ./test.sh
# after ./run.sh, or by hand) is found on the next build, not silently left
# out: meson caches what it found and never looks again by itself.
cb_deps_fingerprint() {
	{
		printf 'CC=%s CXX=%s\n' "${CC:-}" "${CXX:-}"
		printf 'PKG_CONFIG_PATH=%s\n' "${PKG_CONFIG_PATH:-}"
		printf 'PKG_CONFIG_LIBDIR=%s\n' "${PKG_CONFIG_LIBDIR:-}"
		printf 'CMAKE_PREFIX_PATH=%s\n' "${CMAKE_PREFIX_PATH:-}"
		printf 'PATH=%s\n' "$PATH"
		command -v dpkg-query >/dev/null 2>&1 &&
			dpkg-query -W -f='${Package} ${Version} ${Status}\n' 2>/dev/null
		command -v pkg-config >/dev/null 2>&1 && pkg-config --list-all 2>/dev/null | sort
	} | cksum | cut -d' ' -f1
}

# Configures a build directory (again when the fingerprint above changed,
# keeping its options) : cb_configure DIR [MESON ARGS...]. The meson command
# line is echoed, so a log shows how each build was made.
cb_configure() {
	local dir=$1
	shift
	local stamp=$dir/ckptbench-deps.stamp fingerprint
	fingerprint=$(cb_deps_fingerprint)
	if [ -f "$dir/build.ninja" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$fingerprint" ]; then
		return 0
	fi
	local how=()
	if [ -f "$dir/build.ninja" ]; then
		how=(--reconfigure)
		echo "ckptbench: $dir: the dependencies changed since it was configured; reconfiguring" >&2
	fi
	echo "+ ${CC:+CC=$CC }meson setup ${how[*]} $dir $*" >&2
	meson setup "${how[@]}" "$dir" "$@" >"$dir.setup.log" 2>&1 || {
		cat "$dir.setup.log" >&2
		return 1
	}
	rm -f "$dir.setup.log"
	echo "$fingerprint" >"$stamp"
}

# Configures (see cb_configure) and compiles a build directory:
# cb_build DIR [MESON ARGS...]. The compiler's output is shown whenever it
# said anything (a warning), and in CI (CI=true) always; a quiet build
# prints nothing.
cb_build() {
	local dir=$1
	cb_configure "$@" || return 1
	local log=$dir.ninja.log
	if ! ninja -C "$dir" >"$log" 2>&1; then
		cat "$log" >&2
		return 1
	fi
	if [ "${CI:-}" = true ] || grep -q 'warning:' "$log"; then
		cat "$log" >&2
	fi
	rm -f "$log"
}
