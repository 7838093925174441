#!/usr/bin/env bash
# t_owner.sh - chmod, chown and the set-id bits inside versions (SPEC §2,
# issue 12), on a mount by root with allow_other, for root (the owner) and
# another user (uid 65534): the owner may chmod (set-id and sticky bits
# included) and chown to the mount's owner, inside open versions and on the
# open version directory; another user may not (EPERM), nor may anyone chown
# to another user; S_ISUID and S_ISGID (with group execute) are cleared when
# another user writes (write-only and read-write descriptors, an open with
# O_TRUNC, truncate), on the default mount and with open_cache=on, and kept
# when the owner writes; committed versions stay read-only (EROFS) for root
# whatever the mode bits say.
. "$(dirname "$0")/lib.sh"
lib_init "$@"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a second user, allow_other)"; exit 77; }
chmod 711 "$T" # mktemp made it 0700: let uid 65534 reach the mount
PY=/usr/bin/python3 # not a per-user shim: uid 65534 runs it too
other() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
mode() { stat -c %a "$1"; }

for opts in "" "-o open_cache=on"; do
	note "mount -o allow_other ${opts}"
	# shellcheck disable=SC2086
	mount_fs -o allow_other $opts
	R=$MNT/run
	mkdir -p "$R" || fail "mkdir run"
	V=$R/v
	mkdir "$V" "$V/d" && echo x >"$V/f" || fail "mkdir version"

	note "the owner: chmod and chown to the owner"
	chmod 4755 "$V/f" && [ "$(mode "$V/f")" = 4755 ] || fail "chmod 4755 of a file: $(mode "$V/f")"
	chmod 2775 "$V/d" && [ "$(mode "$V/d")" = 2775 ] || fail "chmod 2775 of a directory: $(mode "$V/d")"
	chmod 1777 "$V" && [ "$(mode "$V")" = 1777 ] || fail "chmod 1777 of the version: $(mode "$V")"
	chmod 0755 "$V" || fail "chmod 0755 of the version"
	chown root:root "$V" "$V/f" "$V/d" || fail "chown to the mount's owner"
	chown -R 0:0 "$V" || fail "chown -R to the mount's owner"
	# chown clears S_ISUID of a regular file, root's too (Linux, ext4)
	[ "$(mode "$V/f")" = 755 ] || fail "chown left mode $(mode "$V/f") (ext4: 755)"
	chmod 4755 "$V/f" || fail "chmod 4755 again"
	expect_err "Operation not permitted" chown 12345 "$V/f"
	expect_err "Operation not permitted" chown :12345 "$V/f"
	expect_err "Operation not permitted" chown 12345:12345 "$V"

	note "another user: no chmod, no chown"
	expect_err "Operation not permitted" other chmod 777 "$V/f"
	expect_err "Operation not permitted" other chmod 777 "$V"
	expect_err "Operation not permitted" other chown 65534 "$V/f"
	[ "$(mode "$V/f")" = 4755 ] || fail "a refused chmod changed the mode"

	note "set-id bits cleared when another user writes"
	suid() { # WHAT CMD...: CMD as uid 65534 on a 06777 file clears both bits
		local what=$1
		shift
		chmod 6777 "$V/f" || fail "chmod 6777"
		other "$@" || fail "$what as uid 65534 failed"
		[ "$(mode "$V/f")" = 777 ] || fail "$what by another user left mode $(mode "$V/f")"
	}
	suid "an append (O_WRONLY)" sh -c "echo y >>'$V/f'"
	suid "a write through O_RDWR" "$PY" -c "import os; fd = os.open('$V/f', os.O_RDWR); os.pwrite(fd, b'z', 0); os.close(fd)"
	suid "an open with O_TRUNC" sh -c ": >'$V/f'"
	suid "truncate" truncate -s 10 "$V/f"
	chmod 2767 "$V/f" && other sh -c "echo y >>'$V/f'" || fail "write to 2767"
	[ "$(mode "$V/f")" = 2767 ] || fail "S_ISGID without group execute was cleared: $(mode "$V/f")"
	chmod 6777 "$V/f" && echo y >>"$V/f" && : >"$V/f" || fail "root's writes"
	[ "$(mode "$V/f")" = 6777 ] || fail "the owner's write changed the mode to $(mode "$V/f")"

	note "committed: EROFS for root whatever the modes"
	echo g >"$V/g" && chmod 0666 "$V/g" || fail "g"
	mv "$V" "$R/c" || fail "commit"
	C=$R/c
	expect_err "Read-only file system" chmod 0700 "$C/g"
	expect_err "Read-only file system" chmod 0777 "$C"
	expect_err "Read-only file system" chown 0:0 "$C"
	expect_err "Read-only file system" sh -c "echo >>'$C/g'"
	expect_err "Read-only file system" sh -c ": >'$C/f'"
	expect_err "Read-only file system" touch "$C/g"
	expect_err "Operation not permitted" chown 12345 "$C/g"
	expect_err "Operation not permitted" other chmod 777 "$C/g"
	[ "$(mode "$C/g")" = 444 ] || fail "committed g has mode $(mode "$C/g")"
	[ "$(mode "$C/f")" = 6555 ] || fail "committed f has mode $(mode "$C/f")"
	alive "after the owner checks"
	umount_fs
	rm -rf "$STORE"
done
echo "PASS"
