#!/usr/bin/python3
"""How wardd starts a payload that runs as another user, attacked by that
user (review findings R1 and R4 of issue 9's hardening):

- R1: a child that will run as another uid is forked, not vforked, so its
  user may stop it (SIGSTOP after its setuid) without stopping wardd; what
  fails in that child (chdir, ids, rlimits, nice, execve) comes back on a
  close-on-exec status pipe that the loop reads without waiting, and the
  instance then fails with death reason SPAWN_FAILED and the message a
  synchronous failure would give;
- R4: /proc/self/... in argv[0] or cwd never answers about wardd's own fds
  (the checks resolve without magic links and treat procfs as missing), and
  a child closes every fd of wardd's before it resolves argv[0], so no user
  execs a file through an fd that another user passed to wardd.

wardd runs as root. The stop attack runs as uid 43210 (an otherwise unused
uid: the attacker signals only wardd's children of that uid, which it finds
in /proc), the others as nobody (65534), all under setpriv.
"""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import wardtest
from wardtest import (TIMEOUT, Client, Skip, Ward, WardError, payload, retry,
                      uniq, wait_dead)

NOBODY = 65534
ATTACKER = 43210		# the stop attack's uid: no other test uses it
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def setpriv(uid):
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
            "--clear-groups"]


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root to act as another uid")


def setup_module():
    if os.geteuid() != 0:
        return None
    w = Ward().start()
    w.root = w.client()
    # A directory nobody may write in, for its symlinks.
    w.mine = os.path.join(w.dir, "nobody")
    os.mkdir(w.mine, 0o755)
    os.chown(w.mine, NOBODY, NOBODY)
    return w


# ---- helpers ----------------------------------------------------------

