#!/usr/bin/env bash
# test_usage.sh CKPT - every subcommand's bad input gets a clear message and
# exit 2 (usage) or 1 (failure), never a crash: unknown flags, missing
# arguments, bad ids, a ckptd that is down, a store that is not mounted.
# Also: --help works for every subcommand and exits 0.
set -u
ckpt=$1
tmp=$(mktemp -d /tmp/ckpt-usage.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export CKPT_STATE_DIR=$tmp/state   # nothing listens, nothing is mounted there
export CKPT_SOCKET=$tmp/state/ckptd.sock
unset CKPT_MOUNT
mkdir -p "$tmp/state"
fails=0
OP=op_training_20241213_143022_abc123

# check WANT_RC PATTERN ARGS...: run ckpt ARGS, expect exit WANT_RC and stderr
# (or stdout) matching PATTERN (grep -E); a signal/sanitizer report fails.
check() {
	local want=$1 pat=$2 rc out
	shift 2
	out=$("$ckpt" "$@" </dev/null 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL: ckpt $*: exit $rc, want $want"
		echo "$out" | sed 's/^/    /'
		fails=$((fails + 1))
		return
	fi
	if ! grep -qE -- "$pat" <<<"$out"; then
		echo "FAIL: ckpt $*: output does not match /$pat/:"
		echo "$out" | sed 's/^/    /'
		fails=$((fails + 1))
		return
	fi
	if grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' <<<"$out"; then
		echo "FAIL: ckpt $*: sanitizer report"
		echo "$out" | sed 's/^/    /'
		fails=$((fails + 1))
	fi
}

# Top level.
check 2 'usage: ckpt' 
check 2 "'frobnicate' is not a ckpt command" frobnicate
check 2 'unrecognized option' --bogus
check 0 'usage: ckpt' --help
check 0 '^ckpt [0-9]' --version
check 0 'usage: ckpt \[--socket' help

# `ckpt help CMD` is CMD's own usage, not the top-level one.
for c in run submit ops checkpoints ls show verify diff commit gc policy daemon; do
	check 0 "^usage: ckpt $c" help "$c"
	out=$("$ckpt" help "$c" 2>&1)
	if grep -q 'Global options' <<<"$out"; then
		echo "FAIL: ckpt help $c printed the top-level usage"
		fails=$((fails + 1))
	fi
done
check 0 '^usage: ckpt ops' help ops status
check 2 "'frob' is not a ckpt command" help frob

# A typo gets a suggestion; a word like no command gets none.
check 2 "'chekpoints' is not a ckpt command. Did you mean 'checkpoints'\?" chekpoints
check 2 "Did you mean 'verify'\?" verfy
check 2 "Did you mean 'ops'\?" op
check 2 "Did you mean 'daemon'\?" deamon
check 2 "Did you mean 'status'\?" ops stauts "$OP"
check 2 "Did you mean 'cleanup'\?" checkpoints clean
check 2 "Did you mean 'stop'\?" daemon stpo
out=$("$ckpt" xyzzy 2>&1)
if grep -q 'Did you mean' <<<"$out"; then
	echo "FAIL: ckpt xyzzy got a suggestion: $out"
	fails=$((fails + 1))
fi

# --help of every subcommand.
for c in run submit ops checkpoints ls show verify diff commit gc policy daemon; do
	check 0 "usage: ckpt $c" "$c" --help
done

# Unknown flags.
for c in run submit ops checkpoints ls show verify diff commit gc policy daemon; do
	check 2 "unrecognized option '--no-such-flag'.*|Try 'ckpt $c --help'" "$c" --no-such-flag
done

# Missing arguments / bad sub-subcommands.
check 2 'give a job file' run
check 2 'nothing to run after' run --
check 2 'give a job file' submit
check 2 'say what to do' ops
check 2 "'frob' is not an ops command" ops frob
check 2 "needs an operation id" ops status
check 2 "needs an operation id" ops resume
check 2 "needs an operation id" ops cancel
check 2 "needs an operation id" ops logs
check 2 "needs an operation id" ops events
check 2 "not a state" ops list --status SLEEPING
check 2 "takes no argument" ops list extra
check 2 "goes with 'ops logs'" ops status $OP --follow
check 2 "say what to do" checkpoints
check 2 "needs an operation id" checkpoints show
check 2 "needs an operation id" checkpoints delete
check 2 "needs --max-age-days" checkpoints cleanup
check 2 "whole number" checkpoints cleanup --max-age-days -3
check 2 "whole number" checkpoints cleanup --max-age-days ten
check 2 "not a checkpoints command" checkpoints frob
check 2 "which version" show
check 2 "two versions" diff onlyone
check 2 "which version" commit
check 2 "which run" policy
check 2 "NAME:min or NAME:max" policy r --metric val_loss
check 2 "whole number" policy r --keep-last -1
check 2 "takes no argument" gc extra
check 2 "say what to do" daemon
check 2 "not a daemon command" daemon restart
check 2 "key=value" submit --set novalue
check 2 "empty key" submit --set a..b=1
check 2 "idempotency-key" submit --project p --idempotency-key ''
check 2 "--max-attempts wants a whole number" run --max-attempts x -- true
check 2 "--epochs wants a whole number" submit --epochs -1
check 2 "--lr wants a positive number" submit --lr abc
check 2 "--json is for read commands" run --json -- true
check 2 "one job file at a time" run job.yaml extra
check 2 "ckpt run: unrecognized option '--bogus'" run job.yaml --bogus

# Bad ids: a usage error before any request.
for sub in status resume cancel logs events; do
	check 2 "is not an operation id" ops $sub '../../etc/passwd'
done
check 2 "is not an operation id" checkpoints show 'op_x'
check 2 "is not an operation id" checkpoints delete 'OP_TRAINING' --force

# Bad job files: the file and the line.
printf 'name: [unclosed\n' >"$tmp/bad.yaml"
check 2 'bad.yaml: line [0-9]+,? column [0-9]+' submit "$tmp/bad.yaml"
check 2 'cannot read job spec' submit "$tmp/missing.yaml"
printf -- '- a\n- b\n' >"$tmp/list.yaml"
check 2 'is a mapping' submit "$tmp/list.yaml"
printf '{"a": 1,}' >"$tmp/bad.json"
check 2 'bad JSON at line 1' submit "$tmp/bad.json"

# ckptd down: exit 1 and what to do.
check 1 "no ckptd answers on .*ckptd.sock" ops list
check 1 "no ckptd answers" ops status $OP
check 1 "no ckptd answers" ops resume $OP
check 1 "no ckptd answers" ops cancel $OP
check 1 "no ckptd answers" ops logs $OP
check 1 "no ckptd answers" ops events $OP
check 1 "no ckptd answers" checkpoints show $OP
check 1 "no ckptd answers" checkpoints delete $OP --force
check 1 "no ckptd answers" checkpoints stats
check 1 "no ckptd answers" checkpoints cleanup --max-age-days 3
check 1 "not running" daemon status
check 0 "nothing to stop" daemon stop
# run/submit with an explicit socket do not start a ckptd of their own.
check 1 "no ckptd answers on .*drop --socket" submit --project p
check 1 "no ckptd answers on .*drop --socket" run -- true

# Store not mounted: exit 1 and what to do.
check 1 "no ckptfs is mounted at .*state/mnt" ls
check 1 "no ckptfs is mounted" ls somerun
check 1 "no ckptfs is mounted" show somerun/v1
check 1 "no ckptfs is mounted" verify
check 1 "no ckptfs is mounted" diff a/v1 a/v2
check 1 "no ckptfs is mounted" commit somerun/v1
check 1 "no ckptfs is mounted" policy somerun --keep-last 2
check 1 "No such file or directory" show "$tmp/nope"
check 1 "not a version directory" commit "$tmp"
check 1 "not a run directory" policy "$tmp"
check 1 "cannot open the store .*state/store" gc
check 1 "cannot open the store" gc --store "$tmp/nostore"
check 1 "cannot open the store" verify --store "$tmp/nostore"

if [ $fails -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "usage: all checks passed"
