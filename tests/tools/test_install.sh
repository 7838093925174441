#!/usr/bin/env bash
# test_install.sh - `meson install --destdir` puts the binaries, systemd
# units, man pages, bash completion and examples in place, and the installed
# binaries run from the destdir. Reads the build dir only (--no-rebuild): meson
# test has built everything before the tests start.
set -u
build=${CKPTFS_BUILD_ROOT:?run me from meson test (CKPTFS_BUILD_ROOT)}
dest=$(mktemp -d /tmp/ckpt-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

if ! out=$(meson install -C "$build" --destdir "$dest" --no-rebuild 2>&1); then
	echo "$out" | tail -20
	echo "FAIL: meson install --destdir failed"
	exit 1
fi
prefix=$(meson introspect "$build" --buildoptions |
	python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
root=$dest$prefix
echo "installed into $root"
(cd "$dest" && find . -type f | sort | sed 's/^/  /')

bin=$root/bin
[ -x "$bin/ckpt" ] || fail "ckpt is not installed in $bin"
"$bin/ckpt" --help | grep -q "usage: ckpt" || fail "installed ckpt --help"
"$bin/ckpt" --version | grep -q "^ckpt " || fail "installed ckpt --version"
"$bin/ckpt" ops --help | grep -q "usage: ckpt ops" || fail "installed ckpt ops --help"
for b in ckptfs ckptd ckpt-train; do
	# Each is installed when its component is built; when it is, it runs.
	if [ -e "$build/fs/fuse/$b" ] || [ -e "$build/supervisor/$b" ] || [ -e "$build/trainer/$b" ]; then
		[ -x "$bin/$b" ] || fail "$b was built but not installed"
		"$bin/$b" --help >/dev/null 2>&1 || fail "installed $b --help exited $?"
	else
		echo "note: $b is not built in $build; not checked"
	fi
done

man=$root/share/man
for m in man1/ckpt.1 man1/ckptd.1 man1/ckptfs.1 man1/ckpt-train.1 man5/ckpt-job.5; do
	[ -s "$man/$m" ] || fail "man page $m is missing"
done
if [ -s "$man/man1/ckpt.1" ] && command -v man >/dev/null; then
	MANPAGER=cat man -l "$man/man1/ckpt.1" 2>/dev/null | grep -q "ckpt ops list" ||
		fail "ckpt.1 does not render or lacks 'ckpt ops list'"
fi
grep -q '^\.TH' "$man/man1/ckpt.1" 2>/dev/null || fail "ckpt.1 is not a roff page"

units=$root/lib/systemd/system
[ -s "$units/ckptd.service" ] || fail "ckptd.service is missing"
[ -s "$units/ckptfs@.service" ] || fail "ckptfs@.service is missing"
grep -q "^ExecStart=$prefix/bin/ckptd " "$units/ckptd.service" 2>/dev/null ||
	fail "ckptd.service does not start $prefix/bin/ckptd"
grep -q "^ExecStart=$prefix/bin/ckptfs " "$units/ckptfs@.service" 2>/dev/null ||
	fail "ckptfs@.service does not start $prefix/bin/ckptfs"
uunits=$root/lib/systemd/user
[ -s "$uunits/ckptd.service" ] || fail "the systemctl --user unit lib/systemd/user/ckptd.service is missing"
grep -q "^ExecStart=$prefix/bin/ckptd --state-dir %S/ckptfs" "$uunits/ckptd.service" 2>/dev/null ||
	fail "the user ckptd.service does not start $prefix/bin/ckptd in %S/ckptfs"
# Trainers run in ckptd's cgroup: no device list may shut them out of the
# GPUs (any DeviceAllow= closes every device not on it).
for u in "$units/ckptd.service" "$uunits/ckptd.service"; do
	bad=$(grep -E '^(DeviceAllow|DevicePolicy|PrivateDevices)=' "$u" 2>/dev/null |
		grep -vE '^DevicePolicy=auto$|^PrivateDevices=(no|false)$')
	[ -z "$bad" ] || fail "$u keeps trainers off the GPUs: $bad"
done
if command -v systemd-analyze >/dev/null; then
	# verify wants the binaries at their real paths: check copies that
	# name the installed ones in the destdir.
	run=$(mktemp -d /tmp/ckpt-install-run.XXXXXX)
	chmod 700 "$run"
	for mode in system user; do
		u=$units/ckptd.service
		[ $mode = user ] && u=$uunits/ckptd.service
		[ -s "$u" ] || continue
		mkdir -p "$run/$mode"
		sed "s|$prefix/bin/|$bin/|g" "$u" >"$run/$mode/ckptd.service"
		flags=()
		[ $mode = user ] && flags=(--user)
		if ! out=$(MANPATH=$root/share/man XDG_RUNTIME_DIR=$run systemd-analyze "${flags[@]}" verify \
			"$run/$mode/ckptd.service" 2>&1) || grep -qi "unknown\|invalid\|ignoring" <<<"$out"; then
			fail "systemd-analyze ${flags[*]} verify finds errors in the $mode ckptd.service: $out"
		fi
	done
	rm -rf "$run"
else
	echo "note: no systemd-analyze; the units' syntax is not checked"
fi

comp=$root/share/bash-completion/completions/ckpt
[ -s "$comp" ] || fail "bash completion is missing"
if [ -s "$comp" ]; then
	# Load it and ask for completions like bash would.
	got=$(bash -c '
		complete() { :; }   # no completion engine needed
		. "$1"
		COMP_WORDS=(ckpt op); COMP_CWORD=1; _ckpt; echo "${COMPREPLY[*]}"
		COMP_WORDS=(ckpt ops ""); COMP_CWORD=2; _ckpt; echo "${COMPREPLY[*]}"
		COMP_WORDS=(ckpt checkpoints show --); COMP_CWORD=3; _ckpt; echo "${COMPREPLY[*]}"
	' _ "$comp")
	grep -qx "ops" <<<"$(sed -n 1p <<<"$got")" || fail "completion of 'ckpt op': $got"
	grep -q "list" <<<"$(sed -n 2p <<<"$got")" || fail "completion of 'ckpt ops ': $got"
	grep -q -- "--json" <<<"$(sed -n 3p <<<"$got")" || fail "completion of options: $got"
fi

ex=$root/share/ckptfs/examples
for f in ckptd.yaml policy.yaml job.yaml ckpt_notify.py pytorch_train.py; do
	[ -s "$ex/$f" ] || fail "example $f is missing from $ex"
done
if [ -s "$ex/ckpt_notify.py" ]; then
	python3 -m py_compile "$ex/ckpt_notify.py" || fail "installed ckpt_notify.py does not compile"
fi

if [ $fails -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "install: all checks passed"
