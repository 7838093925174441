"""ckpt_notify.py - the trainer protocol (SPEC §4) for Python trainers.

Standard library only: copy this file next to your training script.

ckptd starts a trainer with CKPT_NOTIFY_SOCKET set to an AF_UNIX datagram
socket (a path, or "@name" for the Linux abstract namespace). A report is one
datagram of newline-separated KEY=VALUE lines, the sd_notify wire format.
When the variable is unset (a trainer run by hand) every call is a no-op that
returns False, so the same script runs with and without ckptd.

    import ckpt_notify as cn
    cn.ready()
    for step in ...:
        cn.report(step=step, epoch=epoch, loss=loss)      # also the heartbeat
        if save_now:
            with cn.saving():                             # hang timer paused
                save(run_dir / f"step-{step:06d}.tmp")
                os.rename(tmp, final)                     # ckptfs commits here
            cn.checkpoint(final)
    cn.stopping()

Other environment variables ckptd sets (read them with os.environ):
CKPT_RUN_DIR (write versions here), CKPT_RESUME_FROM (the version to resume
from; absent on a fresh start), CKPT_RESTORE_OPTIMIZER ("1"/"0"),
CKPT_SKIP_BATCHES, CKPT_OPERATION_ID, CKPT_ATTEMPT, CKPT_JOB.
On SIGTERM/SIGINT save a cancellation checkpoint and exit 0; exit 78 means
"do not retry".
"""
import contextlib
import math
import os
import re
import socket

__all__ = ["notify", "ready", "report", "saving", "checkpoint", "corrupted", "status",
           "watchdog", "stopping", "EX_CONFIG"]

EX_CONFIG = 78           # exit code: a configuration error, ckptd does not retry
MAX_DATAGRAM = 4096      # ckptd drops larger datagrams
_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_TEXT_MAX = 1024


def _address():
    name = os.environ.get("CKPT_NOTIFY_SOCKET", "")
    if not name:
        return None
    if name.startswith("@"):
        return "\0" + name[1:]      # abstract namespace: leading NUL, no terminator
    return name


def _number(v):
    # ckptd accepts decimal numbers and nan/inf/-inf; a NaN loss is what it looks for.
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _count(key, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError("%s must be a non-negative integer, not %r" % (key, v))
    return str(v)


def _text(v):
    # One line per key: newlines and other control characters would break the
    # format (ckptd rejects the whole datagram), so they become spaces.
    s = "".join(" " if (ord(c) < 32 and c != "\t") or ord(c) == 127 else c for c in str(v))
    return s.encode()[:_TEXT_MAX].decode(errors="ignore")


def _format(key, value):
    if not _KEY.match(key):
        raise ValueError("bad key %r: keys are A-Z, 0-9 and _, starting with a letter" % key)
    if key in ("STEP", "EPOCH"):
        return _count(key, value)
    if key in ("LOSS", "VAL_LOSS"):
        return _number(value)
    if key in ("READY", "WATCHDOG", "STOPPING"):
        return "1"
    if key in ("SAVING", "CORRUPTED"):
        return "1" if value else "0"
    if key == "CHECKPOINT":
        if not str(value).startswith("/"):
            raise ValueError("CHECKPOINT must be an absolute path, not %r" % value)
        return _text(value)
    return _text(value)


def notify(**fields):
    """Send one report: notify(STEP=10, LOSS=2.5). Keys are sent in the order
    given. Returns True when sent, False when CKPT_NOTIFY_SOCKET is unset.
    Raises ValueError for a malformed value and OSError when the socket cannot
    be reached (a trainer may ignore that: reports are advisory)."""
    addr = _address()
    lines = ["%s=%s" % (k, _format(k, v)) for k, v in fields.items()]
    if addr is None:
        return False
    data = "\n".join(lines).encode()
    if not data or len(data) > MAX_DATAGRAM:
        raise ValueError("a report is 1..%d bytes, not %d" % (MAX_DATAGRAM, len(data)))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.sendto(data, addr)
    return True


def ready():
    return notify(READY=1)


def report(step=None, epoch=None, loss=None, val_loss=None):
    """Progress: any of step, epoch, loss, val_loss. Each report also counts as
    a heartbeat for ckptd's hang detection."""
    fields = {}
    if step is not None:
        fields["STEP"] = step
    if epoch is not None:
        fields["EPOCH"] = epoch
    if loss is not None:
        fields["LOSS"] = loss
    if val_loss is not None:
        fields["VAL_LOSS"] = val_loss
    return notify(**fields) if fields else False


@contextlib.contextmanager
def saving():
    """Pause the hang timer while saving or loading a checkpoint."""
    notify(SAVING=1)
    try:
        yield
    finally:
        notify(SAVING=0)


def checkpoint(path):
    """Tell ckptd a version was committed (its absolute path)."""
    return notify(CHECKPOINT=os.path.abspath(path))


def corrupted(reason):
    """Report that the trainer's state is corrupt (ckptd recovers from the
    newest good checkpoint before the corruption)."""
    return notify(CORRUPTED=1, REASON=reason)


def status(text):
    return notify(STATUS=text)


def watchdog():
    return notify(WATCHDOG=1)


def stopping():
    return notify(STOPPING=1)
