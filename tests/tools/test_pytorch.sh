#!/usr/bin/env bash
# test_pytorch.sh CKPT CKPTD CKPTFS - examples/pytorch_train.py under `ckpt run`
# with the real ckptd and a real ckptfs mount, on Debian's PyTorch (1.13, no
# safetensors package): an uninterrupted run; a run with a NaN injected at
# step 30 on attempt 1; a run whose trainer is kill -9'd at step 30 (it waits
# there on attempt 1). Both interrupted runs resume from step-000020 and end
# with model.safetensors and optimizer.safetensors bitwise equal to the
# uninterrupted run's, no FAILED operation and no open version. Skips (77)
# when a component is not built, FUSE is missing or no Python imports torch.
set -u
. "$(dirname "$0")/ckptd_lib.sh"
# Debian's python3-torch is for /usr/bin/python3; a python3 earlier in PATH
# (a virtualenv, pyenv) may not see it.
py=
for p in "$(command -v python3)" /usr/bin/python3; do
	if [ -x "$p" ] && "$p" -c 'import torch' 2>/dev/null; then
		py=$p
		break
	fi
done
if [ -z "$py" ]; then
	echo "SKIP: no python3 imports torch; install Debian's python3-torch (tools/install-deps does)"
	exit 77
fi
ckptd_init "$1" "${2:-}" "${3:-}"

# No backoff to wait out: the test is about what is resumed, not when.
fast=(--set recovery.backoff_ms=0)
train=("$py" "$src/examples/pytorch_train.py" --steps 60 --save-every 20 --steps-per-epoch 20
	--hidden 32 --batch-size 16)

# run NAME OUT [ARGS...]: ckpt run the example in the foreground; prints the id.
run_fg() {
	local out=$1
	shift
	"$ckpt" run --name "$(basename "$out" .out)" "${fast[@]}" -- "${train[@]}" "$@" >"$out" 2>&1
	local rc=$?
	grep -E -- "-->|resumed|saved|stopping|hanging" "$out" >&2
	[ $rc -eq 0 ] || { tail -n 30 "$out"; fail "ckpt run $* exited $rc, want 0 (COMPLETED)"; }
	grep -o 'op_training_[0-9_a-f]*' "$out" | head -1
}

# ends_equal ID: the run's final version holds the reference's bytes, it
# verifies, and nothing of the run is left open.
ends_equal() {
	local id=$1 f
	for f in model.safetensors optimizer.safetensors; do
		cmp "$T/state/mnt/$ref/step-000060/$f" "$T/state/mnt/$id/step-000060/$f" ||
			fail "$id: $f differs from the uninterrupted run's"
	done
	"$ckpt" verify "$id" >/dev/null || fail "ckpt verify $id"
	"$ckpt" ls "$id" | grep -qw open && fail "$id has an open version: $("$ckpt" ls "$id")"
	[ "$("$ckpt" ops status "$id" --json | json "d['status']")" = COMPLETED ] ||
		fail "$id: $("$ckpt" ops status "$id")"
}

echo "--- uninterrupted"
ref=$(run_fg "$T/ref.out") || exit 1
grep -q "saved .*step-000020 (periodic)" "$T/ref.out" || fail "no save at step 20: $(tail "$T/ref.out")"
[ -f "$T/state/mnt/$ref/step-000060/model.safetensors" ] || fail "no step-000060 in $ref"
"$ckpt" ops events "$ref" | grep -q detected && fail "the uninterrupted run had a detection"

echo "--- NaN at step 30 on attempt 1"
nan=$(run_fg "$T/nan.out" --inject-nan-at 30) || exit 1
grep -q -- "--> .* detected .*nan" "$T/nan.out" || fail "no NaN detection: $(tail "$T/nan.out")"
grep -q "resumed from .*/step-000020 at step 20" "$T/nan.out" ||
	fail "attempt 2 did not resume from step-000020: $(tail -n 20 "$T/nan.out")"
ends_equal "$nan"

echo "--- kill -9 of the trainer at step 30"
"$ckpt" run --name kill "${fast[@]}" -- "${train[@]}" --inject-hang-at 30 >"$T/kill.out" 2>&1 &
runpid=$!
kid= pid=
for _ in $(seq 1 1200); do
	kid=$(grep -o 'op_training_[0-9_a-f]*' "$T/kill.out" | head -1)
	if [ -n "$kid" ]; then
		st=$("$ckpt" ops status "$kid" --json 2>/dev/null)
		pid=$(json "d.get('pid') or ''" <<<"$st" 2>/dev/null)
		step=$(json "(d.get('progress') or {}).get('step') or 0" <<<"$st" 2>/dev/null)
		[ -n "$pid" ] && [ "${step:-0}" -ge 30 ] && break
	fi
	kill -0 "$runpid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$pid" ] && [ "${step:-0}" -eq 30 ] ||
	fail "the trainer did not reach step 30 (pid '$pid', step '${step:-}'): $(tail "$T/kill.out")"
grep -q "inject-hang-at" /proc/"$pid"/cmdline ||
	fail "pid $pid is not the trainer: $(tr '\0' ' ' </proc/"$pid"/cmdline)"
kill -9 "$pid"
wait "$runpid"
rc=$?
runpid=
grep -E -- "-->|resumed|saved|stopping|hanging" "$T/kill.out"
[ $rc -eq 0 ] || { tail -n 30 "$T/kill.out"; fail "ckpt run (kill -9) exited $rc, want 0"; }
grep -q -- "--> .* detected .*signal 9" "$T/kill.out" ||
	fail "no detection of the kill: $(grep -- '-->' "$T/kill.out")"
grep -q "resumed from .*/step-000020 at step 20" "$T/kill.out" ||
	fail "attempt 2 did not resume from step-000020: $(tail -n 20 "$T/kill.out")"
ends_equal "$kid"

"$ckpt" ops list --status FAILED --json | json "len(d['operations'])" | grep -qx 0 ||
	fail "a FAILED operation: $("$ckpt" ops list)"
echo "PASS ($SECONDS s)"
