#!/usr/bin/python3
"""What side processes cost (issue 13, item 4): N instances brought to
`running` plain, with a pre_start of /bin/true, and with two sidecars,
then ward.hello's worst round trip while a pre_start sleeps (the loop
never waits for one). Not part of the suite: it prints figures.

    tests/bench/bench_hooks.py [-n 100] WARDD
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wardtest  # noqa: E402


def bring_up(c, n, **kw):
    """Seconds from the first instance.run to all n running; then gone."""
    t0 = time.monotonic()
    ids = [c.call("instance.run", dict(argv=["/bin/sleep", "1000"], **kw))
           ["id"] for _ in range(n)]
    for i in ids:
        wardtest.retry(lambda: c.call("instance.status", {"id": i})
                       ["state"] == "running", what="running")
    dt = time.monotonic() - t0
    for i in ids:
        c.call("instance.stop", {"id": i, "timeout_ms": 100})
    for i in ids:
        wardtest.wait_dead(c, i)
        c.call("instance.remove", {"id": i})
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("wardd")
    a = ap.parse_args()
    wardtest.WARDD = a.wardd
    w = wardtest.Ward(args=["--log-level", "warning"]).start()
    try:
        c = w.client()
        for what, kw in (("plain", {}),
                         ("pre_start /bin/true", {"pre_start": ["/bin/true"]}),
                         ("2 sidecars", {"sidecars":
                                         [["/bin/sleep", "1000"]] * 2})):
            print("%-20s %d instances running in %5.0f ms" % (
                what, a.n, bring_up(c, a.n, **kw) * 1000), flush=True)
        c.call("instance.run", {"argv": ["/bin/sleep", "1000"],
                                "pre_start": ["/bin/sleep", "5"]})
        worst = 0.0
        for _ in range(200):
            t0 = time.monotonic()
            c.call("ward.hello")
            worst = max(worst, time.monotonic() - t0)
        print("ward.hello while a pre_start sleeps: worst of 200 %.2f ms"
              % (worst * 1000))
    finally:
        w.stop()


if __name__ == "__main__":
    main()
