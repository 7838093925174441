#!/usr/bin/env bash
# t_daemon_log.sh - where a background ckptfs logs (docs/mount.md): with its
# stderr a regular file (as ckptd starts it, with its ckptd.log there) the
# daemon keeps writing there, one line each with a time and its pid, the
# store's lines (a corrupt chunk) with its own; with -f it writes to stderr.
# Before, a background daemon logged to syslog only and the store's lines
# went nowhere: under ckptd without a syslog daemon (a container) the
# reason of every failed commit was lost.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

LOG=$T/bg.log
echo "a line that was there before" >"$LOG"
# shellcheck disable=SC2086 # one word per option
"$CKPTFS" "$STORE" "$MNT" ${CKPTFS_TEST_OPTS:-} 2>>"$LOG" || fail "background mount failed: $(cat "$LOG")"
mountpoint -q "$MNT" || fail "not mounted after the parent exited"
PID=$(sed -n 's/.* ckptfs\[\([0-9]*\)\]: mounted .*/\1/p' "$LOG" | head -1)
[ -n "$PID" ] && kill -0 "$PID" || fail "no 'mounted' line with the daemon's pid: $(cat "$LOG")"
LINE='^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z ckptfs\['$PID'\]: '

note "a failed commit's reason, in the file"
mkdir -p "$MNT/r/v.tmp" || fail "mkdir"
exec 7>"$MNT/r/v.tmp/model.pt"
echo weights >&7
expect_err "Device or resource busy" mv "$MNT/r/v.tmp" "$MNT/r/v"
grep -qE "${LINE}commit of r/v.tmp as v failed: version r/v.tmp has 1 file still open" "$LOG" ||
	fail "the EBUSY reason is not in the log: $(tail -3 "$LOG")"
exec 7>&-
mv "$MNT/r/v.tmp" "$MNT/r/v" || fail "rename after the close"

note "a store line (a chunk rotted on disk), in the file"
head -c $((2 << 20)) /dev/urandom >"$T/b"
mkdir "$MNT/r/w.tmp" && cp "$T/b" "$MNT/r/w.tmp/data" && mv "$MNT/r/w.tmp" "$MNT/r/w" || fail "w"
flip_stored "$T/b" 777777 >/dev/null || fail "could not find w's bytes in the store"
if [ -w /proc/sys/vm/drop_caches ]; then
	drop
	expect_err "Input/output error" cat "$MNT/r/w/data"
	grep -qE "${LINE}verify: chunk [0-9a-f]{32} of r/w/data .*version marked corrupt" "$LOG" ||
		fail "the store's line is not in the log: $(tail -3 "$LOG")"
else
	note "no drop_caches (not root): the store line is not checked"
fi
head -1 "$LOG" | grep -qx "a line that was there before" || fail "the log was not appended to"
check_log "$LOG"

fusermount3 -u "$MNT" || fail "unmount"
for _ in $(seq 1 200); do
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$PID" 2>/dev/null && fail "the daemon did not exit after unmount"
grep -qE "${LINE}unmounting " "$LOG" || fail "no 'unmounting' line: $(tail -3 "$LOG")"
echo "PASS"
