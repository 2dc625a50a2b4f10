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
the follower too). Each case runs R times (default 3). "speed" is the
baseline's time / wardd's time in the same repetition (>= 1: as fast as
cat; the target is >= 0.8); "cpu" is wardd's CPU time (its schedstat)
over cat's (wait4). The "best" row compares the best time (and the least
CPU) of each over the repetitions, the figure least disturbed by other
work on a shared machine; "min" is the worst repetition's speed.
Several wardd binaries give a column each, measured in turn in every
repetition (an old build beside a new one, for a ratio in one sitting).

Usage: WARD_BUILDDIR=/path/to/build tests/bench/bench_output.py
           [-b MIB] [-l LINES] [-r REPS] [-c CASES] [WARDD ...]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("WARD_BUILDDIR",
                      os.path.abspath(os.path.join(HERE, "..", "..")))

import wardtest  # noqa: E402

CHUNK = 64 << 10
END = b"ward-bench-output-end"


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


class Dropped(Exception):
    """The follower was dropped (fell 1 MiB behind), or lost."""


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
        """After the answer (the instance is not started yet, so nothing
        else can come), the notifications are only searched, not unpacked:
        for the writer's END mark, or an overflow."""
        s, _ = wardtest.follow_raw(sockpath, {"id": ident}, raw=True,
                                   rcvbuf=None)
        os.write(w, b"ready\n")
        buf = bytearray(4 << 20)
        keep = max(len(END), len(b"overflow"))
        got, at = 0, 0
        while True:
            n = s.recv_into(memoryview(buf)[at:])
            if n == 0:
                return "error wardd closed the follower after %d" % got
            got += n
            end = at + n
            start = max(at - keep, 0)
            if buf.find(b"overflow", start, end) != -1:
                return "error dropped after %d bytes" % got
            if buf.find(END, start, end) != -1:
                return "ok %d" % got
            if end > len(buf) - (1 << 20):
                buf[:keep] = buf[end - keep:end]
                end = keep
            at = end

    def result(self):
        """The bytes it got (notifications and all); raises if it was
        dropped."""
        line = self.r.readline().strip()
        os.waitpid(self.pid, 0)
        self.r.close()
        if not line.startswith("ok "):
            raise Dropped("follower: %s" % line[6:])
        return int(line[3:])


def cpu_time(pid):
    """Seconds pid has run on a CPU (schedstat: nanoseconds)."""
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0]) / 1e9


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
        cpu0 = cpu_time(ward.proc.pid)
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
            assert got > case.nbytes, (got, case.nbytes)
        dt = time.perf_counter() - t
        cpu = cpu_time(ward.proc.pid) - cpu0
        st = c.call("instance.status", {"id": ident})
        assert st["exit_code"] == 0, st
        if case.logfile:
            assert files_size(d) == case.nbytes, (files_size(d), case.nbytes)
        tail = c.call("instance.log", {"id": ident, "bytes": 100})["data"]
        assert len(tail) == 100, tail
    finally:
        ward.stop()
        clean(d)
    return dt, cpu


def run_cat(case, d):
    """The writer piped into cat: seconds, and cat's CPU seconds."""
    sink = os.path.join(d, "base") if case.sink == "file" else "/dev/null"
    with open(sink, "wb") as out:
        t = time.perf_counter()
        w = subprocess.Popen(["/bin/sh", "-c", case.writer],
                             stdout=subprocess.PIPE)
        cat = subprocess.Popen(["cat"], stdin=w.stdout, stdout=out)
        w.stdout.close()
        _, status, ru = os.wait4(cat.pid, 0)
        cat.returncode = os.waitstatus_to_exitcode(status)
        assert w.wait() == 0 and cat.returncode == 0
        dt = time.perf_counter() - t
    if case.sink == "file":
        assert os.path.getsize(sink) == case.nbytes
    clean(d)
    return dt, ru.ru_utime + ru.ru_stime


def min_pair(a, b):
    """The lesser (time, cpu) pair of two, each element on its own: the
    best of several runs is the one least disturbed by other work."""
    return b if a is None else (min(a[0], b[0]), min(a[1], b[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", type=int, default=256, help="MiB of block output")
    ap.add_argument("-l", type=int, default=500000, help="lines for (b)")
    ap.add_argument("-r", type=int, default=3, help="repetitions")
    ap.add_argument("-c", default="abcd", help="cases to run (e: (d) "
                    "without the log file, not run by default)")
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
    blocks = "; ".join(["dd if=%s bs=%d status=none" % (text, CHUNK)] *
                       reps) + "; echo %s" % END.decode()
    nblocks = reps * (text_mib << 20) + len(END) + 1
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
        Case("e", "64 KiB blocks, ring only, 1 follower", blocks, nblocks,
             False, True, "/dev/null"),
    ]
    cases = [k for k in cases if k.key in a.c]
    print("wardd output benchmark (%s, %d CPUs, load %.2f)" % (
        os.uname().release, os.cpu_count(), os.getloadavg()[0]))
    print("(a)-(d): %d MiB of blocks; (b): %d lines, %d bytes" % (
        nblocks >> 20, a.l, nlines))
    for k, w in enumerate(wardds):
        print("wardd[%d] = %s" % (k, w))
    head = "%-44s %3s %9s %7s" % ("case", "rep", "cat MiB/s", "cpu ms")
    for k in range(len(wardds)):
        head += " | %9s %6s %7s %5s" % ("wardd[%d]" % k, "speed", "cpu ms",
                                         "cpu")
    print(head)
    try:
        for case in cases:
            speed = [[] for _ in wardds]
            best = [None for _ in wardds]
            base_best = None
            mib = case.nbytes / float(1 << 20)
            for rep in range(a.r):
                base, base_cpu = run_cat(case, d)
                base_best = min_pair(base_best, (base, base_cpu))
                row = "%-44s %3d %9.0f %7.0f" % (
                    "(%s) %s" % (case.key, case.what), rep + 1, mib / base,
                    base_cpu * 1e3)
                for k, w in enumerate(wardds):
                    try:
                        dt, cpu = run_wardd(w, case, d)
                    except Dropped as e:
                        speed[k].append(0)
                        row += " | %-33s" % e
                        continue
                    speed[k].append(base / dt)
                    best[k] = min_pair(best[k], (dt, cpu))
                    row += " | %9.0f %5.2fx %7.0f %4.1fx" % (
                        mib / dt, base / dt, cpu * 1e3, cpu / base_cpu)
                print(row, flush=True)
            row = "%-44s %3s %9.0f %7.0f" % ("", "best", mib / base_best[0],
                                            base_best[1] * 1e3)
            for b in best:
                if b is None:
                    row += " | %-33s" % "(every run dropped)"
                    continue
                row += " | %9.0f %5.2fx %7.0f %4.1fx" % (
                    mib / b[0], base_best[0] / b[0], b[1] * 1e3,
                    b[1] / base_best[1])
            print(row)
            row = "%-44s %3s %9s %7s" % ("", "min", "", "")
            for r in speed:
                row += " | %9s %5.2fx %7s %5s" % ("", min(r), "", "")
            print(row, flush=True)
    finally:
        clean(d)
        os.rmdir(d)
        os.unlink(text)
        os.rmdir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
