#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the bundled training corpus of ckpt-train (trainer/corpus/corpus.txt).

The text is composed here, not downloaded: short sentences about a workshop,
weather, trains and numbers, built from fixed word lists with a fixed-seed
linear congruential generator, so the output is the same on every machine and
Python version. It has enough structure (spelling, grammar, repeated phrases,
counting) for a byte-level model to learn something measurable in a few
hundred steps. Run: python3 gen_corpus.py > corpus.txt
"""
import sys

STATE = [20260522]


def rnd(n):
    # Numerical Recipes LCG; only the high bits are used.
    STATE[0] = (STATE[0] * 1664525 + 1013904223) % (1 << 32)
    return (STATE[0] >> 8) % n


def pick(xs):
    return xs[rnd(len(xs))]


NAMES = ["Ada", "Boris", "Chen", "Dora", "Emil", "Farah", "Gus", "Hana", "Ivo", "Jun",
         "Kira", "Lars", "Mona", "Nils", "Olga", "Pia"]
PLACES = ["the workshop", "the station", "the harbour", "the mill", "the library",
          "the market", "the garden", "the bridge", "the school", "the bakery"]
THINGS = ["a lamp", "the clock", "an old map", "a box of nails", "the ledger",
          "a loaf of bread", "the bicycle", "a kettle", "the red kite", "a bell"]
VERBS = ["repaired", "carried", "found", "painted", "counted", "weighed",
         "cleaned", "opened", "wrapped", "measured"]
WEATHER = ["rain", "fog", "snow", "wind", "sun", "frost"]
ADJ = ["quiet", "busy", "cold", "bright", "narrow", "warm", "empty", "crowded"]
TIMES = ["in the morning", "at noon", "in the evening", "before dawn",
         "after supper", "on Sunday"]
NUMS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "ten", "eleven", "twelve"]


def sentence():
    k = rnd(7)
    if k == 0:
        return "%s %s %s at %s %s." % (pick(NAMES), pick(VERBS), pick(THINGS),
                                        pick(PLACES), pick(TIMES))
    if k == 1:
        return "The %s came %s, and %s was %s." % (pick(WEATHER), pick(TIMES),
                                                   pick(PLACES), pick(ADJ))
    if k == 2:
        a = rnd(12)
        b = rnd(12)
        return "%s and %s make %d." % (NUMS[a].capitalize(), NUMS[b], a + b + 2)
    if k == 3:
        return "At %s the train left at %d:%02d and arrived at %d:%02d." % (
            pick(PLACES)[4:], 6 + rnd(12), 5 * rnd(12), 7 + rnd(12), 5 * rnd(12))
    if k == 4:
        return "\"Where is %s?\" asked %s. \"Near %s,\" said %s." % (
            pick(THINGS), pick(NAMES), pick(PLACES), pick(NAMES))
    if k == 5:
        n = 1 + rnd(9)
        return "Count: " + ", ".join(NUMS[i] for i in range(n)) + "."
    return "%s was %s, so %s %s %s again." % (pick(PLACES).capitalize(), pick(ADJ),
                                              pick(NAMES), pick(VERBS), pick(THINGS))


def main():
    out = []
    size = 0
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 400000
    while size < target:
        para = " ".join(sentence() for _ in range(3 + rnd(5))) + "\n\n"
        out.append(para)
        size += len(para)
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
