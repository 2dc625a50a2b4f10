#!/usr/bin/python3
"""Issue 9, findings 4 (metrics half), 9, 13 and 14, each attacked as uid
nobody (65534) through setpriv, as a hostile local user would:

- 4: a payload with 65,000 mappings and rss_mapping set must not stall the
  loop while wardd reads its /proc/PID/smaps (ward.hello stays fast);
- 9: a declared program's name is reserved: nobody cannot squat it, and a
  name squatted before the program was declared is reported, then taken by
  the program once it is free;
- 13: every error reply is clean UTF-8 and says something; an invalid UTF-8
  name is invalid_argument, not not_found;
- 14: fds passed to an instance's NOTIFY_SOCKET are closed on receipt,
  whatever the sender (systemd-notify's barrier returns at once) and
  wardd's fd table does not grow.

wardd runs as root; tests that need to switch to nobody skip without root.
"""
import json
import os
import subprocess
import sys
import time

import msgpack

import wardtest
from wardtest import TIMEOUT, Ward, retry, uniq, wait_dead

LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))
SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def need_root():
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root to act as nobody through setpriv")


def nobody_popen(w, body, **kw):
    """Start body (after UID_PRELUDE) as uid 65534; the caller waits."""
    env = dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=w.sock)
    return subprocess.Popen(
        SETPRIV + [sys.executable, "-c", wardtest.UID_PRELUDE + body],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def as_nobody(w, body, timeout=TIMEOUT):
    """Run body as uid 65534; return what it passed to done()."""
    p = nobody_popen(w, body)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("nobody script timed out:\n%s" %
                             err.decode(errors="replace"))
    assert p.returncode == 0, "nobody script failed (%d):\n%s" % (
        p.returncode, err.decode(errors="replace"))
    return json.loads(out.decode().splitlines()[-1])


def setup_module():
    w = Ward(args=["--metrics-interval", "100"]).start()
    w.root = w.client()
    # Files that payloads running as nobody write.
    w.out = os.path.join(w.dir, "out")
    os.mkdir(w.out)
    os.chmod(w.out, 0o777)
    return w


# ---- finding 4: /proc/PID/smaps of a payload with 65,000 mappings -------

MAPS = 65000


def test_smaps_of_65000_mappings_does_not_stall(w):
    need_root()
    name = uniq("maps")
    touched = (MAPS + 63) // 64		# payload.c's mmap step
    want_kb = touched * os.sysconf("SC_PAGESIZE") // 1024
    # nobody's payload maps 65,000 pages one mapping each, says READY=1 and
    # hangs; nobody then times ward.hello over 4 s of 100 ms ticks, and
    # waits for the mapping's Rss, which needs the whole smaps read.
    out = as_nobody(w, r'''
import time
name = %r
c.call("instance.run", {"name": name, "argv": %r,
                        "rss_mapping": "wardtest-maps"})
wardtest.retry(lambda: c.call("instance.status", {"name": name})
               ["payload_state"] == "ready", what="65,000 mappings")
worst, n, t_end = 0.0, 0, time.monotonic() + 4
while time.monotonic() < t_end:
    t0 = time.monotonic()
    c.call("ward.hello")
    worst = max(worst, time.monotonic() - t0)
    n += 1
    time.sleep(0.005)
st = wardtest.retry(lambda: (lambda s: s if s["metrics"]["rss_mapping_kb"]
                             >= %d else None)(
    c.call("instance.status", {"name": name})), what="rss_mapping_kb")
done({"worst_ms": worst * 1000, "hellos": n, "metrics": st["metrics"],
      "state": st["state"]})
''' % (name, wardtest.payload("mmap", MAPS, "notify", "READY=1", "hang"),
       want_kb), timeout=TIMEOUT * 3)
    print("# worst ward.hello latency with %d mappings: %.1f ms over %d "
          "calls" % (MAPS, out["worst_ms"], out["hellos"]), flush=True)
    assert out["state"] == "running", out
    assert out["metrics"]["rss_mapping_kb"] == want_kb, out
    # The target is 50 ms; 250 leaves room for a loaded machine (reading
    # it all in one go took 380 ms here, 11 s on the machine of the issue).
    assert out["worst_ms"] < 250, out
    w.root.call("instance.kill", {"name": name})
    wait_dead(w.root, name)


# ---- finding 14: fds passed to an instance's NOTIFY_SOCKET --------------

def fd_count(w):
    return len(os.listdir("/proc/%d/fd" % w.proc.pid))


def test_systemd_notify_barrier_returns(w):
    """systemd-notify sends BARRIER=1 with an fd and waits (5 s at most)
    until the receiver closes it: from the instance's session and from a
    session of its own (a sender wardd does not believe), both return 0
    at once."""
    need_root()
    name = uniq("barrier")
    out = os.path.join(w.out, name + ".out")
    script = ('systemd-notify STATUS=inside; echo "inside $?" > %s; '
              'setsid -w systemd-notify STATUS=outside; '
              'echo "outside $?" >> %s' % (out, out))
    r = as_nobody(w, r'''
done(attempt("instance.run", {"name": %r, "notify": "systemd",
                              "argv": ["/bin/sh", "-c", %r]}))
''' % (name, script))
    assert "ok" in r, r
    st = wait_dead(w.root, name, timeout=TIMEOUT)
    with open(out) as f:
        lines = f.read().split("\n")
    assert lines[:2] == ["inside 0", "outside 0"], (lines, st)
    # Two barriers at 5 s each would take 10 s; closed at once, far less.
    assert st["uptime_ms"] < 4000, st
    assert st["status_text"] == "inside", st
    assert st["sd_notify_dropped"] >= 2, st	# STATUS=outside, its BARRIER=1
    assert st["exit_code"] == 0, st


def test_passed_fds_closed_on_receipt(w):
    """A payload sends 11 datagrams of 64 fds each, and a process outside
    its session (nobody too) 10 of 253 each: wardd's fd table is back to
    where it was while the instance still runs."""
    need_root()
    name = uniq("fds")
    go = os.path.join(w.out, name + ".go")
    end = os.path.join(w.out, name + ".end")
    steps = ["notify", "READY=1", "wait-file", go]
    for k in range(10):
        steps += ["sdnotifyfds", 64, "STATUS=a%d" % k]
    steps += ["sdnotifyfds", 64, "STATUS=done", "wait-file", end]
    r = as_nobody(w, r'''
done(attempt("instance.run", {"name": %r, "notify": "systemd",
                              "argv": %r}))
''' % (name, wardtest.payload(*steps)))
    assert "ok" in r, r
    retry(lambda: w.root.call("instance.status", {"name": name})
          ["payload_state"] == "ready", what="ready")
    base = fd_count(w)
    open(go, "w").close()
    st = retry(lambda: (lambda s: s if s["status_text"] == "done" else None)(
        w.root.call("instance.status", {"name": name})), what="STATUS=done")
    assert st["state"] == "running", st
    assert fd_count(w) == base, (fd_count(w), base)
    # From outside the session: dropped, and still closed.
    sock = os.path.join(st["runtime_dir"], "notify")
    r = as_nobody(w, r'''
import array, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
fds = array.array("i", [os.open("/dev/null", os.O_RDONLY) for _ in range(253)])
for k in range(10):
    s.sendmsg([b"STATUS=foreign"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     fds.tobytes())], 0, %r)
done({"sent": 10})
''' % sock)
    assert r == {"sent": 10}, r
    st = retry(lambda: (lambda s: s if s["sd_notify_dropped"] >= 10 else None)(
        w.root.call("instance.status", {"name": name})), what="10 dropped")
    assert st["status_text"] == "done", st
    assert fd_count(w) == base, (fd_count(w), base)
    open(end, "w").close()
    wait_dead(w.root, name)


if __name__ == "__main__":
    wardtest.run(globals())
