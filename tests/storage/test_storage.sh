#!/bin/bash
# Storage profiles (docs/storage.md), end to end, as root: each profile comes
# up and goes down leaving nothing behind; a run killed with SIGKILL in the
# middle of a trial leaves nothing either (its guardian); the throttled
# profile reads cold at its set rate; sshfs loads verify byte for byte; and
# without root, FUSE or the blkio controller a profile is skipped with its
# reason while the run goes on.
#
# Usage: test_storage.sh PART, PART one of updown, crash, rate, sshfs, skips.
# Environment: CKPTBENCH (the binary), CKPTBENCH_SCRATCH (a directory on a
# real disk: the throttled image goes beside the dataset). Exit 77 without
# root or without the tools.
. "$(dirname "$0")/../cli/lib.sh"
part=${1:?usage: test_storage.sh updown|crash|rate|sshfs|skips}
B=$CKPTBENCH
STATE=/run/ckptbench/storage

if [ "$(id -u)" -ne 0 ]; then
	echo "storage tests need root (mounts, loop devices, cgroups)" >&2
	exit 77
fi
for tool in losetup mkfs.ext4 sshd sshfs ssh-keygen; do
	if ! PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null; then
		echo "$tool not installed (scripts/deps.sh's CB_TEST_PACKAGES has it)" >&2
		exit 77
	fi
done

# A dataset of 128 MiB on the build directory's disk, made once, readable
# by nobody (the skips part runs a command as nobody).
SCRATCH=${CKPTBENCH_SCRATCH:-$(dirname "$B")/storage-scratch}
DATA=$SCRATCH/data
DS=llama-128M-F16-s1
export CKPTBENCH_DATA=$DATA
if [ ! -f "$DATA/$DS/manifest.json" ]; then
	mkdir -p "$DATA"
	"$B" gen --preset llama --size 128M -o "$DATA" --quiet --no-sync >/dev/null ||
		{ echo "gen failed" >&2; exit 1; }
fi
chmod 755 "$SCRATCH" "$DATA" "$CB_TMP"

# Nothing of ours is left: no mount, loop device, image, cgroup, process
# (sshd, sshfs, guardian) or state directory.
nothing_left() {
	local what=$1 left=""
	grep -q " $STATE/" /proc/mounts && left="$left mounts:$(grep " $STATE/" /proc/mounts | cut -d' ' -f2)"
	losetup -a | grep -q '\.ckptbench-' && left="$left loop:$(losetup -a | grep '\.ckptbench-')"
	ls "$DATA"/.ckptbench-*.img >/dev/null 2>&1 && left="$left images"
	ls -d /sys/fs/cgroup/blkio/ckptbench-* /sys/fs/cgroup/ckptbench-* >/dev/null 2>&1 &&
		left="$left cgroups"
	pgrep -f "$STATE/" >/dev/null && left="$left processes:$(pgrep -af "$STATE/" | head -3)"
	pgrep -x ckptbench-guard >/dev/null && left="$left guardian"
	[ -n "$(ls -A "$STATE" 2>/dev/null)" ] && left="$left state:$(ls "$STATE")"
	cb_checks=$((cb_checks + 1))
	[ -z "$left" ] || fail "$what: left behind:$left"
}

# Polls (up to $2 tenths of a second) until nothing is left; then checks.
wait_nothing_left() {
	local i
	for ((i = 0; i < $2; i++)); do
		if ! pgrep -x ckptbench-guard >/dev/null && [ -z "$(ls -A "$STATE" 2>/dev/null)" ]; then
			break
		fi
		sleep 0.1
	done
	nothing_left "$1"
}

# A results file's cells as "dataset status reason" lines.
cells() {
	$PY - "$1" <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1]))["cells"]:
    print(c["dataset"], c["loader"], c["cache"], c["status"], c["reason"] or "")
EOF
}

"$B" storage down >/dev/null 2>&1 # what an earlier, failed test left
nothing_left "before the test"

