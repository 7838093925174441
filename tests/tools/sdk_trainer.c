// SPDX-License-Identifier: MIT
/*
 * sdk_trainer.c - the smallest C trainer built against the installed SDK
 * (test_sdk.py compiles it with `pkg-config --cflags --libs ckptnotify`):
 * READY, then STEP/LOSS for every step and VAL_LOSS every 5th, then
 * STOPPING. Usage: sdk_trainer STEPS. The losses are 2 / (1 + step / 10).
 */
#include <ckptfs/notify.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int steps = argc > 1 ? atoi(argv[1]) : 20, ret;

	ret = ckpt_notifyf("READY=1\nSTATUS=sdk trainer, %d steps", steps);
	if (ret < 0) {
		fprintf(stderr, "sdk_trainer: ckpt_notifyf: error %d\n", ret);
		return 1;
	}
	for (int s = 1; s <= steps; s++) {
		double loss = 2.0 / (1.0 + s / 10.0);

		if (s % 5 == 0)
			ret = ckpt_notifyf("STEP=%d\nLOSS=%.9g\nVAL_LOSS=%.9g", s, loss,
					   loss + 0.5);
		else
			ret = ckpt_notifyf("STEP=%d\nLOSS=%.9g", s, loss);
		if (ret < 0)
			return 1;
		usleep(2000);
	}
	ckpt_notifyf("STOPPING=1");
	printf("sdk_trainer: %d steps reported (sent=%d)\n", steps, ret);
	return 0;
}