def as_uid(w, uid, body, timeout=TIMEOUT):
    """Run body (after UID_PRELUDE) as uid; the JSON it passed to done()."""
    p = subprocess.run(setpriv(uid) + [PY, "-c", wardtest.UID_PRELUDE + body],
                       env=dict(os.environ, PYTHONPATH=LIBDIR,
                                WARD_SOCK=w.sock),
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, "uid %d script failed (%d):\n%s" % (
        uid, p.returncode, p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode().splitlines()[-1])


def nobody_call(w, method, params):
    """One call as nobody: {"ok": result} or {"code", "message"}."""
    return as_uid(w, NOBODY, "done(attempt(%r, %r))" % (method, params))


def status_of(pid):
    """/proc/PID/status as a dict, or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f
                        if ":\t" in l)
    except (FileNotFoundError, ProcessLookupError):
        return None


def children_of(pid, uid):
    """wardd's children (it has one thread) whose real uid is uid."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids = [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []
    out = []
    for p in pids:
        st = status_of(p)
        if st and st["PPid"] == str(pid) and st["Uid"].split()[0] == str(uid):
            out.append(p)
    return out


def release(w, uid):
    """Let go of every child of wardd's that uid may have stopped."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        for p in children_of(w.proc.pid, uid):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass


def died_event(c, ident):
    return c.event(lambda e: e["type"] == "died" and e["id"] == ident)


# ---- R1: a user stopping its child must not stop wardd ---------------

# Run as ATTACKER: SIGSTOP every child of wardd's (argv[1]) that runs as
# this uid, as fast as /proc tells of them, until killed. A child caught
# between its setuid and its execve still runs wardd's code: under vfork,
# wardd waited for it. It signals nothing else (no kill(-1)).
STOPPER = r'''
import os, signal, sys
wardd, uid = int(sys.argv[1]), sys.argv[2]
kids = "/proc/%d/task/%d/children" % (wardd, wardd)
while True:
    try:
        with open(kids) as f:
            pids = f.read().split()
    except OSError:
        continue
    for p in pids:
        try:
            with open("/proc/%s/status" % p) as f:
                st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
            if st["PPid"] == str(wardd) and st["Uid"].split()[0] == uid:
                os.kill(int(p), signal.SIGSTOP)
        except (OSError, KeyError, ValueError):
            pass
'''

# Run as ATTACKER: instance.run N times, each with rlimits (more system
# calls between setuid and execve: a wider window for the stopper), set to
# what they are, so that the kernel allows them, and nice 19, applied after
# the setuid too: from then on, any busy process delays the child.
RUNNER = r'''
import resource, socket, sys
n = int(sys.argv[1])
def text(v):
    return "infinity" if v == resource.RLIM_INFINITY else str(v)
rl = {k: "%s:%s" % tuple(map(text, resource.getrlimit(getattr(
      resource, "RLIMIT_" + k.upper())))) for k in ["as", "core", "cpu",
      "data", "fsize", "memlock", "msgqueue", "rss", "rttime", "nproc",
      "stack"]}
c = Client(os.environ["WARD_SOCK"], timeout=10)
done_runs = 0
try:
    for k in range(n):
        c.call("instance.run", {"argv": ["/bin/true"], "capture_output": False,
                                "rlimits": rl, "nice": 19})
        done_runs += 1
    done({"runs": done_runs})
except socket.timeout:
    done({"runs": done_runs, "hung": True})
'''


def caught_before_exec(w):
    """The attacker's children that it stopped while they were still wardd's
    code (before execve): each of them once froze wardd."""
    out = []
    for p in children_of(w.proc.pid, ATTACKER):
        st = status_of(p)
        if st and st["State"].startswith("T") and st["Name"] == "wardd":
            out.append(p)
    return out


def test_stopped_child_does_not_stop_wardd(w):
    need_root()
    stopper = subprocess.Popen(setpriv(ATTACKER) + [
        PY, "-c", STOPPER, str(w.proc.pid), str(ATTACKER)])
    worst, hung, runs = 0.0, False, None
    try:
        caught = []
        for _ in range(5):	# batches until the stopper hit the window
            runner = subprocess.Popen(
                setpriv(ATTACKER) + [PY, "-c", wardtest.UID_PRELUDE + RUNNER,
                                     "150"],
                env=dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=w.sock),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            probe = Client(w.sock, timeout=5)
            try:
                while runner.poll() is None:
                    t = time.monotonic()
                    probe.call("ward.hello")
                    worst = max(worst, time.monotonic() - t)
                    time.sleep(0.005)
            except socket.timeout:
                hung = True
            finally:
                probe.close()
            out, err = runner.communicate(timeout=TIMEOUT * 2)
            assert runner.returncode == 0, err.decode(errors="replace")
            runs = json.loads(out.decode().splitlines()[-1])
            caught = caught_before_exec(w)
            if hung or runs.get("hung") or caught:
                break
        assert not hung, "root's ward.hello got no answer in 5 s"
        assert not runs.get("hung"), ("the attacker's own calls hung", runs)
        assert worst < 1.0, "ward.hello took %.0f ms" % (worst * 1000)
        # Else the attack never hit the window and proved nothing.
        assert caught, "no child was stopped before its execve"
        print("# %d runs, %d children stopped before execve, worst "
              "ward.hello %.1f ms" % (runs["runs"], len(caught),
                                      worst * 1000), flush=True)
        # The stopped ones are instances like any other: root kills them.
        for st in w.root.call("instance.list"):
            if st["owner_uid"] == ATTACKER and st["state"] == "running":
                w.root.call("instance.kill", {"id": st["id"],
                                              "signal": "KILL"})
                st = wait_dead(w.root, st["id"])
                assert st["death_reason"] != "SPAWN_FAILED", st
    finally:
        stopper.kill()
        stopper.wait()
        release(w, ATTACKER)
    retry(lambda: not children_of(w.proc.pid, ATTACKER),
          what="the attacker's children to go")
    w.root.call("ward.hello")


if __name__ == "__main__":
    wardtest.run(globals())
