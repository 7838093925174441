#!/usr/bin/env bash
# test_ckptd.sh CKPT CKPTD CKPTFS CKPT_TRAIN - ckpt against the real ckptd:
# `ckpt run` starts ckptd in the background (and says so), streams a real
# ckpt-train run with an injected NaN through detection and recovery to
# COMPLETED and exits 0; the tables and `checkpoints show` describe that run;
# the example job spec (dist/job.yaml) and config (dist/ckptd.yaml) are
# accepted by the real validators; an idempotent submit returns the same id;
# Ctrl-C on `ckpt run` cancels with a checkpoint and prints how to resume;
# `ckpt ops resume` and `ckpt daemon stop` work. Skips (77) when a component
# is not built or FUSE is missing.
set -u
. "$(dirname "$0")/ckptd_lib.sh"
ckptd_init "$1" "${2:-}" "${3:-}" "${4:-}"
train=$4
export PATH=$(dirname "$train"):$PATH
C() { "$ckpt" "$@"; }

echo "--- ckpt run: NaN at step 30 on attempt 1, recovered"
C run -- "$train" --model tiny --max-steps 60 --checkpoint-every-steps 20 \
	--inject nan@30:attempt=1 >"$T/run.out" 2>&1
rc=$?
cat "$T/run.out" | tail -n 25
[ $rc -eq 0 ] || fail "ckpt run exited $rc, want 0 (COMPLETED)"
grep -q "started .*ckptd in the background" "$T/run.out" || fail "run did not say it started ckptd"
grep -q -- "--> .* detected .*nan" "$T/run.out" || fail "no detected event in the stream"
grep -q -- "--> .* checkpoint_selected" "$T/run.out" || fail "no checkpoint_selected event"
grep -q "loss is nan at step 30" "$T/run.out" || fail "the trainer's output is not streamed"
grep -q "operation op_.* COMPLETED" "$T/run.out" || fail "no COMPLETED line"
id=$(grep -o 'op_training_[0-9_a-f]*' "$T/run.out" | head -1)

echo "--- tables"
out=$(C ops list) || fail "ops list"
echo "$out"
grep -qE "^$id +COMPLETED +100% " <<<"$out" || fail "ops list row for $id"
grep -q "^Total: 1 operation (0 resumable)" <<<"$out" || fail "ops list total line"
[ "$(C ops list --json | json "d['operations'][0]['status']")" = COMPLETED ] || fail "ops list --json"
out=$(C checkpoints show "$id") || fail "checkpoints show"
echo "$out"
grep -q "^Checkpoint Details" <<<"$out" || fail "no Checkpoint Details header"
grep -q "^Artifacts: $T/state/mnt/$id/" <<<"$out" || fail "Artifacts path"
grep -qE "^  Step: +[0-9]+" <<<"$out" || fail "no Step line"
C ops events "$id" | grep -q "client_created" || fail "ops events lacks client_created"
C ops logs "$id" | grep -q -- "--- ckptd: attempt 2 ---" || fail "ops logs lacks attempt 2"
C ls "$id" | grep -q "committed" || fail "ls of the run"
C verify "$id" >/dev/null || fail "verify of the run's versions"
C checkpoints stats --json | json "d['total_checkpoints']" | grep -qv '^0$' || fail "stats"

echo "--- cleanup on a terminal: progress while ckptd works, then the result"
script -qec "'$ckpt' checkpoints cleanup --max-age-days 30" /dev/null </dev/null >"$T/tty" 2>&1 ||
	fail "cleanup on a terminal: $(cat -v "$T/tty")"
grep -q "Cleaning up checkpoints older than 30 days  | 0 s" "$T/tty" ||
	fail "cleanup on a terminal showed no progress: $(cat -v "$T/tty")"
grep -q $'\r\033\[KCleanup (older than 30 days): 0 checkpoints' "$T/tty" ||
	fail "cleanup on a terminal: $(cat -v "$T/tty")"

echo "--- submit: the example job spec, idempotency"
a=$(C submit "$src/dist/job.yaml" --set 'hyperparams.epochs=1' --idempotency-key t-1) ||
	fail "submit of dist/job.yaml was refused"
