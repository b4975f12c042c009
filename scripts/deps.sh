# Installs the Debian packages ckptbench needs; sourced by run.sh and test.sh.
#
#   cb_ensure_packages PKG...   installs what is missing: apt-get as root,
#                               sudo otherwise, or prints the exact command
#                               and exits 3 when neither can.

# Build: compiler, meson, and the required libraries (JSON, XXH3, CRC-32);
# hwloc and liburing are optional features that the default build uses.
CB_BUILD_PACKAGES="gcc pkg-config meson ninja-build libjansson-dev libxxhash-dev zlib1g-dev
libhwloc-dev liburing-dev"
# Tests: the real torch and Python's xxhash for compatibility checks,
# clang and valgrind for the robustness checks.
CB_TEST_PACKAGES="python3 python3-torch python3-xxhash clang libclang-rt-dev valgrind"
# libtorch (the ATen shim's module and its differential test): the C++
# compiler and Debian's libtorch 1.13 CPU headers and CMake package (26 MB
# installed, plus -dev packages of glog, gflags, protobuf); its 131 MB of
# shared libraries come with python3-torch already.
CB_TEST_PACKAGES="$CB_TEST_PACKAGES g++ libtorch-dev"
# Benchmark runs: charts, and the real torch and Python's xxhash for the
# Python peers (torch-load), which are otherwise skipped with that reason.
CB_RUN_PACKAGES="gnuplot-nox python3 python3-torch python3-xxhash"

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

# Configures (once) and compiles a build directory: cb_build DIR [MESON ARGS...]
cb_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log" >&2
			return 1
		}
		rm -f "$dir.setup.log"
	fi
	ninja -C "$dir" >"$dir.ninja.log" 2>&1 || {
		cat "$dir.ninja.log" >&2
		return 1
	}
	rm -f "$dir.ninja.log"
}
