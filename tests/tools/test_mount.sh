#!/usr/bin/env bash
# test_mount.sh CKPT CKPTFS - the store commands (ls, show, diff, commit,
# policy, verify, gc) against a real mounted ckptfs: their output agrees with
# what the tree itself says (getfattr, xxhsum -H2), --json parses and carries
# the same facts, a flipped byte in the store makes `ckpt verify` exit 1 and
# name the file, gc through the mount (user.ckpt.gc) collects a deleted
# version's chunks while another is open, and gc --store refuses a mounted
# store but collects an unmounted one.
# Skips (77) when ckptfs was not built or FUSE is missing.
ckpt=${1:?usage: test_mount.sh CKPT CKPTFS}
if [ -z "${2:-}" ] || [ ! -x "$2" ]; then
	echo "SKIP: the ckptfs binary was not built (fs/fuse), so there is nothing to mount"
	exit 77
fi
# The mount tests' helpers: temp dir, mount_fs/umount_fs, cleanup on exit.
. "${CKPTFS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/fs/mount/lib.sh"
lib_init "$2"

C() { "$ckpt" --mount "$MNT" --state-dir "$T/state" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

head -c $((3 << 20)) /dev/urandom >"$T/same"
head -c $((1 << 20)) /dev/urandom >"$T/old"
head -c $((1 << 20)) /dev/urandom >"$T/new"
head -c 4096 /dev/urandom >"$T/gone"
head -c 5000 /dev/urandom >"$T/added"

mount_fs
mkdir -p "$MNT/r/v1" "$MNT/r/v2" || fail "mkdir"
cp "$T/same" "$MNT/r/v1/model.bin" && cp "$T/old" "$MNT/r/v1/opt.bin" &&
	cp "$T/gone" "$MNT/r/v1/gone.txt" || fail "writing v1"
setfattr -n user.ckpt.meta.val_loss -v 0.5 "$MNT/r/v1" || fail "meta v1"

note "commit"
out=$(C commit r/v1) || fail "ckpt commit r/v1: $out"
[ "$(xattr user.ckpt.state "$MNT/r/v1")" = committed ] || fail "v1 not committed after ckpt commit"
grep -q "committed .*r/v1 (seq [1-9]" <<<"$out" || fail "commit said: $out"
out=$(C commit r/v1) || fail "second commit failed: $out"
grep -q "already committed" <<<"$out" || fail "second commit said: $out"

cp "$T/same" "$MNT/r/v2/model.bin" && cp "$T/new" "$MNT/r/v2/opt.bin" &&
	cp "$T/added" "$MNT/r/v2/added.bin" || fail "writing v2"
setfattr -n user.ckpt.meta.val_loss -v 0.4 "$MNT/r/v2" || fail "meta v2"
C commit "$MNT/r/v2" >/dev/null || fail "ckpt commit of an absolute path"
mkdir "$MNT/r/v3" && echo open >"$MNT/r/v3/f" || fail "v3"
C commit r/v2/model.bin 2>"$T/err" && fail "commit of a file succeeded"
grep -q "not a version directory" "$T/err" || fail "commit of a file said: $(cat "$T/err")"

note "ls"
out=$(C ls) || fail "ckpt ls: $out"
grep -qE '^r +3 +v2 ' <<<"$out" || fail "ckpt ls: $out"
out=$(C ls r) || fail "ckpt ls r: $out"
echo "$out"
grep -qE '^v1 +committed +[0-9]+ +20[0-9-]+ [0-9:]+ UTC' <<<"$out" || fail "ls r: v1 row"
grep -qE '^v2 +committed .* 3 +latest' <<<"$out" || fail "ls r: v2 row"
grep -qE '^v3 +open ' <<<"$out" || fail "ls r: v3 row"
n=$(C ls r --json | json "len([v for v in d if v['state']=='committed'])") || fail "ls --json"
[ "$n" = 2 ] || fail "ls r --json: $n committed"
out=$(C ls r/v2) || fail "ls r/v2"
grep -q "$(xxh "$T/new") *opt.bin" <<<"$out" || fail "ls r/v2 lacks opt.bin's hash: $out"

note "show"
out=$(C show r/v2) || fail "ckpt show: $out"
echo "$out"
grep -q "State: *committed" <<<"$out" || fail "show: state"
grep -q "val_loss *0.4" <<<"$out" || fail "show: metadata"
for f in model.bin opt.bin added.bin; do
	h=$(xattr user.ckpt.xxh128 "$MNT/r/v2/$f")
	[ -n "$h" ] || fail "no xxh128 xattr on $f"
	grep -q "$h .*$f" <<<"$out" || fail "show lacks $f's hash $h"
done
h=$(C show r/v2 --json | json "[f['xxh128'] for f in d['files'] if f['path']=='model.bin'][0]")
[ "$h" = "$(xxh "$T/same")" ] || fail "show --json hash $h != xxhsum -H2"

note "diff"
out=$(C diff r/v1 v2) || fail "ckpt diff: $out"
echo "$out"
grep -qE '^same +3.0 MiB +model.bin' <<<"$out" || fail "diff: model.bin not same"
grep -qE '^changed .*opt.bin' <<<"$out" || fail "diff: opt.bin not changed"
grep -qE '^added .*added.bin' <<<"$out" || fail "diff: added.bin not added"
grep -qE '^removed .*gone.txt' <<<"$out" || fail "diff: gone.txt not removed"
grep -q "1 same, 1 changed, 1 added, 1 removed" <<<"$out" || fail "diff summary"
shared=$(C diff r/v1 r/v2 --json | json "d['shared_bytes']")
[ "$shared" -ge $((3 << 20)) ] || fail "diff: shared bytes $shared < the unchanged 3 MiB"
total=$(C diff r/v1 r/v2 --json | json "d['total_bytes_b']")
[ "$shared" -lt "$total" ] || fail "diff: shared $shared should be below total $total"

note "policy"
out=$(C policy r --keep-last 5 --keep-best 2 --metric val_loss:min --max-age-days 9) ||
	fail "policy set: $out"
[ "$(xattr user.ckpt.keep_last "$MNT/r")" = 5 ] || fail "keep_last xattr"
[ "$(xattr user.ckpt.metric "$MNT/r")" = val_loss:min ] || fail "metric xattr"
grep -q "Keep Last: *5" <<<"$out" || fail "policy output: $out"
pj=$(C policy r --json | json "d['keep_best'], d['max_age_days'], d['metric']")
[ "$pj" = "2 9 val_loss:min" ] ||
	fail "policy --json: $pj"
[ "$(readlink "$MNT/r/best")" = v2 ] || fail "best is not v2 after the metric"
C policy r/v1 --keep-last 1 2>"$T/err" && fail "policy on a version succeeded"
grep -q "not a run directory" "$T/err" || fail "policy on a version said: $(cat "$T/err")"

note "verify (good)"
out=$(C verify r) || fail "verify r: $out"
grep -q "2 versions verified: 2 ok, 0 corrupt, 1 not committed" <<<"$out" || fail "verify: $out"
[ "$(C verify --json | json "d['ok']")" = True ] || fail "verify --json not ok"

note "gc refuses a mounted store"
C gc --store "$STORE" 2>"$T/err" && fail "gc of a mounted store succeeded"
cat "$T/err"
grep -q "cannot open the store" "$T/err" || fail "gc said: $(cat "$T/err")"

note "gc through the mount (user.ckpt.gc) while r/v3 is open"
mkdir "$MNT/r/g1" && head -c 300000 /dev/urandom >"$MNT/r/g1/junk" && C commit r/g1 >/dev/null ||
	fail "making r/g1"
rm -r "$MNT/r/g1" || fail "rm -r r/g1"
echo more >>"$MNT/r/v3/f" || fail "appending to the open r/v3"
out=$(C gc) || fail "ckpt gc on the mount: $out"
echo "$out"
n=$(sed -n 's/.*removed \([0-9]*\) chunks.*/\1/p' <<<"$out")
[ -n "$n" ] && [ "$n" -ge 1 ] || fail "gc through the mount removed no chunk of the deleted r/g1: $out"
[ "$(C gc --json | json "d['chunks_removed']")" = 0 ] || fail "a second gc removed chunks"
# On a terminal gc says what it is doing while it runs (one setxattr that
# can take seconds), then clears that line before the result.
script -qec "'$ckpt' --mount '$MNT' --state-dir '$T/state' gc" /dev/null </dev/null >"$T/tty" 2>&1 ||
	fail "ckpt gc on a terminal: $(cat -v "$T/tty")"
grep -q "Collecting garbage in the store mounted at $MNT  | 0 s" "$T/tty" ||
	fail "ckpt gc on a terminal showed no progress: $(cat -v "$T/tty")"
grep -q $'\r\033\[Kgc of .*: removed 0 chunks' "$T/tty" ||
	fail "ckpt gc on a terminal did not clear its progress line: $(cat -v "$T/tty")"
[ -z "$(C gc 2>&1 >/dev/null)" ] || fail "ckpt gc without a terminal wrote to stderr"
[ "$(cat "$MNT/r/v3/f")" = "$(printf 'open\nmore')" ] || fail "the open r/v3 lost data to gc"
cmp -s "$T/new" "$MNT/r/v2/opt.bin" || fail "committed r/v2 changed after gc"
umount_fs

note "flip one byte of v2's opt.bin in the store"
python3 - "$T/new" "$STORE" <<'PY' || fail "could not find opt.bin's bytes in the store"
import os, sys
data = open(sys.argv[1], "rb").read()
needle = data[len(data) // 2:len(data) // 2 + 64]
for root, dirs, files in os.walk(sys.argv[2]):
    for name in files:
        p = os.path.join(root, name)
        with open(p, "r+b") as f:
            blob = f.read()
            i = blob.find(needle)
            if i >= 0:
                f.seek(i + 7)
                f.write(bytes([blob[i + 7] ^ 1]))
                sys.exit(0)
sys.exit(1)
PY
note "verify --store (unmounted) lists the bad chunk"
C verify --store "$STORE" r/v2 >"$T/out" && fail "verify --store of a corrupt version exited 0"
cat "$T/out"
grep -q "bad: r/v2/opt.bin" "$T/out" || fail "verify --store does not name opt.bin"

mount_fs
note "verify (corrupt)"
C verify r/v2 >"$T/out" && fail "verify of a corrupt version exited 0"
cat "$T/out"
grep -q "CORRUPT  r/v2" "$T/out" || fail "verify: no CORRUPT line"
grep -q "bad: opt.bin" "$T/out" || fail "verify does not name opt.bin"
grep -q "bad: model.bin" "$T/out" && fail "verify blames the good model.bin"
C verify r/v1 >/dev/null || fail "v1 no longer verifies"
[ "$(C verify r --json | json "[v['version'] for v in d['versions'] if not v['ok']]")" = "['r/v2']" ] ||
	fail "verify --json does not single out r/v2"
umount_fs

note "gc of the unmounted store"
out=$(C gc --store "$STORE") || fail "gc: $out"
grep -q "removed [0-9]* chunks" <<<"$out" || fail "gc said: $out"
[ "$(C gc --store "$STORE" --json | json "d['chunks_removed']")" = 0 ] || fail "second gc removed chunks"
C ls 2>"$T/err" && fail "ls of an unmounted store succeeded"
grep -q "no ckptfs is mounted" "$T/err" || fail "ls unmounted said: $(cat "$T/err")"
echo PASS
