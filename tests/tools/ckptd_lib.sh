# shellcheck shell=bash
# ckptd_lib.sh - shared setup of the tools tests that drive the real ckptd
# through ckpt (sourced, not run).
#
#   . "$(dirname "$0")/ckptd_lib.sh"; ckptd_init CKPT CKPTD CKPTFS [BINARY...]
#
# Skips (77) when one of the binaries is not built or FUSE is missing. Then:
# $T a temp dir, $T/state the state dir (CKPT_STATE_DIR, with dist/ckptd.yaml
# and this build's ckptfs as config.yaml), CKPTD exported for `ckpt run` to
# start, $src the source tree; on exit every RUNNING operation is cancelled,
# ckptd stopped, its mount taken down, $runpid (a background ckpt) killed,
# the end of ckptd.log shown when the test failed, and $T removed.

ckptd_cleanup() {
	local rc=$?

	[ -n "${runpid:-}" ] && kill "$runpid" 2>/dev/null
	# Trainers outlive ckptd by design: cancel what still runs, then stop it.
	for op in $("$ckpt" ops list --status RUNNING --json 2>/dev/null |
		python3 -c 'import json,sys; [print(o["id"]) for o in json.load(sys.stdin)["operations"]]' 2>/dev/null); do
		"$ckpt" ops cancel "$op" >/dev/null 2>&1
	done
	for _ in $(seq 1 100); do
		[ -z "$("$ckpt" ops list --status RUNNING --json 2>/dev/null | grep '"id"')" ] && break
		sleep 0.1
	done
	"$ckpt" daemon stop >/dev/null 2>&1
	# ckptd leaves its mount (and trainers) running by design; take it down.
	fusermount3 -u "$T/state/mnt" 2>/dev/null || umount -l "$T/state/mnt" 2>/dev/null
	if [ "$rc" -ne 0 ] && ! stat "$T/state/mnt/.stats" >/dev/null 2>&1; then
		echo "--- note: the ckptfs mount ckptd made is gone:" \
			"$(stat "$T/state/mnt/.stats" 2>&1 | head -1)"
	fi
	if [ "$rc" -ne 0 ] && [ -f "$T/state/ckptd.log" ]; then
		echo "--- ckptd.log, last lines:"
		tail -n 30 "$T/state/ckptd.log"
	fi
	rm -rf "$T"
	exit "$rc"
}

ckptd_init() {
	local b

	ckpt=$1
	ckptd=${2:-}
	ckptfs=${3:-}
	for b in "${@:2}"; do
		if [ -z "$b" ] || [ ! -x "$b" ]; then
			echo "SKIP: ckptd, ckptfs or a binary the test runs is not built; nothing to test against"
			exit 77
		fi
	done
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
		echo "SKIP: /dev/fuse or fusermount3 is missing; ckptd needs a ckptfs mount"
		exit 77
	fi
	src=${CKPTFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
	T=$(mktemp -d /tmp/ckpt-ckptd.XXXXXX) || exit 1
	export CKPT_STATE_DIR=$T/state CKPTD=$ckptd
	unset CKPT_SOCKET CKPT_MOUNT
	runpid=
	trap ckptd_cleanup EXIT
	trap 'exit 1' INT TERM
	mkdir -p "$T/state"
	{ cat "$src/dist/ckptd.yaml"; echo "ckptfs: $ckptfs"; } >"$T/state/config.yaml"
}

fail() {
	echo "FAIL: $*"
	exit 1
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
