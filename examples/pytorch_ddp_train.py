#!/usr/bin/env python3
"""pytorch_ddp_train.py - a data-parallel PyTorch trainer that writes one
checkpoint from many ranks and speaks ckptfs's trainer protocol.

    ckpt run --nproc-per-node 4 -- python3 examples/pytorch_ddp_train.py --steps 400
    torchrun --nproc_per_node 4 examples/pytorch_ddp_train.py --run-dir /tmp/run

What it shows (SPEC §4, §9; docs/ranks.md):
  * DistributedDataParallel over gloo (CPU) with ZeroRedundancyOptimizer:
    each rank owns one shard of the Adam state;
  * one version per save, written by every rank at once: rank 0 makes
    CKPT_RUN_DIR/step-NNNNNN/ and sets user.ckpt.writers to the world size;
    every rank writes its optimizer shard (optim-rank-K.pt), rank 0 also the
    model (model.pt) and trainer_state.json; then each rank commits its part
    (user.ckpt.commit=rank=K) and ckptfs commits the version when the last
    part is in. A rank that dies mid-save leaves the version open, never
    committed. On a plain directory (no ckptfs) the ranks write into
    step-NNNNNN.tmp/, meet in a barrier, and rank 0 renames it (--commit
    rename does that on ckptfs too);
  * it resumes from CKPT_RESUME_FROM, the same version on every rank (ckptd
    restarts the gang together), exactly: the final weights and every
    optimizer shard are bitwise those of an uninterrupted run;
  * every rank reports STEP/LOSS (its heartbeat), SAVING around saves, and
    CHECKPOINT once the version is committed, through ckpt_notify.py;
  * SIGTERM/SIGINT: the ranks agree (one tiny all_reduce per step) to stop
    at the same step, save a cancellation checkpoint together and exit 0;
    when a rank is gone the collectives fail or hang until ckptd's SIGKILL,
    and the half-written version is never committed;
  * --inject nan@STEP:rank=K reports a NaN loss (attempt 1 only); no rank
    saves after it.

Deterministic: one thread per rank, data drawn from a generator seeded by
(seed, step, rank), no dropout. Debian's torch 1.13 has no safetensors:
tensors are written with torch.save.
"""
import argparse
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_notify as cn  # noqa: E402

EX_CONFIG = cn.EX_CONFIG


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch DDP example trainer for ckptfs")
    p.add_argument("--run-dir", default=os.environ.get("CKPT_RUN_DIR"),
                   help="where versions go (default: $CKPT_RUN_DIR)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=32, help="input and output width")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--commit", choices=["auto", "parts", "rename"], default="auto",
                   help="parts: user.ckpt.writers + each rank's part (ckptfs); rename: "
                        "barrier, then rank 0 renames step-N.tmp; auto: parts on ckptfs")
    p.add_argument("--step-sleep", type=float, default=0.0,
                   help="seconds to sleep per step (tests: time to act mid-run)")
    p.add_argument("--save-sleep", type=float, default=0.0,
                   help="seconds to sleep inside each rank's save (tests: a wide window)")
    p.add_argument("--inject", action="append", default=[],
                   help="nan@STEP:rank=K (attempt 1 only): report a NaN loss")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds a collective waits for a lost peer")
    a = p.parse_args(argv)
    if min(a.steps, a.save_every, a.batch_size, a.dim, a.hidden) < 1:
        p.error("--steps, --save-every, --batch-size, --dim and --hidden must be >= 1")
    for spec in a.inject:
        if not re.match(r"^nan@\d+:rank=\d+$", spec):
            p.error("--inject wants nan@STEP:rank=K, not %r" % spec)
    if not a.run_dir:
        p.error("no run dir: set CKPT_RUN_DIR (ckptd does) or pass --run-dir")
    return a


def version_name(step):
    return "step-%06d" % step


def on_ckptfs(path):
    try:
        return os.getxattr(path, "user.ckpt.state") == b"open"
    except OSError:
        return False


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_file(obj, path, torch, sleep):
    # torch.save opens O_WRONLY|O_CREAT|O_TRUNC and closes before it returns:
    # the file no longer holds the commit back once this returns
    with open(path, "wb") as f:
        torch.save(obj, f)
        if sleep:
            f.flush()
            time.sleep(sleep)
        f.flush()
        os.fsync(f.fileno())


