#!/usr/bin/env bash
# t_git.sh - git inside an open version: `git clone`, commits, `git gc`,
# `git fsck`: exit 0 and the same history (commit and tree ids, fixed dates)
# and work tree as the same commands in a plain directory; the committed
# version is still a repository git reads (log, fsck, archive).
. "$(dirname "$0")/lib.sh"
lib_init "$@"

export HOME=$T GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$T/gitconfig
export GIT_AUTHOR_NAME=ckptfs GIT_AUTHOR_EMAIL=ckptfs@example.invalid
export GIT_COMMITTER_NAME=ckptfs GIT_COMMITTER_EMAIL=ckptfs@example.invalid
export GIT_AUTHOR_DATE='2024-01-02T03:04:05Z' GIT_COMMITTER_DATE='2024-01-02T03:04:05Z'
git config --global init.defaultBranch main
git config --global gc.auto 0

note "an origin repository"
O=$T/origin
git init -q "$O" || fail "git init"
head -c 200000 /dev/urandom >"$O/weights.bin"
printf '#!/bin/sh\necho train\n' >"$O/train.sh"
chmod 0755 "$O/train.sh"
echo "v1" >"$O/README"
git -C "$O" add -A && git -C "$O" commit -qm one || fail "origin commit"
echo "v2" >>"$O/README"
git -C "$O" commit -qam two || fail "origin commit 2"

head -c 100000 /dev/urandom >"$T/step-500.bin"
# work DIR: clone, two commits, gc, fsck in DIR/repo.
work() {
	local r=$1/repo
	git clone -q "$O" "$r" || return 1
	cp "$T/step-500.bin" "$r/step-500.bin"
	git -C "$r" add step-500.bin && git -C "$r" commit -qm "step 500" || return 1
	mkdir "$r/cfg" && echo "lr: 0.1" >"$r/cfg/a.yaml"
	git -C "$r" mv README README.md || return 1
	git -C "$r" add -A && git -C "$r" commit -qm "step 600" || return 1
	git -C "$r" tag v600 || return 1
	git -C "$r" gc -q --prune=now || return 1
	git -C "$r" fsck --full --strict 2>&1 || return 1
}
# history DIR: what must be equal.
history() {
	git -C "$1/repo" log --format='%H %T %s' --all
	git -C "$1/repo" show-ref
	git -C "$1/repo" count-objects -v | grep -E '^(count|in-pack|packs):'
	git -C "$1/repo" --no-optional-locks status --porcelain
}

mkdir "$T/plain"
work "$T/plain" >"$T/plain.out" || { cat "$T/plain.out"; fail "git in a plain directory"; }
history "$T/plain" >"$T/plain.hist" || fail "history of the plain repository"

mount_fs
V=$MNT/run/v.tmp
mkdir -p "$V" || fail "mkdir version"
note "git clone, commit, gc, fsck in an open version"
work "$V" >"$T/mnt.out" 2>&1 || { cat "$T/mnt.out"; fail "git in an open version"; }
history "$V" >"$T/mnt.hist" || fail "history in the open version"
diff "$T/plain.hist" "$T/mnt.hist" || fail "history differs from the plain directory's"
diff -r --exclude=.git "$T/plain/repo" "$V/repo" || fail "work tree differs"

note "commit; git reads the committed repository"
mv "$V" "$MNT/run/v" || fail "commit"
history "$MNT/run/v" >"$T/committed.hist" || fail "history in the committed version"
diff "$T/plain.hist" "$T/committed.hist" || fail "committed history differs"
git -C "$MNT/run/v/repo" fsck --full --strict || fail "git fsck of the committed repository"
git -C "$MNT/run/v/repo" archive v600 | tar -t >"$T/mnt.tar.ls" || fail "git archive"
git -C "$T/plain/repo" archive v600 | tar -t >"$T/plain.tar.ls"
diff "$T/plain.tar.ls" "$T/mnt.tar.ls" || fail "git archive lists"
umount_fs
echo PASS
