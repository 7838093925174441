#!/usr/bin/env bash
# test_completion.sh CKPT CKPTFS - dist/ckpt.bash, loaded into bash and asked
# the way bash asks (COMP_WORDS, COMP_CWORD, _ckpt): commands after global
# options (`ckpt --state-dir D <TAB>` offers commands, not options), the
# values of global options, sub-commands, operation ids from the ckptd that
# --state-dir names (a fake one serving docs/api.md's shapes), and RUN/,
# RUN/VERSION/, RUN/VERSION/FILE from a real ckptfs mount in the state dir
# named on the line (or by CKPT_STATE_DIR): completion asks ckpt where that
# is, it does not guess. Skips (77) without ckptfs or FUSE.
ckpt=${1:?usage: test_completion.sh CKPT CKPTFS}
if [ -z "${2:-}" ] || [ ! -x "$2" ]; then
	echo "SKIP: the ckptfs binary was not built (fs/fuse), so there is nothing to mount"
	exit 77
fi
src=${CKPTFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src/tests/fs/mount/lib.sh"
lib_init "$2"
# The state dir is $T: its mnt/ is the mount, its ckptd.sock the fake ckptd.
# Nothing is found by default: HOME is empty, no variable points anywhere.
export HOME=$T/home PATH=$(dirname "$ckpt"):$PATH
unset CKPT_STATE_DIR CKPT_SOCKET CKPT_MOUNT XDG_STATE_HOME
mkdir -p "$HOME" "$T/other"
fails=0

# comp WORD...: the completions of the last word (one per line).
comp() {
	bash -c '
		complete() { :; }
		. "$1"
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		_ckpt
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$src/dist/ckpt.bash" "$@"
}
# want "WORDS" LINE...: every LINE is among the completions of WORDS.
want() {
	local words=$1 got l
	shift
	read -ra w <<<"$words"
	[ "${words: -1}" = " " ] && w+=("")
	got=$(comp "${w[@]}")
	for l in "$@"; do
		if ! grep -qxF -- "$l" <<<"$got"; then
			echo "FAIL: completion of '$words': no '$l' in:"
			sed 's/^/    /' <<<"$got"
			fails=$((fails + 1))
		fi
	done
}
# none "WORDS" PATTERN: no completion of WORDS matches PATTERN (grep -E).
none() {
	local words=$1 got
	read -ra w <<<"$words"
	[ "${words: -1}" = " " ] && w+=("")
	got=$(comp "${w[@]}")
	if grep -qE -- "$2" <<<"$got"; then
		echo "FAIL: completion of '$words' offers /$2/:"
		sed 's/^/    /' <<<"$got"
		fails=$((fails + 1))
	fi
}

note "commands, also after global options"
want "ckpt " run ops checkpoints ls gc daemon help
none "ckpt " '^-'
want "ckpt --state-dir $T " run ops checkpoints
none "ckpt --state-dir $T " '^-'
want "ckpt --state-dir=$T --json che" checkpoints
want "ckpt --socket $T/x.sock --mount $T/mnt -q o" ops
want "ckpt --" --state-dir --socket --mount --json
want "ckpt help " ops checkpoints
want "ckpt --state-dir $T/" "$T/other" "$T/mnt"
want "ckpt --state-dir $T ops " list status resume cancel
want "ckpt --state-dir $T ops --json st" status
want "ckpt --state-dir $T checkpoints " show delete stats cleanup
want "ckpt --state-dir $T daemon s" status stop
want "ckpt --state-dir $T ops status --" --json --follow
want "ckpt --state-dir $T ops metrics x --" --csv --resolution --after
want "ckpt ops metrics x --resolution " step 30s 5m 1h

note "operation ids from the ckptd of the state dir on the line"
python3 "$src/tests/tools/fake_ckptd.py" "$T/ckptd.sock" "$src/tests/tools/routes.json" \
	"$T/requests.log" "TMP=$T" &
FAKE=$!
for _ in $(seq 1 100); do [ -S "$T/ckptd.sock" ] && break; sleep 0.05; done
want "ckpt --state-dir $T ops status " op_training_20241213_143022_abc123
want "ckpt ops --state-dir $T cancel op_training_20241215" op_training_20241215_143000_0a1b2c
want "ckpt --state-dir $T checkpoints show op_" op_training_20241213_143022_abc123
none "ckpt ops status " op_training
kill "$FAKE" 2>/dev/null
wait "$FAKE" 2>/dev/null

note "RUN/VERSION/FILE paths from the mount of the state dir on the line"
mount_fs
mkdir -p "$MNT/run1/v1/sub" "$MNT/run2" || fail "mkdir"
echo a >"$MNT/run1/v1/model.bin" && echo b >"$MNT/run1/v1/sub/opt.bin" || fail "write"
"$ckpt" --mount "$MNT" commit run1/v1 >/dev/null || fail "commit"
want "ckpt --state-dir $T ls " run1/ run2/
want "ckpt --state-dir $T show run1/" run1/v1/
want "ckpt --state-dir $T verify run1/v1/" run1/v1/model.bin run1/v1/sub/opt.bin
want "ckpt --state-dir $T verify run1/v1/s" run1/v1/sub/opt.bin
none "ckpt --state-dir $T verify run1/v1/s" model.bin
want "ckpt --mount $MNT diff run1/v1 r" run1/ run2/
want "ckpt diff --state-dir $T run1/v1 run" run1/ run2/
CKPT_STATE_DIR=$T want "ckpt ls r" run1/ run2/
none "ckpt ls r" run
none "ckpt --state-dir $T/other ls r" run
umount_fs

if [ $fails -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "completion: all checks passed"
