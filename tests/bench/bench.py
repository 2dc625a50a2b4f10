#!/usr/bin/python3
"""bench.py: how much wardd costs, against a real wardd. Not a test: it
prints figures and exits 0.

  (a) spawn: 1000 `sleep 1000` via instance.run (one request at a time)
      versus 1000 os.posix_spawn of the same from Python
  (b) latency: ward.hello round trip versus a raw socketpair echo of a
      msgpack message of the same size by a Python subprocess
  (c) memory: wardd's RSS idle and with 1000 instances running
  (d) stop: instance.stop to all 1000, until every died event arrived

Usage: WARD_BUILDDIR=/path/to/build tests/bench/bench.py [-n COUNT]
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("WARD_BUILDDIR",
                      os.path.abspath(os.path.join(HERE, "..", "..")))

import msgpack  # noqa: E402

import wardtest  # noqa: E402

SLEEP = "/usr/bin/sleep" if os.path.exists("/usr/bin/sleep") else "/bin/sleep"

# The echo peer for (b): reads one msgpack request, answers with a reply of
# the size wardd's ward.hello reply has, as wardd would: unpack, pack, send.
ECHO = r"""
import os, socket, sys, msgpack
s = socket.socket(fileno=int(sys.argv[1]))
body = {"server": "wardd", "version": "0.1.0", "protocol": 1,
        "pid": os.getpid(), "uid": 0, "admin": True}
u = msgpack.Unpacker(raw=False)
while True:
    d = s.recv(65536)
    if not d:
        break
    u.feed(d)
    for m in u:
        s.sendall(msgpack.packb([1, m[1], None, body]))
"""


class Raw:
    """The smallest client: one request, one reply; used for both sides of
    (b) so that only the server differs."""

    def __init__(self, sock):
        self.sock = sock
        self.unp = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.msgid = 0

    def call(self, method, params=None):
        self.msgid += 1
        self.sock.sendall(msgpack.packb(
            [0, self.msgid, method, [] if params is None else [params]]))
        while True:
            for m in self.unp:
                if m[0] == 1:
                    assert m[1] == self.msgid and m[2] is None, m
                    return m[3]
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("EOF")
            self.unp.feed(d)


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def median_rtt_us(client, n, method="ward.hello"):
    for _ in range(200):            # warm up
        client.call(method)
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        client.call(method)
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1000, \
        sorted(samples)[int(n * 0.99)] / 1000


def bench_posix_spawn(n):
    t = time.perf_counter()
    pids = [os.posix_spawn(SLEEP, ["sleep", "1000"], os.environ)
            for _ in range(n)]
    dt = time.perf_counter() - t
    for p in pids:
        os.kill(p, signal.SIGKILL)
    for p in pids:
        os.waitpid(p, 0)
    return dt


def bench_echo(n):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    peer = subprocess.Popen([sys.executable, "-c", ECHO, str(b.fileno())],
                            pass_fds=[b.fileno()])
    b.close()
    try:
        return median_rtt_us(Raw(a), n)
    finally:
        a.close()
        peer.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000, help="instances")
    ap.add_argument("--rtt", type=int, default=5000, help="round trips")
    args = ap.parse_args()
    n = args.n

    rows = []
    ward = wardtest.Ward().start()
    try:
        pid = ward.proc.pid
        ctl = wardtest.Client(ward.sock, timeout=120)
        raw = Raw(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        raw.sock.connect(ward.sock)

        # (b) latency, while wardd is idle.
        hello_med, hello_p99 = median_rtt_us(raw, args.rtt)
        echo_med, echo_p99 = bench_echo(args.rtt)

        # (c) memory, idle.
        st0 = ctl.call("ward.stats")
        rss0, vm0 = st0["rss_kb"], vmrss_kb(pid)

        # (a) spawn: wardd, then the baseline in the same run.
        sub = wardtest.Client(ward.sock, timeout=120)
        sub.call("events.subscribe", {"types": ["died"]})
        ids = []
        t = time.perf_counter()
        for _ in range(n):
            r = ctl.call("instance.run", {"argv": [SLEEP, "1000"]})
            ids.append(r["id"])
        ward_spawn = time.perf_counter() - t
        base_spawn = bench_posix_spawn(n)

        # (c) memory with n running.
        st1 = ctl.call("ward.stats")
        assert st1["running"] == n, st1
        rss1, vm1 = st1["rss_kb"], vmrss_kb(pid)
        threads = len(os.listdir("/proc/%d/task" % pid))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        hello_busy, _ = median_rtt_us(raw, 1000)

        # (d) stop all, until every died event arrived.
        t = time.perf_counter()
        msgids = [ctl.request("instance.stop", {"id": i}) for i in ids]
        for m in msgids:
            err, _ = ctl.response(m)
            assert err is None, err
        t_acked = time.perf_counter() - t
        died = set()
        while len(died) < n:
            died.add(sub.event(lambda e: e["type"] == "died")["id"])
        t_died = time.perf_counter() - t
        assert died == set(ids)

        rows = [
            ("(a) spawn %d via instance.run" % n, "%.3f s" % ward_spawn,
             "%.0f us/inst" % (ward_spawn / n * 1e6)),
            ("    spawn %d via os.posix_spawn" % n, "%.3f s" % base_spawn,
             "%.0f us/inst" % (base_spawn / n * 1e6)),
            ("    ratio wardd / posix_spawn", "%.2fx" % (ward_spawn / base_spawn),
             ""),
            ("(b) ward.hello round trip", "%.1f us median" % hello_med,
             "p99 %.1f us" % hello_p99),
            ("    socketpair msgpack echo", "%.1f us median" % echo_med,
             "p99 %.1f us" % echo_p99),
            ("    ratio wardd / echo", "%.2fx" % (hello_med / echo_med), ""),
            ("    ward.hello with %d running" % n, "%.1f us median" % hello_busy,
             ""),
            ("(c) wardd RSS idle", "%d KiB (stats)" % rss0,
             "%d KiB (VmRSS)" % vm0),
            ("    wardd RSS with %d running" % n, "%d KiB (stats)" % rss1,
             "%d KiB (VmRSS)" % vm1),
            ("    per instance", "%.2f KiB (stats)" % ((rss1 - rss0) / n),
             "%.2f KiB (VmRSS)" % ((vm1 - vm0) / n)),
            ("    threads / fds with %d running" % n, "%d / %d" % (threads, fds),
             ""),
            ("(d) stop %d: all replies" % n, "%.3f s" % t_acked, ""),
            ("    stop %d: all died events" % n, "%.3f s" % t_died,
             "%.0f us/inst" % (t_died / n * 1e6)),
        ]
        for m in [ctl.request("instance.remove", {"id": i}) for i in ids]:
            ctl.response(m)
        raw.sock.close()
        sub.close()
        ctl.close()
    finally:
        ward.stop()

    w = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print("wardd benchmark (%s, %d CPUs)" % (os.uname().release,
                                            os.cpu_count()))
    for a, b, c in rows:
        print("%-*s  %-*s  %s" % (w, a, w1, b, c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
