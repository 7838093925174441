#!/usr/bin/env python3
"""pytorch_train.py - a PyTorch trainer that speaks ckptfs's trainer protocol.

    ckpt run -- python3 examples/pytorch_train.py --steps 2000 --save-every 200
    python3 examples/pytorch_train.py --run-dir /tmp/run     # without ckptd

What it shows (SPEC §4):
  * versions are written to CKPT_RUN_DIR/step-NNNNNN.tmp/ and renamed to
    step-NNNNNN/: on a ckptfs mount the rename is the commit (durable, then
    immutable), on a plain directory the files are fsynced first;
  * checkpoints are safetensors files (model.safetensors, optimizer.safetensors)
    plus trainer_state.json, the layout ckpt-train uses;
  * it resumes from CKPT_RESUME_FROM (weights, optimizer unless
    CKPT_RESTORE_OPTIMIZER=0, RNG, step), skips CKPT_SKIP_BATCHES batches;
  * it reports READY, STEP/EPOCH/LOSS, SAVING around saves and CHECKPOINT
    through ckpt_notify.py (stdlib only, next to this file);
  * SIGTERM/SIGINT save a cancellation checkpoint and exit 0; bad arguments
    exit 78 (do not retry); a NaN/Inf loss is reported and ends the attempt
    with exit 3 and no save (the state is poisoned);
  * for tests and demos, on attempt 1 only: --inject-nan-at N reports a NaN
    loss at step N (watch ckptd roll back), --inject-hang-at N stops at step
    N and waits to be killed (kill -9 it, or let the hang timer fire).

A resumed run ends bitwise equal to an uninterrupted one (on the CPU).

Needs torch (Debian: python3-torch); uses the safetensors package when
installed, else writes the (simple) safetensors format itself. The model is
a small MLP on synthetic data so that it runs anywhere; put your own model in
build_model().
"""
import argparse
import json
import math
import os
import re
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_notify as cn  # noqa: E402

EX_CONFIG = cn.EX_CONFIG
EX_CORRUPT = 3           # a NaN/Inf loss: ckptd resumes from the newest good version
FORMAT_VERSION = 1


def version_name(step):
    return "step-%06d" % step


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # Bad arguments are a configuration error: exit 78 so that ckptd does
        # not retry (argparse's own code is 2).
        self.print_usage(sys.stderr)
        self.exit(EX_CONFIG, "%s: error: %s\n" % (self.prog, message))


def parse_args(argv):
    p = _Parser(description="PyTorch example trainer for ckptfs")
    p.add_argument("--run-dir", default=os.environ.get("CKPT_RUN_DIR"),
                   help="where versions go (default: $CKPT_RUN_DIR)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=0,
                   help="train this many epochs (--steps = epochs x --steps-per-epoch)")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--inject-nan-at", type=int, default=0,
                   help="attempt 1 reports a NaN loss at this step (demo)")
    p.add_argument("--inject-hang-at", type=int, default=0,
                   help="attempt 1 stops at this step and waits to be killed (tests)")
    a = p.parse_args(argv)
    if a.epochs < 0:
        p.error("--epochs must be >= 0")
    if a.epochs:
        a.steps = a.epochs * a.steps_per_epoch
    if a.steps < 1 or a.save_every < 1 or a.steps_per_epoch < 1 or a.batch_size < 1 \
            or a.hidden < 1:
        p.error("--steps, --save-every, --steps-per-epoch, --batch-size and --hidden "
                "must be >= 1")
    return a


def resume_dir(run_dir, resume_from, supervised=False):
    """The version to resume from: CKPT_RESUME_FROM when ckptd set it; under
    ckptd its absence means a fresh start; run by hand, the newest committed
    step-N/ (the `latest` link on ckptfs)."""
    if resume_from:
        return resume_from
    if supervised or not run_dir or not os.path.isdir(run_dir):
        return None
    latest = os.path.join(run_dir, "latest")
    if os.path.islink(latest):
        return os.path.realpath(latest)
    steps = [(int(m.group(1)), n) for n in os.listdir(run_dir)
             for m in [re.match(r"^step-(\d+)$", n)] if m]
    return os.path.join(run_dir, max(steps)[1]) if steps else None


# ---- safetensors (the package when present, else the format by hand) ----

_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
           "int64": "I64", "int32": "I32", "uint8": "U8"}


def save_tensors(tensors, path):
    import torch
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    try:
        from safetensors.torch import save_file
        save_file(tensors, path)
    except ImportError:
        header, blobs, off = {}, [], 0
        for k in sorted(tensors):
            t = tensors[k]
            # reshape(-1) first: a 0-dim tensor (AdamW's `step`) cannot be
            # viewed as bytes, and torch 1.13 raises instead of widening it.
            raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            header[k] = {"dtype": _DTYPES[str(t.dtype).replace("torch.", "")],
                         "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
            blobs.append(raw)
            off += len(raw)
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)          # the format pads the header to 8 bytes
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for b in blobs:
                f.write(b)
    fsync_path(path)


def load_tensors(path):
    import torch
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        rev = {v: getattr(torch, k) for k, v in _DTYPES.items()}
        out = {}
        for k, h in header.items():
            if k == "__metadata__":
                continue
            a, b = h["data_offsets"]
            t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.uint8)
            out[k] = t.view(rev[h["dtype"]]).reshape(h["shape"]).clone()
        return out


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- the training job ----

