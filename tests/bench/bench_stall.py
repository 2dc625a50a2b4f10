#!/usr/bin/python3
"""How long wardd's loop is held while N payloads run (issue 12).

Starts each given wardd on a private socket with 1 s metrics and no
cgroups, runs N `sleep` instances, waits for two whole metrics passes,
then times ward.hello round trips back to back for 6 s: the maximum is
the longest the loop was held (by the metrics pass, before it was cut into
slices of METRICS_PER_TICK). Not part of the suite: it prints figures.

    tests/bench/bench_stall.py [-n 2000] WARDD [WARDD ...]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wardtest  # noqa: E402


def measure(wardd, n, seconds=6.0):
    wardtest.WARDD = wardd
    w = wardtest.Ward(args=["--metrics-interval", "1000", "--log-level",
                            "warning", "--no-cgroups"])
    w.start()
    try:
        c = w.client()
        for _ in range(n):
            c.call("instance.run", {"argv": ["/bin/sleep", "1000"]})
        # Two whole metrics passes over all of them before measuring.
        t0 = c.call("ward.stats")["metrics_ticks"]
        wardtest.retry(lambda: c.call("ward.stats")["metrics_ticks"] >= t0 + 3,
                       what="two metrics passes")
        rtts = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            c.call("ward.hello")
            rtts.append((time.perf_counter() - t0) * 1000)
        c.call("ward.shutdown", {"kill_instances": True})
    finally:
        w.stop()
    rtts.sort()
    return rtts[len(rtts) // 2], rtts[int(len(rtts) * 0.99)], rtts[-1], \
        len(rtts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("wardd", nargs="+")
    a = ap.parse_args()
    for wardd in a.wardd:
        p50, p99, mx, calls = measure(wardd, a.n)
        print("%s: %d running, ward.hello ms p50 %.3f p99 %.3f max %.2f "
              "(%d calls)" % (wardd, a.n, p50, p99, mx, calls))


if __name__ == "__main__":
    main()
