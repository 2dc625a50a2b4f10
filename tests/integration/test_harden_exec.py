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
import tempfile
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
                try:
                    w.root.call("instance.kill", {"id": st["id"],
                                                  "signal": "KILL"})
                except WardError as e:    # it ended since the list
                    assert e.code == "invalid_state", e
                st = wait_dead(w.root, st["id"])
                assert st["death_reason"] != "SPAWN_FAILED", st
    finally:
        stopper.kill()
        stopper.wait()
        release(w, ATTACKER)
    retry(lambda: not children_of(w.proc.pid, ATTACKER),
          what="the attacker's children to go")
    w.root.call("ward.hello")



# ---- R1: what fails in a forked child, told after the reply ----------

def test_failure_after_the_fork_fails_the_instance(w):
    """instance.start answers (the child is forked, not waited for); the
    chdir that fails in the child then fails the instance, with the exit
    record and message a synchronous failure gave, told by the died event."""
    need_root()
    name = uniq("chd")
    out = as_uid(w, NOBODY, """
import os, shutil
d = os.path.join(%r, "gone")
os.mkdir(d)
cr = attempt("instance.create", {"name": %r, "argv": ["/bin/true"], "cwd": d})
os.rmdir(d)
c.call("events.subscribe", {"types": ["died"]})
st = attempt("instance.start", {"name": %r})
ev = c.event(lambda e: e["type"] == "died")
done({"create": cr, "start": st, "died": ev})
""" % (w.mine, name, name))
    assert "ok" in out["create"], out
    assert "ok" in out["start"], out		# answered: not waited for
    want = ("cannot start '%s' as another user: chdir: No such file or "
            "directory" % name)
    ex = out["died"]["exit"]
    assert out["died"]["state"] == "failed", out
    assert ex["state"] == "failed" and ex["death_reason"] == "SPAWN_FAILED", ex
    assert ex["failure_reason"] == want, ex
    assert ex["exit_code"] is None and ex["exit_signal"] is None, ex
    st = w.root.call("instance.status", {"name": name})
    assert st["state"] == "failed" and st["failure_reason"] == want, st
    hist = w.root.call("instance.history", {"name": name})
    assert hist[-1]["death_reason"] == "SPAWN_FAILED", hist


def test_exec_failure_after_the_fork(w):
    """execve's own error (a file made unexecutable after the check)."""
    need_root()
    name = uniq("exe")
    prog = os.path.join(w.mine, uniq("prog"))
    before = w.root.call("ward.stats")["spawn_failed"]
    out = as_uid(w, NOBODY, """
import os, shutil
shutil.copy("/bin/true", %r)
os.chmod(%r, 0o755)
cr = attempt("instance.create", {"name": %r, "argv": [%r]})
os.chmod(%r, 0o644)
done({"create": cr, "start": attempt("instance.start", {"name": %r})})
""" % (prog, prog, name, prog, prog, name))
    assert "ok" in out["create"] and "ok" in out["start"], out
    st = wait_dead(w.root, name)
    assert st["state"] == "failed" and st["death_reason"] == "SPAWN_FAILED", st
    assert st["failure_reason"] == "cannot start '%s': %s: Permission " \
        "denied" % (name, prog), st
    assert w.root.call("ward.stats")["spawn_failed"] == before + 1


def test_exit_127_of_a_payload_is_not_a_failed_spawn(w):
    """Only the child's report makes a failed spawn: a payload that exec'd
    and then exited 127 (as a shell does for a missing command) is dead."""
    need_root()
    name = uniq("x127")
    r = nobody_call(w, "instance.run", {"name": name, "argv": [
        "/bin/sh", "-c", "exit 127"]})
    assert "ok" in r, r
    st = wait_dead(w.root, name)
    assert st["state"] == "dead" and st["exit_code"] == 127, st
    assert st["death_reason"] != "SPAWN_FAILED", st