b=$(C submit "$src/dist/job.yaml" --set 'hyperparams.epochs=1' --idempotency-key t-1) ||
	fail "second submit"
[ "$a" = "$b" ] || fail "same Idempotency-Key gave $a then $b"
C submit "$src/dist/job.yaml" --set hyperparams.batch_size=0 2>"$T/err" && fail "invalid spec accepted"
grep -q "batch_size" "$T/err" || fail "invalid spec error does not name the key: $(cat "$T/err")"
C ops cancel "$a" >/dev/null 2>&1

echo "--- Ctrl-C cancels with a checkpoint"
"$ckpt" run -- "$train" --model tiny --max-steps 1000000 --checkpoint-every-steps 50 \
	>"$T/long.out" 2>&1 &
runpid=$!
# Interrupt once a checkpoint exists, so there is something to resume from.
for _ in $(seq 1 600); do
	grep -q "checkpoint .* committed" "$T/long.out" && break
	kill -0 "$runpid" 2>/dev/null || break
	sleep 0.1
done
grep -q "checkpoint .* committed" "$T/long.out" ||
	fail "no checkpoint within 60 s of the long run: $(tail -n 5 "$T/long.out")"
kill -INT "$runpid"
for _ in $(seq 1 600); do
	kill -0 "$runpid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$runpid" 2>/dev/null && fail "ckpt run still runs 60 s after Ctrl-C: $(tail -n 5 "$T/long.out")"
wait "$runpid"
rc=$?
runpid=
tail -n 6 "$T/long.out"
[ $rc -eq 1 ] || fail "ckpt run after Ctrl-C exited $rc, want 1"
grep -q "cancelling op_" "$T/long.out" || fail "no cancelling message"
lid=$(grep -o 'op_training_[0-9_a-f]*' "$T/long.out" | head -1)
grep -q "To resume: ckpt ops resume $lid" "$T/long.out" || fail "no resume hint"
[ "$(C ops status "$lid" --json | json "d['status'], d['resumable']")" = "CANCELLED True" ] ||
	fail "after Ctrl-C: $(C ops status "$lid")"
# ops status and checkpoints show name the same step: the cancellation
# checkpoint's (ckptd drops the STEP= of the step the trainer finishes after
# the cancel, so its progress alone is one behind), and PROGRESS says the step
# when no epoch has ended yet.
st=$(C ops status "$lid") cs=$(C checkpoints show "$lid")
ps=$(grep '^Progress:' <<<"$st" | grep -o 'step [0-9]*' | tail -1 | cut -d' ' -f2)
ks=$(awk '$1 == "Step:" {print $2}' <<<"$cs")
[ -n "$ps" ] && [ "$ps" = "$ks" ] ||
	fail "ops status says step '$ps', checkpoints show says Step '$ks':$(printf '\n%s\n%s' "$st" "$cs")"
# The cancellation save evaluated these weights: a val loss, and a best val
# loss that is set and not above it.
vl=$(sed -n 's/^  Val Loss: *//p' <<<"$cs") bvl=$(sed -n 's/^  Best Val Loss: *//p' <<<"$cs")
[ -n "$vl" ] && [ -n "$bvl" ] && python3 -c "import sys; sys.exit(not $bvl <= $vl)" ||
	fail "checkpoints show: Val Loss '$vl', Best Val Loss '$bvl':$(printf '\n%s' "$cs")"
C ops list | grep -qE "^$lid +CANCELLED +step $ks " ||
	fail "PROGRESS of an op cancelled in its first epoch: $(C ops list | grep "$lid")"
C ops resume "$lid" | grep -q "Resuming $lid" || fail "ops resume"
C ops resume "$lid" 2>"$T/err" && fail "second resume of a running op succeeded"
grep -q "409" "$T/err" || fail "second resume: $(cat "$T/err")"
C ops cancel "$lid" >/dev/null || fail "ops cancel"

echo "--- daemon"
C daemon status | grep -q "ckptd is running" || fail "daemon status"
C daemon stop | grep -q "stopped" || fail "daemon stop"
C daemon status >/dev/null && fail "daemon status after stop exited 0"
echo PASS
