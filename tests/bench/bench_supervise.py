#!/usr/bin/python3
"""bench_supervise.py: what supervision costs, against a real wardd. Not a
test: it prints figures, each beside a baseline measured in the same run,
and exits 0.

  (e) restart: a declared program that exits at once, restart=always with
      a 1 ms backoff, K runs; per run, versus posix_spawn + waitpid of the
      same program from Python
  (f) output: a payload writes B bytes to stdout, captured into a log file
      (with rotation at 64 MiB) until its died event; versus the same
      writer piped into `cat > file` by the shell
  (g) whole-tree stop: an instance whose shell started T background sleeps
      (in their own sessions, where only the cgroup finds them), stopped
      until its died event; versus stopping a lone sleep

Usage: WARD_BUILDDIR=/path/to/build tests/bench/bench_supervise.py
           [-k RUNS] [-b MIB] [-t TREE]
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

TRUE = "/usr/bin/true" if os.path.exists("/usr/bin/true") else "/bin/true"


def bench_restart(k):
    conf = tempfile.mkdtemp(prefix="ward-bench-conf-")
    with open(os.path.join(conf, "bench.conf"), "w") as f:
        f.write("[program:flap]\ncommand = %s\nrestart = always\n"
                "autostart = false\nstartsecs = 0\nbackoff_initial_ms = 1\n"
                "backoff_max_ms = 1\nrestart_window_ms = 1\n"
                "capture_output = false\n" % TRUE)
    ward = wardtest.Ward(["--config-dir", conf, "--log-level", "warning"])
    ward.start()
    try:
        c = ward.client()
        sub = ward.client()
        sub.call("events.subscribe", {"types": ["started"]})
        c.call("instance.start", {"name": "flap"})
        sub.event(lambda e: e["type"] == "started")
        t = time.perf_counter()
        for _ in range(k):
            sub.event(lambda e: e["type"] == "started")
        dt = time.perf_counter() - t
        c.call("instance.stop", {"name": "flap"})
    finally:
        ward.stop()
        os.unlink(os.path.join(conf, "bench.conf"))
        os.rmdir(conf)
    t = time.perf_counter()
    for _ in range(k):
        os.waitpid(os.posix_spawn(TRUE, ["true"], os.environ), 0)
    base = time.perf_counter() - t
    return dt / k, base / k


def bench_output(mib):
    ward = wardtest.Ward(["--log-level", "warning"]).start()
    d = tempfile.mkdtemp(prefix="ward-bench-out-")
    writer = "head -c %d /dev/zero" % (mib << 20)
    try:
        c = ward.client()
        sub = ward.client()
        sub.call("events.subscribe", {"types": ["died"]})
        log = os.path.join(d, "w.log")
        t = time.perf_counter()
        r = c.call("instance.run", {
            "argv": ["/bin/sh", "-c", writer], "capture_output": True,
            "stdout_logfile": log, "logfile_maxbytes": 64 << 20,
            "logfile_backups": 100})
        sub.event(lambda e: e["type"] == "died" and e["id"] == r["id"])
        dt = time.perf_counter() - t
        st = c.call("instance.status", {"id": r["id"]})
        assert st["exit_code"] == 0, st
        got = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        assert got == mib << 20, (got, os.listdir(d))
    finally:
        ward.stop()
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    t = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", "%s | cat > %s/base" % (writer, d)],
                   check=True)
    base = time.perf_counter() - t
    os.unlink(os.path.join(d, "base"))
    os.rmdir(d)
    return mib / dt, mib / base


def stop_time(c, sub, argv, ready_file=None):
    r = c.call("instance.run", {"argv": argv})
    if ready_file:
        wardtest.wait_file(ready_file)
    cgroup = c.call("instance.status", {"id": r["id"]}).get("cgroup")
    t = time.perf_counter()
    c.call("instance.stop", {"id": r["id"], "timeout_ms": 5000})
    ev = sub.event(lambda e: e["type"] == "died" and e["id"] == r["id"])
    assert ev["exit"]["death_reason"] in ("KILLED", "SHUTDOWN"), ev
    return time.perf_counter() - t, cgroup is not None


def bench_tree(n):
    ward = wardtest.Ward(["--log-level", "warning"]).start()
    d = tempfile.mkdtemp(prefix="ward-bench-tree-")
    try:
        c = ward.client()
        sub = ward.client()
        sub.call("events.subscribe", {"types": ["died"]})
        lone, _ = stop_time(c, sub, ["sleep", "1000"])
        flag = os.path.join(d, "up")
        script = ("for i in $(seq %d); do setsid sleep 1000 & done; "
                  "echo up > %s; wait" % (n, flag))
        tree, cgroups = stop_time(c, sub, ["/bin/sh", "-c", script], flag)
    finally:
        ward.stop()
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
    return tree, lone, cgroups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", type=int, default=500, help="restart runs")
    ap.add_argument("-b", type=int, default=512, help="MiB of output")
    ap.add_argument("-t", type=int, default=100, help="processes in the tree")
    a = ap.parse_args()
    run, spawn = bench_restart(a.k)
    out, pipe = bench_output(a.b)
    tree, lone, cgroups = bench_tree(a.t)
    rows = [
        ("(e) restart cycle, %d runs" % a.k, "%.0f us/run" % (run * 1e6),
         "posix_spawn+waitpid %.0f us" % (spawn * 1e6),
         "%.2fx" % (run / spawn)),
        ("(f) captured output to a log file", "%.0f MiB/s" % out,
         "sh pipe to cat %.0f MiB/s" % pipe, "%.2fx" % (pipe / out)),
        ("(g) stop a tree of %d (cgroups: %s)" % (a.t, cgroups),
         "%.1f ms" % (tree * 1e3), "a lone sleep %.1f ms" % (lone * 1e3),
         "%.2fx" % (tree / lone)),
    ]
    print("wardd supervision benchmark (%s, %d CPUs)" % (
        os.uname().release, os.cpu_count()))
    w = [max(len(r[k]) for r in rows) for k in range(3)]
    print("%-*s  %-*s  %-*s  %s" % (w[0], "what", w[1], "wardd", w[2],
                                    "baseline", "ratio (slower)"))
    for r in rows:
        print("%-*s  %-*s  %-*s  %s" % (w[0], r[0], w[1], r[1], w[2], r[2],
                                        r[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