def test_status_pipes_are_closed(w):
    """Each forked child's status pipe is closed once it exec'd or died:
    wardd holds as many fds after a hundred runs as before."""
    need_root()

    def fds():
        # An admin's request first: budget.c's fd reserve (32 fds held
        # while wardd serves non-admins) is released, and is not a leak.
        w.root.call("ward.hello")
        return len(os.listdir("/proc/%d/fd" % w.proc.pid))
    before = fds()
    out = as_uid(w, NOBODY, """
ids = [c.call("instance.run", {"argv": ["/bin/true"], "capture_output": False})["id"]
       for _ in range(100)]
for i in ids:
    retry(lambda: c.call("instance.status", {"id": i})["state"] == "dead")
    c.call("instance.remove", {"id": i})
done(len(ids))
""".replace("retry(", "wardtest.retry("))
    assert out == 100, out
    retry(lambda: fds() == before, what="wardd's fds back to %d (now %d)" % (
        before, fds()))


def test_long_path_is_refused_before_it_is_searched(w):
    """argv[0] is looked up along the PATH the client gives, on wardd's
    loop, each entry possibly through 40 of the client's symlinks (second
    review, S1): a PATH of 2000 entries stalled wardd for seconds. Past 32
    entries it is refused before any is looked at; 32 are searched."""
    need_root()
    out = as_uid(w, NOBODY, """
def create(n):
    path = ":".join(["/nonexistent/%d" % k for k in range(n)])
    return attempt("instance.create", {"argv": ["no-such-command"],
                                       "env": {"PATH": path}})
done({"long": create(2000), "max": create(32)})
""")
    long, at_max = out["long"], out["max"]
    assert long.get("code") == "invalid_argument", long
    assert "2000 entries" in long["message"] and "at most 32" in \
        long["message"], long
    assert at_max.get("code") == "invalid_argument", at_max
    assert "not found in PATH" in at_max["message"], at_max
    w.root.call("ward.hello")


# ---- R4: /proc/self in argv[0] and cwd is wardd's, not the payload's --

def passed_tool(w):
    """An instance of root's, not started, holding a passed fd of an
    executable in a directory only root may enter; the fd's number in
    wardd, and the executable's path."""
    if getattr(w, "tool", None):
        return w.tool
    secret = tempfile.mkdtemp(dir=w.dir)		# 0700, root's
    tool = os.path.join(secret, "tool")
    shutil.copy("/usr/bin/id", tool)
    os.chmod(tool, 0o755)
    fd = os.open(tool, os.O_RDONLY)
    try:
        c = Client(w.sock)
        socket.send_fds(c.sock, [wardtest.msgpack.packb([0, 1, "instance.create", [
            {"name": uniq("victim"), "argv": ["/bin/true"],
             "fds": [{"fd": 0, "target": 5}]}]])], [fd])
        err, res = c.response(1)
        assert err is None, err
        c.close()
    finally:
        os.close(fd)
    held = [n for n, t in wardtest.wardd_fds(w).items() if t == tool]
    assert held, "wardd does not hold the passed fd"
    w.tool = (held[0], tool)
    return w.tool


def same_as_missing(got, missing, path, mpath):
    assert got.get("code") == missing.get("code") == "invalid_argument", (
        path, got, missing)
    assert got["message"].replace("'%s'" % path, "P") == \
        missing["message"].replace("'%s'" % mpath, "P"), (got, missing)


