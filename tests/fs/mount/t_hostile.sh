#!/usr/bin/env bash
# t_hostile.sh - hostile names, paths and xattrs through the mount: each gets
# a clean error (the right errno) and the daemon stays alive.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

mount_fs
R=$MNT/run
mkdir -p "$R/v" || fail "mkdir"
long=$(printf 'x%.0s' $(seq 1 256))
ok255=$(printf 'y%.0s' $(seq 1 255))

note "names"
expect_err "File name too long" mkdir "$MNT/$long"
expect_err "File name too long" mkdir "$R/$long"
expect_err "File name too long" touch "$R/v/$long"
expect_err "File name too long" stat "$R/v/$long"
touch "$R/v/$ok255" || fail "a 255-byte name"
expect_err "Invalid argument" mkdir "$MNT/$(printf 'bad\001name')"
expect_err "Invalid argument" touch "$R/v/$(printf 'new\nline')"
expect_err "Invalid argument" mkdir "$R/$(printf '\xff\xfe')"
expect_err "No such file" stat "$R/v/$(printf '\xff\xfe')"
touch "$R/v/-rf" "$R/v/sp ace" "$R/v/ünï—ç😀" || fail "legal odd names"
alive "names"

note "the tree's own names"
expect_err "exists" mkdir "$MNT/.stats"
expect_err "exists" mkdir "$R/latest"
expect_err "exists" mkdir "$R/v/.manifest"
expect_err "Operation not permitted" touch "$R/file-in-run"
expect_err "Operation not permitted" touch "$MNT/file-in-root"
expect_err "Not a directory" mkdir "$MNT/.stats/x"
expect_err "Permission denied" sh -c "echo x >'$R/v/.manifest'"
# removing an open version's .manifest succeeds (rm -r, rsync --delete); it
# is generated from the tree, so it is hidden until the commit (below) and
# the name stays reserved (tar -x of an archive holding it must not loop)
rm -f "$R/v/.manifest" || fail "rm -f .manifest of an open version"
expect_err "No such file" cat "$R/v/.manifest"
expect_err "Operation not permitted" touch "$R/v/.manifest"
ls -a "$R/v" | grep -qx '.manifest' && fail ".manifest listed after rm -f"
expect_err "Operation not permitted" mv "$R" "$MNT/run-renamed"
expect_err "No such file" ls "$MNT/nope/v"
alive "tree names"

note "deep paths"
d="$R/v"
for i in $(seq 1 60); do d="$d/d$i"; done
mkdir -p "$d" || fail "mkdir -p 60 levels"
echo deep >"$d/f" || fail "deep file"
[ "$(cat "$d/f")" = deep ] || fail "deep read"
mv "$R/v" "$R/v-done" || fail "commit with deep dirs"
grep -q '"state": *"committed"' "$R/v-done/.manifest" || fail "no .manifest after the commit"
[ "$(cat "${d/\/v\//\/v-done\/}/f")" = deep ] || fail "deep read after commit"
alive "deep"

note "xattrs"
mkdir "$R/w" || fail "mkdir w"
expect_err "Invalid argument" setfattr -n user.ckpt.commit -v 2 "$R/w"
expect_err "Invalid argument" setfattr -n user.ckpt.pinned -v yes "$R/w"
expect_err "Invalid argument" setfattr -n user.ckpt.keep_last -v -3 "$R"
expect_err "Invalid argument" setfattr -n user.ckpt.keep_last -v 99999999999 "$R"
expect_err "Operation not permitted" setfattr -n user.ckpt.state -v committed "$R/w"
expect_err "Operation not supported" setfattr -n user.other -v 1 "$R/w"
expect_err "No such attribute" getfattr -n user.ckpt.meta.none "$R/w"
expect_err "No such attribute" getfattr -n user.ckpt.xxh128 "$MNT"
big=$(head -c 60000 /dev/zero | tr '\0' 'a')
setfattr -n user.ckpt.meta.big -v "$big" "$R/w" || fail "a 60000-byte meta value"
[ "$(xattr user.ckpt.meta.big "$R/w" | wc -c)" = 60000 ] || fail "big meta read-back"
setfattr -x user.ckpt.meta.big "$R/w" || fail "remove meta"
expect_err "No such attribute" getfattr -n user.ckpt.meta.big "$R/w"
alive "xattrs"

note "renames"
mkdir "$MNT/other" && mkdir "$MNT/other/x" || fail "other run"
expect_err "cross-device" python3 -c "import os; os.rename('$R/w', '$MNT/other/w')"
touch "$R/w/f" || fail "touch"
expect_err "" python3 -c "import os; os.rename('$R/w', '$R/latest')"
python3 -c "import os; os.rename('$R/w', '$R/w')" || fail "rename to itself"
expect_err "Invalid argument" python3 -c "import os; os.rename('$R/w', '$R/w/sub')"
alive "renames"
umount_fs
echo PASS
