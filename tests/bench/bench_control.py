#!/usr/bin/python3
"""instance.call's cost (issue 13 item 3): what relaying through wardd adds.

Starts wardd on a private socket and one payload (tests/control_payload,
libward's ward_control_serve) with control: true, then times: N calls one
after another through wardd (the round trip a client sees), the same N
straight to the payload's socket (the baseline: what wardd adds is the
difference), and N calls pipelined from C clients at once (throughput on
the one connection wardd keeps). Prints figures; not a test.

    tests/bench/bench_control.py [-n 5000] [-c 8] [BUILDDIR]
"""
import argparse
import os
import socket
import statistics
import sys
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wardtest  # noqa: E402


def sequential(c, name, n):
    out = []
    for k in range(n):
        t0 = time.perf_counter()
        assert c.call("instance.call", {"name": name, "method": "add",
                                        "params": [k, 1]}) == k + 1
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def direct(path, n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    u = msgpack.Unpacker(raw=False)
    out = []
    for k in range(n):
        t0 = time.perf_counter()
        s.sendall(msgpack.packb([0, k, "add", [k, 1]]))
        while True:
            m = next(u, None)
            if m is not None:
                break
            u.feed(s.recv(65536))
        assert m[3] == k + 1, m
        out.append((time.perf_counter() - t0) * 1e6)
    s.close()
    return out


def pipelined(w, name, n, nclients):
    """n calls from nclients clients, each keeping 64 / nclients in flight
    (64: the calls one instance may have pending)."""
    clients = [w.client() for _ in range(nclients)]
    window = max(1, 64 // nclients)
    quota = {c: n // nclients for c in clients}
    inflight = {c: 0 for c in clients}
    t0 = time.perf_counter()
    while any(quota.values()) or any(inflight.values()):
        for c in clients:
            while inflight[c] < window and quota[c] > 0:
                c.request("instance.call", {"name": name, "method": "add",
                                            "params": [1, 1]})
                inflight[c] += 1
                quota[c] -= 1
            if inflight[c] > 0:
                msg = c._next()
                assert msg[2] is None and msg[3] == 2, msg
                inflight[c] -= 1
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-c", type=int, default=8)
    ap.add_argument("builddir", nargs="?", default=wardtest.BUILDDIR)
    a = ap.parse_args()
    wardtest.WARDD = os.path.join(a.builddir, "src", "wardd")
    exe = os.path.join(a.builddir, "tests", "control_payload")
    w = wardtest.Ward(args=["--no-cgroups"]).start()
    try:
        c = w.client()
        c.call("instance.run", {"name": "bench", "argv": [exe],
                                "control": True})
        st = c.call("instance.status", {"name": "bench"})
        path = os.path.join(st["runtime_dir"], "control")
        c.call("instance.call", {"name": "bench", "method": "add",
                                 "params": [0, 0], "timeout_ms": 10000})
        via = sequential(c, "bench", a.n)
        base = direct(path, a.n)
        secs = pipelined(w, "bench", a.n, a.c)
        print("sequential through wardd: median %.0f us, p99 %.0f us" % (
            statistics.median(via), sorted(via)[int(len(via) * 0.99)]))
        print("straight to the payload:  median %.0f us, p99 %.0f us" % (
            statistics.median(base), sorted(base)[int(len(base) * 0.99)]))
        print("pipelined, %d clients:     %.0f calls/s (%d calls)" % (
            a.c, a.n // a.c * a.c / secs, a.n // a.c * a.c))
    finally:
        w.stop()


if __name__ == "__main__":
    main()