def test_proc_self_in_argv0_tells_nothing(w):
    """argv[0] = /proc/self/fd/N (or fdinfo, /dev/fd, wardd's own pid) gets
    the answer a missing file gets, for every fd wardd holds and for one it
    does not: no oracle on wardd's fd table."""
    need_root()
    held, _ = passed_tool(w)
    fds = wardtest.wardd_fds(w)
    kinds = {t.split(":")[0] for t in fds.values()}
    assert held in fds and len(kinds) > 2, fds		# files, sockets, ...
    fds = sorted(fds)
    paths = []
    for n in fds + [900]:
        paths += ["/proc/self/fd/%d" % n, "/proc/self/fdinfo/%d" % n,
                  "/proc/self/fd/%d/x" % n, "/proc/self/fdinfo/%d/x" % n,
                  "/dev/fd/%d" % n, "/proc/%d/fd/%d" % (w.proc.pid, n)]
    paths += ["/proc/self/exe", "/proc/self/cwd/bin/true", "/proc/self/root/bin/true"]
    missing = os.path.join(w.dir, "no-such-file")
    out = as_uid(w, NOBODY, """
res = {p: attempt("instance.create", {"argv": [p]}) for p in %r}
res["PATH"] = {n: attempt("instance.create", {"argv": [n],
               "env": {"PATH": "/proc/self/fd"}}) for n in %r}
res["missing"] = attempt("instance.create", {"argv": [%r]})
res["missing-in-PATH"] = attempt("instance.create", {"argv": ["nope"],
               "env": {"PATH": "/proc/self/fd"}})
done(res)
""" % (paths, [str(n) for n in fds], missing))
    for p in paths:
        same_as_missing(out[p], out["missing"], p, missing)
    for n in fds:
        same_as_missing(out["PATH"][str(n)], out["missing-in-PATH"], str(n),
                        "nope")


def test_proc_self_as_cwd_tells_nothing(w):
    need_root()
    fds = sorted(wardtest.wardd_fds(w))
    paths = ["/proc/self/cwd", "/proc/self/root", "/proc/self",
             "/proc/self/fd", "/proc/%d" % w.proc.pid]
    paths += ["/proc/self/fd/%d" % n for n in fds + [900]]
    missing = os.path.join(w.dir, "no-such-dir")
    out = as_uid(w, NOBODY, """
res = {p: attempt("instance.create", {"argv": ["/bin/true"], "cwd": p})
       for p in %r}
res["missing"] = attempt("instance.create", {"argv": ["/bin/true"], "cwd": %r})
done(res)
""" % (paths, missing))
    for p in paths:
        same_as_missing(out[p], out["missing"], p, missing)


def test_passed_fd_of_another_user_is_not_executed(w):
    """Root passed an fd of a file only root may reach to an instance it
    has not started yet. nobody cannot run that file through wardd: not by
    naming /proc/self/fd/N (refused at create, as missing), nor through a
    symlink it points there after the check (the child has closed every fd
    of wardd's before execve, those below its highest target too: it fails
    as missing)."""
    need_root()
    held, tool = passed_tool(w)
    link = os.path.join(w.mine, uniq("link"))
    names = [uniq("swap"), uniq("swaphi")]
    out = as_uid(w, NOBODY, """
import msgpack, socket
link, names, held = %r, %r, %d
r = {"reach": os.access(%r, os.X_OK)}
r["direct"] = attempt("instance.run", {"argv": ["/proc/self/fd/%%d" %% held]})
os.symlink("/bin/true", link)
r["create"] = attempt("instance.create", {"name": names[0], "argv": [link]})
# The same with a passed fd of its own at 1023: fd N lies below its top.
fd = os.open("/dev/null", os.O_RDONLY)
socket.send_fds(c.sock, [msgpack.packb([0, 99, "instance.create", [{
    "name": names[1], "argv": [link], "fds": [{"fd": 0, "target": 1023}]}]])],
    [fd])
r["create_hi"] = c.response(99)
os.unlink(link)
os.symlink("/proc/self/fd/%%d" %% held, link)
r["start"] = [attempt("instance.start", {"name": n}) for n in names]
done(r)
""" % (link, names, held, tool))
    assert out["reach"] is False, out
    assert out["direct"].get("code") == "invalid_argument", out
    assert "No such file" in out["direct"]["message"], out
    assert "ok" in out["create"] and out["create_hi"][0] is None, out
    assert all("ok" in r for r in out["start"]), out
    for name in names:
        st = wait_dead(w.root, name)
        log = w.root.call("instance.log", {"name": name})["data"]
        assert "uid=" not in log, (name, log)
        assert st["state"] == "failed", st
        assert st["death_reason"] == "SPAWN_FAILED", st
        assert st["failure_reason"] == "cannot start '%s': %s: No such " \
            "file or directory" % (name, link), st

if __name__ == "__main__":
    wardtest.run(globals())