case $part in
updown)
	# Each profile up (the dataset where it says, byte for byte), listed,
	# then down.
	for profile in tmpfs sata-ssd throttled:200M,500 nvme sshfs; do
		expect_status 0 "$B" storage up "$profile" --datasets "$DS" || continue
		where=$(sed -n "2s/^ *//p" "$CB_TMP/out")
		cb_checks=$((cb_checks + 1))
		cmp -s "$where/model.safetensors" "$DATA/$DS/model.safetensors" ||
			fail "$profile: $where/model.safetensors differs from the original"
		expect_status 0 "$B" storage status
		grep -q " $profile " "$CB_TMP/out" || fail "$profile: not in storage status"
		case $profile in
		sata-ssd | throttled:*)
			cg=$(ls -d /sys/fs/cgroup/blkio/ckptbench-* 2>/dev/null | head -1)
			want=$([ "$profile" = sata-ssd ] && echo 550000000 || echo $((200 << 20)))
			cb_checks=$((cb_checks + 1))
			grep -q " $want\$" "$cg/blkio.throttle.read_bps_device" 2>/dev/null ||
				fail "$profile: no read_bps_device of $want in $cg"
			;;
		esac
		expect_status 0 "$B" storage down
		nothing_left "$profile up and down"
	done
	# A bad profile is a usage error.
	expect_status 2 "$B" storage up throttled:fast
	expect_stderr_line "bad storage profile"
	;;
crash)
	# kill -9 of a run in the middle of a trial: the guardian undoes the
	# profile, kills the orphaned trial and leaves.
	for profile in throttled:100M sshfs tmpfs; do
		"$B" run --storage "$profile" --loaders safetensors-read --datasets "$DS" \
			--cache cold --repeat 1000 --warmup 0 --no-calibrate --quiet \
			-o "$CB_TMP/crash.json" --force >/dev/null 2>"$CB_TMP/crash.err" &
		run_pid=$!
		# A trial child loading from the profile's mount (up to 30 s). On
		# tmpfs a trial lasts milliseconds: look often, so as not to miss
		# them all between two looks.
		for ((i = 0; i < 3000; i++)); do
			pgrep -f "trial --loader safetensors-read --path $STATE/" >/dev/null && break
			sleep 0.01
		done
		cb_checks=$((cb_checks + 1))
		pgrep -f "trial --loader safetensors-read --path $STATE/" >/dev/null ||
			fail "$profile: no trial started: $(cat "$CB_TMP/crash.err")"
		kill -9 "$run_pid"
		wait "$run_pid" 2>/dev/null
		wait_nothing_left "$profile after kill -9 of the run" 200
	done
	;;
rate)
	# Cold loads through throttled:100M read at 100 MiB/s, within 15%.
	expect_status 0 "$B" run --storage throttled:100M --loaders safetensors-read \
		--datasets "$DS" --cache cold --repeat 3 --warmup 0 --no-calibrate --quiet \
		-o "$CB_TMP/rate.json"
	$PY - "$CB_TMP/rate.json" >"$CB_TMP/rate" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["cells"][0]
rates = [c["model_bytes"] / t["wall_s"] for t in c["trials"] if t["outcome"] == "ok"]
rates.sort()
print(rates[len(rates) // 2] if rates else 0, c["storage"]["rate_bytes_per_s"])
EOF
	read -r measured set <"$CB_TMP/rate"
	echo "throttled:100M: cold load at $measured bytes/s, set $set" >&2
	cb_checks=$((cb_checks + 1))
	$PY -c "import sys; m, s = float(sys.argv[1]), float(sys.argv[2]); sys.exit(not abs(m - s) <= 0.15 * s)" \
		"$measured" "$set" || fail "throttled:100M read cold at $measured bytes/s, set $set"
	wait_nothing_left "after the rate run" 50
	;;
sshfs)
	# Through sshfs both formats load and verify against the manifest.
	expect_status 0 "$B" run --storage sshfs --loaders safetensors-read,pickle \
		--datasets "$DS" --cache cold,warm --repeat 1 --warmup 0 --no-calibrate --quiet \
		-o "$CB_TMP/sshfs.json"
	$PY - "$CB_TMP/sshfs.json" >"$CB_TMP/sshfs" <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1]))["cells"]:
    outcomes = [t["outcome"] for t in c["trials"]]
    ok = c["status"] == "ok" and outcomes == ["ok"] and all(t["verified"] for t in c["trials"])
    ok = ok and c["storage"]["fstype"] == "fuse.sshfs"
    print("ok" if ok else "bad", c["dataset"], c["loader"], c["cache"], outcomes, c["reason"])