def main(argv):
    a = parse_args(argv)
    import torch
    import torch.distributed as dist
    from datetime import timedelta
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    dist.init_process_group("gloo", timeout=timedelta(seconds=a.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()
    attempt = int(os.environ.get("CKPT_ATTEMPT", "1"))
    nan_at = {int(m.group(1)) for s in a.inject
              for m in [re.match(r"^nan@(\d+):rank=(\d+)$", s)] if int(m.group(2)) == rank}

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))

    model = torch.nn.Sequential(torch.nn.Linear(a.dim, a.hidden), torch.nn.Tanh(),
                                torch.nn.Linear(a.hidden, a.dim))
    ddp = DDP(model)
    opt = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=torch.optim.Adam, lr=a.lr)
    truth = torch.Generator().manual_seed(a.seed + 12345)
    w_true = torch.randn(a.dim, a.dim, generator=truth)

    step = 0
    resume = os.environ.get("CKPT_RESUME_FROM")
    if resume:
        with cn.saving():  # loading: the hang timer pauses too
            model.load_state_dict(torch.load(os.path.join(resume, "model.pt")))
            if os.environ.get("CKPT_RESTORE_OPTIMIZER", "1") == "1":
                opt.optim.load_state_dict(
                    torch.load(os.path.join(resume, "optim-rank-%d.pt" % rank)))
            with open(os.path.join(resume, "trainer_state.json")) as f:
                state = json.load(f)
            if state.get("world_size") != world:
                print("rank %d: %s was written by %s ranks, this gang has %d" %
                      (rank, resume, state.get("world_size"), world), file=sys.stderr)
                return EX_CONFIG
            step = state["step"]
        print("rank %d: resumed from %s at step %d" % (rank, resume, step), flush=True)
    # DDP rebuilds its gradient buckets after the first backward, in the
    # order the gradients became ready, and the layout decides the order of
    # the additions in gloo's ring allreduce. One backward of a zero loss
    # before training (parameters and optimizer untouched) makes every real
    # step, fresh or resumed, run on the rebuilt layout; without it a resumed
    # run's first step would sum in another order and drift in the last bits.
    (ddp(torch.zeros(1, a.dim)).sum() * 0).backward()
    opt.zero_grad(set_to_none=True)
    cn.ready()

    def save(step):
        """Every rank calls this at the same step; rank 0 decides the
        version's name and how it commits, and tells the others."""
        with cn.saving():
            decision = [None, None]
            if rank == 0:
                os.makedirs(a.run_dir, exist_ok=True)
                name = version_name(step)
                if os.path.lexists(os.path.join(a.run_dir, name)):
                    # an earlier attempt's (committed, or left open by a rank
                    # that died): never written into, a name of its own
                    name += ".a%d" % attempt
                final = os.path.join(a.run_dir, name)
                mode = a.commit
                if mode != "rename":
                    os.mkdir(final)
                    if on_ckptfs(final):
                        mode = "parts"
                        os.setxattr(final, "user.ckpt.writers", b"%d" % world)
                    elif mode == "parts":
                        raise SystemExit("--commit parts needs a ckptfs mount")
                    else:
                        mode = "rename"
                        os.rmdir(final)
                if mode == "rename":
                    os.mkdir(final + ".tmp")
                decision = [name, mode]
            dist.broadcast_object_list(decision, src=0)
            # the name, not rank 0's path: each host has its own mount of
            # the shared store, and each rank its own CKPT_RUN_DIR on it
            final, mode = os.path.join(a.run_dir, decision[0]), decision[1]
            vdir = final if mode == "parts" else final + ".tmp"
            save_file(opt.optim.state_dict(), os.path.join(vdir, "optim-rank-%d.pt" % rank),
                      torch, a.save_sleep)
            if rank == 0:
                save_file(model.state_dict(), os.path.join(vdir, "model.pt"), torch, 0)
                with open(os.path.join(vdir, "trainer_state.json"), "w") as f:
                    json.dump({"step": step, "world_size": world, "seed": a.seed,
                               "format_version": 1}, f)
                    f.flush()
                    os.fsync(f.fileno())
            if mode == "parts":
                # this rank's files are closed: its part is done; the last
                # part commits the version
                os.setxattr(final, "user.ckpt.commit", b"rank=%d" % rank)
                dist.barrier()
            else:
                dist.barrier()  # every rank's files are closed
                if rank == 0:
                    fsync_dir(vdir)
                    os.rename(vdir, final)
                    fsync_dir(a.run_dir)
                dist.barrier()
        if rank == 0:
            cn.checkpoint(final)

    poisoned = False
    while step < a.steps:
        # Stop together: a rank that got SIGTERM (or saw a NaN) stops every
        # rank at the same step, so no rank waits alone in a collective.
        flags = torch.tensor([float(stop["now"]), float(poisoned)])
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        if flags[0] > 0 or flags[1] > 0:
            if flags[1] == 0 and step > 0:
                save(step)  # the cancellation checkpoint (SPEC §4)
            break
        g = torch.Generator().manual_seed(a.seed * 1000003 + step * 1009 + rank)
        x = torch.randn(a.batch_size, a.dim, generator=g)
        y = torch.tanh(x @ w_true)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
        step += 1
        value = loss.item()
        if step in nan_at and attempt == 1:
            value = float("nan")
        cn.report(step=step, loss=value)
        if value != value:
            poisoned = True  # ckptd rolls the gang back; no save of this state
            continue
        if a.step_sleep:
            time.sleep(a.step_sleep)
        if step % a.save_every == 0 or step == a.steps:
            save(step)
    cn.stopping()
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
