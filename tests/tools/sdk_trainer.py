# SPDX-License-Identifier: MIT
"""sdk_trainer.py - the Python twin of sdk_trainer.c: `import ckpt_notify`
from wherever it is installed (test_sdk.py sets PYTHONPATH to the install
dir only), READY, STEP/LOSS per step, VAL_LOSS every 5th, STOPPING."""
import sys
import time

import ckpt_notify as cn

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
print("sdk_trainer.py: ckpt_notify from", cn.__file__, flush=True)
cn.ready()
for s in range(1, steps + 1):
    loss = 2.0 / (1.0 + s / 10.0)
    cn.report(step=s, loss=loss, val_loss=loss + 0.5 if s % 5 == 0 else None)
    time.sleep(0.002)
cn.stopping()