def build_model(hidden):
    import torch.nn as nn
    return nn.Sequential(nn.Linear(32, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                         nn.GELU(), nn.Linear(hidden, 1))


def batch(gen, size, device):
    import torch
    x = torch.randn(size, 32, generator=gen).to(device)
    y = (x[:, :8].sum(dim=1, keepdim=True) * 0.5).sin()
    return x, y


def optimizer_tensors(opt):
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out["state.%d.%s" % (i, k)] = v if hasattr(v, "shape") else __import__("torch").tensor(v)
    return out


def restore_optimizer(opt, tensors):
    sd = opt.state_dict()
    state = {}
    for k, v in tensors.items():
        _, i, name = k.split(".", 2)
        state.setdefault(int(i), {})[name] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def save(args, run_dir, step, epoch, loss, model, opt, gen, reason):
    import torch
    final = os.path.join(run_dir, version_name(step))
    if os.path.exists(final):
        return final                        # this step is saved already
    # One temporary name per process: a version an earlier attempt left
    # half-written (killed mid-save) is incomplete on ckptfs and cannot be
    # written into again; `ckpt gc` removes it.
    tmp = "%s.tmp-%d" % (final, os.getpid())
    with cn.saving():
        os.makedirs(tmp)
        save_tensors(model.state_dict(), os.path.join(tmp, "model.safetensors"))
        ot = optimizer_tensors(opt)
        ot["rng.data"] = gen.get_state()
        ot["rng.torch"] = torch.get_rng_state()
        save_tensors(ot, os.path.join(tmp, "optimizer.safetensors"))
        state = {"format_version": FORMAT_VERSION, "step": step, "epoch": epoch,
                 "loss": None if math.isnan(loss) else loss, "lr": args.lr,
                 "reason": reason, "writer": "examples/pytorch_train.py"}
        with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
            json.dump(state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(tmp)
        os.rename(tmp, final)               # on ckptfs: the commit
        fsync_path(run_dir)
    cn.checkpoint(final)
    print("saved %s (%s)" % (final, reason), flush=True)
    return final


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if not args.run_dir:
        print("pytorch_train: no run dir: run under ckptd (CKPT_RUN_DIR) or pass --run-dir",
              file=sys.stderr)
        return EX_CONFIG
    try:
        import torch
    except ImportError:
        print("pytorch_train: PyTorch is not installed (pip install torch)", file=sys.stderr)
        return EX_CONFIG
    os.makedirs(args.run_dir, exist_ok=True)
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = build_model(args.hidden).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    step, epoch = 0, 0

    supervised = "CKPT_OPERATION_ID" in os.environ
    src = resume_dir(args.run_dir, os.environ.get("CKPT_RESUME_FROM"), supervised)
    if src:
        with cn.saving():                   # loading pauses the hang timer too
            with open(os.path.join(src, "trainer_state.json")) as f:
                st = json.load(f)
            if st.get("format_version") != FORMAT_VERSION:
                print("pytorch_train: %s has format %s, not %d" %
                      (src, st.get("format_version"), FORMAT_VERSION), file=sys.stderr)
                return EX_CONFIG
            model.load_state_dict(load_tensors(os.path.join(src, "model.safetensors")))
            ot = load_tensors(os.path.join(src, "optimizer.safetensors"))
            gen.set_state(ot.pop("rng.data"))
            torch.set_rng_state(ot.pop("rng.torch"))
            if os.environ.get("CKPT_RESTORE_OPTIMIZER", "1") != "0":
                restore_optimizer(opt, ot)
            step, epoch = st["step"], st["epoch"]
        print("resumed from %s at step %d" % (src, step), flush=True)
        for _ in range(int(os.environ.get("CKPT_SKIP_BATCHES", "0") or 0)):
            batch(gen, args.batch_size, device)     # skip the data after a spike

    stop = {"sig": None}

    def on_signal(sig, frame):
        stop["sig"] = sig
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    attempt = os.environ.get("CKPT_ATTEMPT", "1")
    cn.ready()
    loss_v = float("nan")
    while step < args.steps:
        if stop["sig"] is not None:
            save(args, args.run_dir, step, epoch, loss_v, model, opt, gen, "cancel")
            cn.stopping()
            return 0
        x, y = batch(gen, args.batch_size, device)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        epoch = step // args.steps_per_epoch
        loss_v = loss.item()
        if args.inject_nan_at and step == args.inject_nan_at and attempt == "1":
            loss_v = float("nan")
        cn.report(step=step, epoch=epoch, loss=loss_v)
        if not math.isfinite(loss_v):
            # The state is poisoned: no save, not even on SIGTERM. ckptd
            # resumes from the newest good version.
            print("loss is %s at step %d; stopping" % (loss_v, step), flush=True)
            return EX_CORRUPT
        if args.inject_hang_at and step == args.inject_hang_at and attempt == "1":
            print("step %d: hanging (injected); kill me" % step, flush=True)
            while stop["sig"] is None:
                time.sleep(0.05)
            continue
        if step % 50 == 0:
            print("step %d epoch %d loss %.5f" % (step, epoch, loss_v), flush=True)
        if step % args.save_every == 0:
            save(args, args.run_dir, step, epoch, loss_v, model, opt, gen, "periodic")
    save(args, args.run_dir, step, epoch, loss_v, model, opt, gen, "final")
    cn.stopping()
    return 0


if __name__ == "__main__":
    sys.exit(main())
