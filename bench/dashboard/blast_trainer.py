# SPDX-License-Identifier: MIT
"""blast_trainer.py STEPS - report STEPS steps to CKPT_NOTIFY_SOCKET as fast
as ckptd takes them (STEP/LOSS each, VAL_LOSS every 1000th), for the
dashboard bench. One socket, blocking sends: none is lost."""
import math
import os
import socket
import sys

steps = int(sys.argv[1])
name = os.environ["CKPT_NOTIFY_SOCKET"]
addr = "\0" + name[1:] if name.startswith("@") else name
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", addr)
for i in range(1, steps + 1):
    loss = 3.0 * math.exp(-i / (steps / 3)) + 0.05 * math.sin(i / 50.0) + 1.0
    msg = "STEP=%d\nLOSS=%.6f" % (i, loss)
    if i % 1000 == 0:
        msg += "\nVAL_LOSS=%.6f" % (loss + 0.1)
    s.sendto(msg.encode(), addr)
s.sendto(b"STOPPING=1", addr)
