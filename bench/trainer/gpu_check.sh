#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gpu_check.sh - the GPU checks of ckpt-train (docs/gpu.md), in one script:
#   1. the CUDA backend runs `tiny` and `large`;
#   2. first-step losses on CPU and CUDA agree within a relative 1e-4;
#   3. deterministic resume on CUDA: straight vs crash@120 + resume, bitwise;
#   4. steps/s of `large` and the fraction of the FP32 matrix-multiply peak;
#   5. async vs sync save blocking on CUDA (bench_save.py).
# Usage: gpu_check.sh CKPT_TRAIN [WORKDIR]
# Env: PEAK_TFLOPS (FP32 non-tensor peak of the GPU, default 67 = H100 SXM /
#      H200), LARGE_BATCH (default 1024), LARGE_STEPS (default 50),
#      DEVICE (default cuda; DEVICE=cpu QUICK=1 checks the script itself).
set -euo pipefail
TRAIN=$(realpath "$1")
WORK=${2:-$(mktemp -d /tmp/ckpt-gpu-check.XXXXXX)}
DEVICE=${DEVICE:-cuda}
PEAK_TFLOPS=${PEAK_TFLOPS:-67}
LARGE_BATCH=${LARGE_BATCH:-1024}
LARGE_STEPS=${LARGE_STEPS:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
echo "workdir: $WORK"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

loss_of() { # the 17-digit training loss in a version's trainer_state.json
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["loss"])' "$1/trainer_state.json"
}

echo "== 1. tiny on $DEVICE"
"$TRAIN" --device "$DEVICE" --model tiny --lr 1e-3 --max-steps 200 --run-dir "$WORK/tiny" | tail -1

echo "== 2. first-step loss, CPU vs $DEVICE (tolerance: relative 1e-4)"
presets="tiny small"
[ -n "${QUICK:-}" ] || presets="tiny small large"
for p in $presets; do
	for d in cpu "$DEVICE"; do
		"$TRAIN" --device "$d" --model "$p" --max-steps 1 --no-checkpoint-eval \
			--run-dir "$WORK/first-$p-$d" >/dev/null 2>&1
	done
	a=$(loss_of "$WORK/first-$p-cpu/step-00000001")
	b=$(loss_of "$WORK/first-$p-$DEVICE/step-00000001")
	python3 - "$p" "$a" "$b" <<'PY'
import sys
p, a, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rel = abs(a - b) / abs(a)
print("%-6s cpu %.9f  gpu %.9f  rel diff %.2e  %s" % (p, a, b, rel, "OK" if rel <= 1e-4 else "FAIL"))
sys.exit(0 if rel <= 1e-4 else 1)
PY
done

echo "== 3. deterministic resume on $DEVICE (straight vs crash@120 + resume)"
for p in tiny small; do
	common=(--device "$DEVICE" --model "$p" --lr 1e-3 --max-steps 200 --checkpoint-every-steps 50)
	"$TRAIN" "${common[@]}" --run-dir "$WORK/det-$p-a" >/dev/null 2>&1
	"$TRAIN" "${common[@]}" --run-dir "$WORK/det-$p-b" --inject crash@120 >/dev/null 2>&1 || true
	last=$(ls -d "$WORK/det-$p-b"/step-???????? | sort | tail -1)
	CKPT_RESUME_FROM=$last "$TRAIN" "${common[@]}" --run-dir "$WORK/det-$p-b" >/dev/null 2>&1
	if cmp "$WORK/det-$p-a/step-00000200/model.safetensors" \
		"$WORK/det-$p-b/step-00000200/model.safetensors"; then
		echo "$p: resumed from $(basename "$last"): model.safetensors bitwise equal: OK"
	else
		python3 - "$WORK/det-$p-a/step-00000200/model.safetensors" \
			"$WORK/det-$p-b/step-00000200/model.safetensors" <<'PY'
import struct, sys
def floats(path):
    d = open(path, "rb").read(); (h,) = struct.unpack("<Q", d[:8]); b = d[8 + h:]
    return struct.unpack("<%df" % (len(b) // 4), b)
x, y = floats(sys.argv[1]), floats(sys.argv[2])
print("NOT bitwise equal: max abs diff %.3e over %d floats" % (max(abs(a - b) for a, b in zip(x, y)), len(x)))
PY
	fi
done

[ -n "${QUICK:-}" ] && { echo "QUICK: skipping large"; exit 0; }

echo "== 4. large on $DEVICE: steps/s and fraction of the FP32 matmul peak ($PEAK_TFLOPS TFLOPS)"
out=$("$TRAIN" --device "$DEVICE" --model large --batch-size "$LARGE_BATCH" \
	--max-steps "$LARGE_STEPS" --checkpoint-every-epochs 0 --no-checkpoint-eval \
	--run-dir "$WORK/large" | tail -1)
echo "$out"
python3 - "$out" "$LARGE_BATCH" "$PEAK_TFLOPS" <<'PY'
import re, sys
sps = float(re.search(r"steps_per_s ([0-9.]+)", sys.argv[1]).group(1))
B, peak = int(sys.argv[2]), float(sys.argv[3])
W = 6 * 4096 * 4096 + 4096 * 256   # matmul weights of `large`
flops = 6 * B * W                  # forward 2BW + backward 4BW
print("steps/s %.3f  matmul TFLOP/s %.2f  fraction of %.0f TFLOPS peak %.1f%%" % (
    sps, flops * sps / 1e12, peak, 100 * flops * sps / 1e12 / peak))
PY
rm -rf "$WORK/large"

echo "== 5. async vs sync save of large on $DEVICE"
python3 "$HERE/bench_save.py" "$TRAIN" --device "$DEVICE" --model large --batch-size "$LARGE_BATCH" \
	--steps 30 --save-at 10 --modes none,async,sync --dir "$WORK"
