#!/usr/bin/python3
"""bench_output.py: captured output against `cat`, with a real wardd. Not a
test: it prints figures, each beside a baseline measured in the same run
(just before it, by the same writer), and exits 0.

  (a) blocks: 64 KiB writes (dd) of B MiB of text, captured into a log
      file rotated at 64 MiB; versus the writer piped into `cat > file`
  (b) lines: L short lines, one write(2) each (stdbuf -oL seq), into a log
      file; versus the writer piped into `cat > file`
  (c) ring only: (a)'s writer, no log file (the ring alone, instance.log);
      versus the writer piped into `cat > /dev/null`
  (d) follower: (a) with one instance.log follower connected, which reads
      and unpacks every ward.log notification; versus (a)'s baseline. The
      time runs until the follower has the last byte.

A wardd figure runs from the request that starts the payload to its died
event (and, for (a), (b) and (d), to the whole output on disk, for (d) in
the follower too). Each case runs R times (default 3); the ratio is
baseline time / wardd time of the same repetition (>= 1: as fast as cat).
Several wardd binaries give a column each, measured in turn in every
repetition (an old build beside a new one, for a ratio in one sitting).

Usage: WARD_BUILDDIR=/path/to/build tests/bench/bench_output.py
           [-b MIB] [-l LINES] [-r REPS] [-c CASES] [WARDD ...]
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("WARD_BUILDDIR",
                      os.path.abspath(os.path.join(HERE, "..", "..")))

import wardtest  # noqa: E402

CHUNK = 64 << 10


def make_text(d, mib):
    """A file of mib MiB of short text lines (what the block writers send:
    valid UTF-8, so a follower gets it as it is)."""
    path = os.path.join(d, "text")
    line = b"".join(b"%07d the quick brown fox jumps over the lazy dog\n" % k
                    for k in range(1024))
    with open(path, "wb") as f:
        left = mib << 20
        while left > 0:
            f.write(line[:left])
            left -= len(line[:left])
    return path


class Case:
    def __init__(self, key, what, writer, nbytes, logfile, follow, sink):
        self.key, self.what, self.writer = key, what, writer
        self.nbytes, self.logfile, self.follow = nbytes, logfile, follow
        self.sink = sink		# the baseline's: "file" or "/dev/null"


def files_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def clean(d):
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))


class Follower:
    """A process that follows stdout of instance ident, counting the bytes
    of data its ward.log notifications bring, until it has want of them.
    A process of its own at a higher priority: a follower that falls 1 MiB
    behind is dropped, and on 2 busy cores a thread of this one would be."""

    def __init__(self, sockpath, ident, want):
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(r)
            try:
                msg = self.follow(sockpath, ident, want, w)
            except Exception as e:  # noqa: BLE001 (reported by the parent)
                msg = "error %r" % e
            os.write(w, (msg + "\n").encode())
            os._exit(0)
        os.close(w)
        try:
            os.setpriority(os.PRIO_PROCESS, self.pid, -10)
        except OSError:
            pass                    # not root: as it is
        self.r = os.fdopen(r)
        line = self.r.readline()
        assert line == "ready\n", line

    @staticmethod
    def follow(sockpath, ident, want, w):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sockpath)
        s.settimeout(wardtest.TIMEOUT)
        s.sendall(msgpack.packb([0, 1, "instance.log", [
            {"id": ident, "follow": True, "bytes": 0}]]))
        u = msgpack.Unpacker(raw=True)
        got, answered = 0, False
        while got < want:
            data = s.recv(1 << 20)
            if not data:
                return "error wardd closed the follower after %d" % got
            u.feed(data)
            for m in u:
                if m[0] == 1:
                    assert m[2] is None, m
                    answered = True
                    os.write(w, b"ready\n")
                elif m[1] == b"ward.log":
                    n = m[2][0]
                    if b"overflow" in n:
                        return "error dropped after %d bytes" % got
                    got += len(n[b"data"])
        return "ok %d" % got

    def result(self):
        """The bytes it got; raises if it was dropped."""
        line = self.r.readline().strip()
        os.waitpid(self.pid, 0)
        self.r.close()
        if not line.startswith("ok "):
            raise AssertionError("follower: %s" % line)
        return int(line[3:])


def run_wardd(wardd, case, d):
    wardtest.WARDD = wardd
    ward = wardtest.Ward(["--log-level", "warning"]).start()
    try:
        c = ward.client()
        sub = ward.client()
        sub.call("events.subscribe", {"types": ["died"]})
        spec = {"argv": ["/bin/sh", "-c", case.writer],
                "capture_output": True}
        if case.logfile:
            spec.update({"stdout_logfile": os.path.join(d, "w.log"),
                         "logfile_maxbytes": 64 << 20,
                         "logfile_backups": 100})
        follower = None
        if case.follow:
            ident = c.call("instance.create", spec)["id"]
            follower = Follower(ward.sock, ident, case.nbytes)
            t = time.perf_counter()
            c.call("instance.start", {"id": ident})
        else:
            t = time.perf_counter()
            ident = c.call("instance.run", spec)["id"]
        sub.event(lambda e: e["type"] == "died" and e["id"] == ident,
                  timeout=300)
        if case.logfile:
            wardtest.retry(lambda: files_size(d) >= case.nbytes, timeout=60,
                           what="the whole output in the log files")
        if follower:
            got = follower.result()
            assert got == case.nbytes, (got, case.nbytes)
        dt = time.perf_counter() - t
        st = c.call("instance.status", {"id": ident})
        assert st["exit_code"] == 0, st
        if case.logfile:
            assert files_size(d) == case.nbytes, (files_size(d), case.nbytes)
        tail = c.call("instance.log", {"id": ident, "bytes": 100})["data"]
        assert len(tail) == 100, tail
    finally:
        ward.stop()
        clean(d)
    return dt


def run_cat(case, d):
    sink = os.path.join(d, "base") if case.sink == "file" else "/dev/null"
    t = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", "(%s) | cat > %s" % (case.writer, sink)],
                   check=True)
    dt = time.perf_counter() - t
    if case.sink == "file":
        assert os.path.getsize(sink) == case.nbytes
    clean(d)
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", type=int, default=256, help="MiB of block output")
    ap.add_argument("-l", type=int, default=500000, help="lines for (b)")
    ap.add_argument("-r", type=int, default=3, help="repetitions")
    ap.add_argument("-c", default="abcd", help="cases to run")
    ap.add_argument("wardd", nargs="*",
                    help="wardd binaries (default: the build's)")
    a = ap.parse_args()
    wardds = [os.path.abspath(w) for w in a.wardd] or [wardtest.WARDD]
    work = tempfile.mkdtemp(prefix="ward-bench-out-")
    d = os.path.join(work, "out")
    os.mkdir(d)
    text_mib = 64
    text = make_text(work, text_mib)
    reps = (a.b + text_mib - 1) // text_mib
    blocks = "; ".join(["dd if=%s bs=%d status=none" % (text, CHUNK)] * reps)
    nblocks = reps * (text_mib << 20)
    lines = "stdbuf -oL seq %d" % a.l
    nlines = len(subprocess.run(["seq", str(a.l)], check=True,
                                capture_output=True).stdout)
    cases = [
        Case("a", "64 KiB blocks to a log file", blocks, nblocks, True,
             False, "file"),
        Case("b", "short lines (a write each) to a log file", lines, nlines,
             True, False, "file"),
        Case("c", "64 KiB blocks, ring only", blocks, nblocks, False, False,
             "/dev/null"),
        Case("d", "64 KiB blocks to a log file, 1 follower", blocks, nblocks,
             True, True, "file"),
    ]
    cases = [k for k in cases if k.key in a.c]
    print("wardd output benchmark (%s, %d CPUs, load %.2f)" % (
        os.uname().release, os.cpu_count(), os.getloadavg()[0]))
    print("(a)-(d): %d MiB of blocks; (b): %d lines, %d bytes" % (
        nblocks >> 20, a.l, nlines))
    for k, w in enumerate(wardds):
        print("wardd[%d] = %s" % (k, w))
    head = "%-45s %3s  %12s" % ("case", "rep", "cat MiB/s") + "".join(
        "  %12s %6s" % ("wardd[%d]" % k, "ratio") for k in range(len(wardds)))
    print(head)
    try:
        for case in cases:
            ratios = [[] for _ in wardds]
            for rep in range(a.r):
                base = run_cat(case, d)
                mib = case.nbytes / float(1 << 20)
                row = "%-45s %3d  %12.0f" % ("(%s) %s" % (case.key, case.what),
                                             rep + 1, mib / base)
                for k, w in enumerate(wardds):
                    dt = run_wardd(w, case, d)
                    ratios[k].append(base / dt)
                    row += "  %12.0f %5.2fx" % (mib / dt, base / dt)
                print(row, flush=True)
            print("%-45s %3s  %12s" % ("", "min", "") + "".join(
                "  %12s %5.2fx" % ("", min(r)) for r in ratios), flush=True)
    finally:
        clean(d)
        os.rmdir(d)
        os.unlink(text)
        os.rmdir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