EOF
	cb_checks=$((cb_checks + 1))
	[ "$(grep -c '^ok ' "$CB_TMP/sshfs")" = 4 ] || fail "sshfs cells: $(cat "$CB_TMP/sshfs")"
	wait_nothing_left "after the sshfs run" 50
	;;
skips)
	# Each way a profile cannot be had here: the profile's cells are
	# skipped with the reason, the local ones run, the run exits 0.
	common=(--loaders safetensors-read --datasets "$DS" --cache cold --repeat 1 --warmup 0
		--no-calibrate --quiet)
	check_skip() { # NAME FILE PROFILE REASON
		cells "$2" >"$CB_TMP/cells"
		cb_checks=$((cb_checks + 1))
		grep -q "^$DS@$3 .* skipped storage $3: .*$4" "$CB_TMP/cells" ||
			fail "$1: $3 not skipped for '$4': $(cat "$CB_TMP/cells")"
		grep -q "^$DS@local .* ok" "$CB_TMP/cells" ||
			fail "$1: the local cells did not run: $(cat "$CB_TMP/cells")"
	}
	# Not root: setpriv drops to nobody for real.
	mkdir -m 777 "$CB_TMP/nobody"
	expect_status 0 setpriv --reuid=65534 --regid=65534 --clear-groups \
		env CKPTBENCH_DATA="$DATA" "$B" run --storage tmpfs,local "${common[@]}" \
		-o "$CB_TMP/nobody/r.json"
	check_skip "as nobody" "$CB_TMP/nobody/r.json" tmpfs "needs root"
	# No FUSE: the devices cgroup denies /dev/fuse (c 10:229) to the run,
	# as a container without the device would.
	devcg=/sys/fs/cgroup/devices/ckptbench-test-nofuse-$$
	if [ -d /sys/fs/cgroup/devices ] && mkdir "$devcg" 2>/dev/null; then
		echo 'c 10:229 rwm' >"$devcg/devices.deny"
		expect_status 0 sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$devcg" \
			"$B" run --storage sshfs,local "${common[@]}" -o "$CB_TMP/nofuse.json"
		check_skip "without /dev/fuse" "$CB_TMP/nofuse.json" sshfs "no FUSE here"
		rmdir "$devcg"
	else
		echo "no devices cgroup (v1) to deny /dev/fuse with: that skip is not checked" >&2
	fi
	# No blkio controller: the run in a mount namespace where the blkio
	# hierarchy is unmounted (and cgroup v2 has no io controller here).
	if grep -q ' /sys/fs/cgroup/blkio ' /proc/mounts; then
		expect_status 0 unshare -m sh -c 'umount -l /sys/fs/cgroup/blkio && exec "$@"' sh \
			"$B" run --storage throttled:100M,local "${common[@]}" -o "$CB_TMP/noblkio.json"
		check_skip "without blkio" "$CB_TMP/noblkio.json" "throttled:100M" "no blkio cgroup"
	else
		echo "blkio is not a mount of its own here: that skip is not checked" >&2
	fi
	# nfs: this kernel has no NFS server (where it has, it is not made yet).
	expect_status 0 "$B" run --storage nfs,local "${common[@]}" -o "$CB_TMP/nfs.json"
	check_skip "nfs" "$CB_TMP/nfs.json" nfs "NFS server\|not implemented"
	wait_nothing_left "after the skips" 50
	;;
*)
	echo "unknown part $part" >&2
	exit 2
	;;
esac
finish
