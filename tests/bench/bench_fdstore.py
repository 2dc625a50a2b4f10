#!/usr/bin/python3
"""What keeping the state costs wardd's loop (issue 11): N running
instances, churn (C instance restarts a second), for S seconds; once with
an fd store (NOTIFY_SOCKET: tests/lib/fdstore.py plays systemd) and once
without (STATE_DIR/state only). Prints the states written per second, the
loop time they took per second (ward.stats snapshot.ms) and per write, the
fds stored, and, as the baseline of the same run, the median ward.hello
round trip. Prints figures; not a test.

    tests/bench/bench_fdstore.py [-n 1000] [-c 20] [-s 10] [WARDD]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import fdstore  # noqa: E402
import wardtest  # noqa: E402

SLEEP = "/usr/bin/sleep" if os.path.exists("/usr/bin/sleep") else "/bin/sleep"


def measure(wardd, n, churn, secs, with_store):
    wardtest.WARDD = wardd
    d = tempfile.mkdtemp(prefix="ward-bench-")
    store = fdstore.FdStore(os.path.join(d, "notify")) if with_store else None
    env = dict(os.environ)
    if store:
        env["NOTIFY_SOCKET"] = store.path
    w = wardtest.Ward(args=["--metrics-interval", "1000", "--log-level",
                            "warning", "--no-cgroups"], env=env)
    w.start()
    try:
        c = w.client()
        ids = []
        for j in range(n):
            ids.append(c.call("instance.run", {"argv": [SLEEP, "1000"],
                       "capture_output": j % 2 == 0})["id"])
        rtt = []
        for _ in range(200):
            t0 = time.perf_counter()
            c.call("ward.hello")
            rtt.append((time.perf_counter() - t0) * 1000)
        s0 = c.call("ward.stats")
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < secs:
            tick = time.monotonic()
            for _ in range(churn):
                i = ids[k % len(ids)]
                k += 1
                c.call("instance.kill", {"id": i, "signal": "KILL"})
                wardtest.wait_dead(c, i)
                c.call("instance.start", {"id": i})
            left = 1.0 - (time.monotonic() - tick)
            if left > 0:
                time.sleep(left)	# pace the churn: C a second
        el = time.monotonic() - t0
        s1 = c.call("ward.stats")
        writes = s1["snapshot"]["writes"] - s0["snapshot"]["writes"]
        ms = s1["snapshot"]["ms"] - s0["snapshot"]["ms"]
        size = os.path.getsize(os.path.join(w.state, "state"))
        stored = len(store.names()) if store else 0
        c.call("ward.shutdown", {"kill_instances": True})
    finally:
        w.stop()
        if store:
            store.close()
    return (writes / el, ms / el, ms / max(writes, 1), size, stored,
            statistics.median(rtt))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("-c", type=int, default=20)
    ap.add_argument("-s", type=float, default=10)
    ap.add_argument("wardd", nargs="?", default=wardtest.WARDD)
    a = ap.parse_args()
    print("%d running instances (half capturing output), %d restarts/s, "
          "%.0f s" % (a.n, a.c, a.s))
    print("%-16s %9s %12s %11s %10s %8s %10s %s" % (
        "", "writes/s", "loop ms/s", "ms/write", "state", "stored",
        "hello rtt", "ms/write in rtts"))
    for store in (True, False):
        wps, mps, mpw, size, stored, rtt = measure(a.wardd, a.n, a.c,
                                                   a.s, store)
        print("%-16s %9.1f %9.2f ms %8.2f ms %7d KB %8d %7.3f ms %.0fx" % (
            "fd store" if store else "STATE_DIR only", wps, mps, mpw,
            size // 1024, stored, rtt, mpw / rtt))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
