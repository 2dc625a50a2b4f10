#!/usr/bin/python3
"""How long a re-exec pauses wardd (issue 11), with N instances.

Starts wardd on a private socket (no cgroups, 1 s metrics), creates N
instances of which R run `sleep` (every fourth capturing its output; the
rest are created, not started: with
3 fds per running instance the open-file hard limit caps R), re-executes
it K times and prints ward.stats' reexec_ms (from the moment the old
image starts writing its state to the moment the new one has read it
back: the time no request is served), and the client's view (ward.reexec
sent to the new image's first answer, the new binary's check included).
The baseline, timed in the same run: posix_spawn of `wardd --state-version`
and its wait (a bare exec of the same binary). Prints figures; not a test.

    tests/bench/bench_reexec.py [-n 1000] [-r 1000] [-k 10] [WARDD]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wardtest  # noqa: E402

SLEEP = "/usr/bin/sleep" if os.path.exists("/usr/bin/sleep") else "/bin/sleep"


def baseline(wardd, k=20):
    out = []
    for _ in range(k):
        t0 = time.perf_counter()
        pid = os.posix_spawn(wardd, [wardd, "--state-version"], {},
                             file_actions=[(os.POSIX_SPAWN_OPEN, 1,
                                            "/dev/null", os.O_WRONLY, 0)])
        os.waitpid(pid, 0)
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def measure(wardd, n, running, k):
    wardtest.WARDD = wardd
    w = wardtest.Ward(args=["--metrics-interval", "1000", "--log-level",
                            "warning", "--no-cgroups"])
    w.start()
    try:
        c = w.client()
        for j in range(n):
            if j < running:
                c.call("instance.run", {"argv": [SLEEP, "1000"],
                                        "capture_output": j % 4 == 0})
            else:
                c.call("instance.create", {"argv": [SLEEP, "1000"]})
        c.call("events.subscribe", {})
        pause, client = [], []
        for r in range(1, k + 1):
            t0 = time.perf_counter()
            c.call("ward.reexec")
            wardtest.retry(lambda: c.call("ward.stats")["reexecs"] == r,
                           what="re-exec")
            client.append((time.perf_counter() - t0) * 1000)
            pause.append(c.call("ward.stats")["reexec_ms"])
        st = c.call("ward.stats")
        assert st["running"] == running and st["instances"] == n, st
        c.call("ward.shutdown", {"kill_instances": True})
    finally:
        w.stop()
    return statistics.median(pause), max(pause), statistics.median(client)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, action="append")
    ap.add_argument("-r", type=int, action="append",
                    help="of which running (default: all, at most 4000)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("wardd", nargs="?", default=wardtest.WARDD)
    a = ap.parse_args()
    ns = a.n or [1000, 10000]
    rs = a.r or [min(n, 4000) for n in ns]
    base = baseline(a.wardd)
    print("baseline: posix_spawn + wait of `wardd --state-version`: "
          "%.2f ms (median of 20)" % base)
    print("%8s %8s  %12s %12s %14s  %s" % ("N", "running", "pause med",
          "pause max", "client med", "pause / baseline"))
    for n, r in zip(ns, rs):
        med, mx, cl = measure(a.wardd, n, r, a.k)
        print("%8d %8d  %9.2f ms %9.2f ms %11.2f ms  %.1fx" % (
            n, r, med, mx, cl, med / base))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
