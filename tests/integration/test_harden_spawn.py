#!/usr/bin/python3
"""What a payload inherits from wardd, and what wardd tells about paths
(issue 9, findings 6, 7, 8 and 12), each attack made as uid 65534:

- a non-admin's payload gets none of wardd's environment (a clean PATH, the
  WARD_* variables, what it passed), never wardd's stdout or stderr (its
  output is captured, or /dev/null), and no fd wardd inherited; an admin's
  keeps wardd's environment unless it asks for clean_env;
- argv[0] and cwd are checked with the payload's credentials, so a missing
  path and an unreachable one get the same answer;
- ward.shutdown {kill_instances: false} refuses while captured output would
  die with wardd;
- a wardd started with signals blocked or ignored still handles its own and
  gives payloads an empty mask and default dispositions.

wardd runs as root; the attacks run as nobody under setpriv.
"""
import json
import os
import signal
import stat
import subprocess
import sys

import wardtest
from wardtest import TIMEOUT, Skip, Ward, retry, uniq, wait_dead

NOBODY = 65534
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))
SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
SECRET = "TEST_SECRET"		# set in wardd's own environment
# Hangs once it said so: /proc/PID shows the exec'd payload only then
# (vfork lets wardd go on before the kernel has set up environ).
HANG = wardtest.payload("notify", "STATE=started", "hang")
LEAK_FD = 100			# an fd wardd inherits without close-on-exec


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root to act as uid 65534")


def setup_module():
    if os.geteuid() != 0:
        return None
    leak = os.open("/dev/zero", os.O_RDONLY)
    os.dup2(leak, LEAK_FD, inheritable=True)
    os.close(leak)
    try:
        env = dict(os.environ, HOME="/root", TEST_SECRET="x")
        w = Ward(env=env, popen={"pass_fds": (LEAK_FD,)}).start()
    finally:
        os.close(LEAK_FD)
    w.root = w.client()
    os.chmod(w.dir, 0o755)
    return w


# ---- helpers ----------------------------------------------------------

def as_nobody(w, body, env=None, sock=None):
    """Run body (after UID_PRELUDE) as uid 65534; the JSON it passed to done()."""
    e = dict(env if env is not None else os.environ, PYTHONPATH=LIBDIR,
             WARD_SOCK=sock or w.sock)
    p = subprocess.run(SETPRIV + [sys.executable, "-c",
                                  wardtest.UID_PRELUDE + body],
                       env=e, capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, "nobody script failed (%d):\n%s" % (
        p.returncode, p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode().splitlines()[-1])


def nobody_call(w, method, params, sock=None):
    """One call as nobody: {"ok": result} or {"code", "message"}."""
    return as_nobody(w, "done(attempt(%r, %r))" % (method, params), sock=sock)


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        raw = f.read().split(b"\0")
    return dict(e.decode().partition("=")[::2] for e in raw if e)


def fds_of(pid):
    return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))


def fd_target(pid, fd):
    return os.readlink("/proc/%d/fd/%d" % (pid, fd))


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def up(c, name):
    """Wait until the HANG payload of instance name said it started."""
    retry(lambda: c.call("instance.status", {"name": name})[
        "payload_state"] == "started", what="%s to start" % name)
    return c.call("instance.status", {"name": name})


def run_nobody(w, **spec):
    """instance.run as nobody; waits for a HANG payload to be up."""
    r = nobody_call(w, "instance.run", spec)
    assert "ok" in r, r
    assert r["ok"]["state"] == "running", r
    if spec["argv"] == HANG:
        up(w.root, spec["name"])
    return r["ok"]


def run_root(c, **spec):
    """instance.run as root; waits for a HANG payload to be up."""
    r = c.call("instance.run", spec)
    if spec["argv"] == HANG:
        up(c, spec["name"])
    return r


def stop(c, ident):
    """Kill and remove an instance, as admin client c."""
    c.call("instance.kill", {"name": ident, "signal": "KILL"})
    wait_dead(c, ident)
    c.call("instance.remove", {"name": ident})


# ---- finding 6: the environment --------------------------------------

def test_nobody_payload_gets_no_wardd_environment(w):
    need_root()
    assert environ_of(w.proc.pid).get(SECRET) == "x"   # the bait is there
    name = uniq("env")
    r = run_nobody(w, name=name, argv=HANG,
                   env={"MINE": "1"})
    env = environ_of(r["pid"])
    assert SECRET not in env, env
    assert "HOME" not in env, env       # not wardd's /root; no client gave one
    assert env["PATH"] == CLEAN_PATH, env
    assert env["MINE"] == "1", env
    assert env["WARD_INSTANCE_NAME"] == name, env
    assert env["WARD_INSTANCE_ID"] == str(r["id"]), env
    assert env["WARD_FAILURE_FD"] == "3" and env["WARD_NOTIFY_FD"] == "4", env
    # Its own PATH wins over the clean one.
    stop(w.root, name)
    r = run_nobody(w, name=name, argv=HANG,
                   env={"PATH": "/bin"})
    assert environ_of(r["pid"])["PATH"] == "/bin"
    stop(w.root, name)


def test_nobody_cannot_ask_for_wardds_environment(w):
    need_root()
    r = nobody_call(w, "instance.create",
                    {"argv": wardtest.payload("hang"), "clean_env": False})
    assert r.get("code") == "permission_denied", r
    assert "clean_env" in r["message"], r
    # true is what it gets anyway.
    name = uniq("env")
    r = run_nobody(w, name=name, argv=HANG,
                   clean_env=True)
    assert SECRET not in environ_of(r["pid"])
    stop(w.root, name)


def test_admin_payload_keeps_env_unless_clean_env(w):
    need_root()
    name = uniq("adm")
    r = run_root(w.root, name=name, argv=HANG)
    env = environ_of(r["pid"])
    assert env.get(SECRET) == "x" and env.get("HOME") == "/root", env
    stop(w.root, name)
    r = run_root(w.root, name=name, clean_env=True, env={"HOME": "/srv"},
                 argv=HANG)
    env = environ_of(r["pid"])
    assert SECRET not in env, env
    assert env["PATH"] == CLEAN_PATH and env["HOME"] == "/srv", env
    assert env["WARD_INSTANCE_NAME"] == name, env
    stop(w.root, name)


def test_wardctl_passes_the_callers_environment(w):
    need_root()
    caller = {"HOME": "/nonexistent-home", "USER": "nobody",
              "LOGNAME": "nobody", "LANG": "C.UTF-8", "TERM": "vt100",
              "PATH": os.environ["PATH"], "WARD_SOCKET": w.sock}
    name = uniq("ctl")
    p = subprocess.run(SETPRIV + [wardtest.WARDCTL, "run", name, "--env",
                                  "TERM=dumb", "--"] +
                       HANG, env=caller, capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    st = up(w.root, name)
    env = environ_of(st["pid"])
    for k in ("HOME", "USER", "LOGNAME", "LANG"):
        assert env[k] == caller[k], (k, env)
    assert env["TERM"] == "dumb", env        # what the user set wins
    assert SECRET not in env and env["PATH"] == CLEAN_PATH, env
    stop(w.root, name)
    # An admin's --clean-env: no wardd secret, still the caller's HOME.
    p = subprocess.run([wardtest.WARDCTL, "run", name, "--clean-env", "--"] +
                       HANG, env=dict(caller, HOME="/root-home"),
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    env = environ_of(up(w.root, name)["pid"])
    assert SECRET not in env and env["HOME"] == "/root-home", env
    stop(w.root, name)


# ---- finding 6: stdio and inherited fds ------------------------------

def test_nobody_output_never_reaches_wardds_log(w):
    need_root()
    out, err = uniq("NOBODY-STDOUT-MARK-"), uniq("NOBODY-STDERR-MARK-")
    name = uniq("out")
    # stdout by echo; stderr by a step that fails and says so.
    run_nobody(w, name=name, argv=wardtest.payload(
        "echo", out, "report", "/nonexistent/" + err))
    wait_dead(w.root, name)
    log = lambda s: nobody_call(w, "instance.log", {"name": name,
                                                    "stream": s})
    retry(lambda: out in log("stdout")["ok"]["data"], what="stdout in ring")
    retry(lambda: err in log("stderr")["ok"]["data"], what="stderr in ring")
    # An admin's uncaptured payload still writes to wardd's own output:
    # proof that the log would show a leak.
    admin = uniq("ADMIN-STDOUT-MARK-")
    aname = uniq("out")
    w.root.call("instance.run", {"name": aname,
                                 "argv": wardtest.payload("echo", admin)})
    wait_dead(w.root, aname)
    retry(lambda: admin in w.read_log(), what="admin output in wardd's log")
    text = w.read_log()
    assert out not in text and err not in text, "nobody's output in wardd's log"
    for n in (name, aname):
        w.root.call("instance.remove", {"name": n})


def test_nobody_uncaptured_output_is_dev_null(w):
    need_root()
    name = uniq("null")
    r = run_nobody(w, name=name, argv=HANG,
                   capture_output=False)
    for fd in (0, 1, 2):
        assert fd_target(r["pid"], fd) == "/dev/null", (fd, fd_target(
            r["pid"], fd))
    e = nobody_call(w, "instance.log", {"name": name})
    assert e.get("code") == "invalid_state", e
    stop(w.root, name)
    # Captured by default: pipes, not wardd's log file.
    r = run_nobody(w, name=name, argv=HANG)
    assert fd_target(r["pid"], 0) == "/dev/null"
    for fd in (1, 2):
        assert fd_target(r["pid"], fd).startswith("pipe:"), fd_target(
            r["pid"], fd)
    stop(w.root, name)


def test_inherited_fd_reaches_no_payload(w):
    need_root()
    # wardd has it still, close-on-exec.
    assert LEAK_FD in fds_of(w.proc.pid)
    with open("/proc/%d/fdinfo/%d" % (w.proc.pid, LEAK_FD)) as f:
        flags = int([l for l in f if l.startswith("flags:")][0].split()[1], 8)
    assert flags & os.O_CLOEXEC, oct(flags)
    name, aname = uniq("fd"), uniq("fd")
    r = run_nobody(w, name=name, argv=HANG)
    a = run_root(w.root, name=aname, argv=HANG)
    for pid in (r["pid"], a["pid"]):
        assert fds_of(pid) == [0, 1, 2, 3, 4], (pid, fds_of(pid))
    stop(w.root, name)
    stop(w.root, aname)


# ---- finding 8: no file-existence oracle -----------------------------

def oracle_paths(w):
    """A directory only root may enter, holding an executable and a dir."""
    secret = os.path.join(w.dir, "secret")
    if not os.path.isdir(secret):
        os.mkdir(secret, 0o700)
        exe = os.path.join(secret, "prog")
        with open(exe, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(exe, 0o755)
        os.mkdir(os.path.join(secret, "dir"), 0o755)
    return secret


def same_modulo_path(a, b, pa, pb):
    assert a.get("code") == b.get("code"), (a, b)
    assert a["code"] == "invalid_argument", a
    assert pa in a["message"] and pb in b["message"], (a, b)
    assert a["message"].replace(pa, "P") == b["message"].replace(pb, "P"), (
        a, b)


def test_argv0_existence_is_not_told(w):
    need_root()
    secret = oracle_paths(w)
    there, missing = secret + "/prog", secret + "/no-such-prog"
    ra = nobody_call(w, "instance.create", {"argv": [there]})
    rb = nobody_call(w, "instance.create", {"argv": [missing]})
    same_modulo_path(ra, rb, there, missing)
    # Searched for along a PATH into that directory: not found either way.
    ra = nobody_call(w, "instance.create", {"argv": ["prog"],
                                            "env": {"PATH": secret}})
    rb = nobody_call(w, "instance.create", {"argv": ["no-such-prog"],
                                            "env": {"PATH": secret}})
    same_modulo_path(ra, rb, "prog", "no-such-prog")
    # An admin's payload run as nobody is checked as nobody too.
    ra = w.root.error("instance.create", {"argv": [there], "user": "65534"})
    rb = w.root.error("instance.create", {"argv": [missing], "user": "65534"})
    same_modulo_path(ra, rb, there, missing)
    # Root itself still finds it.
    r = w.root.call("instance.create", {"argv": [there]})
    w.root.call("instance.remove", {"id": r["id"]})


def test_root_files_existence_is_not_told(w):
    need_root()
    mode = os.stat("/root").st_mode
    if mode & 0o001:
        raise Skip("/root is searchable by others here")
    made = "/root/ward-test-secret-existing"
    with open(made, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(made, 0o755)
    try:
        for key in ("argv", "cwd"):
            res = []
            for p in (made, "/root/ward-test-does-not-exist"):
                spec = {"argv": [p]} if key == "argv" else {
                    "argv": wardtest.payload("hang"), "cwd": p}
                res.append((nobody_call(w, "instance.create", spec), p))
            same_modulo_path(res[0][0], res[1][0], res[0][1], res[1][1])
    finally:
        os.unlink(made)


def test_cwd_existence_is_not_told(w):
    need_root()
    secret = oracle_paths(w)
    there, missing = secret + "/dir", secret + "/no-such-dir"
    argv = wardtest.payload("hang")
    ra = nobody_call(w, "instance.create", {"argv": argv, "cwd": there})
    rb = nobody_call(w, "instance.create", {"argv": argv, "cwd": missing})
    same_modulo_path(ra, rb, there, missing)
    # A relative argv[0] from an unreachable cwd: the cwd answers first.
    ra = nobody_call(w, "instance.create", {"argv": ["./prog"], "cwd": secret})
    assert ra.get("code") == "invalid_argument" and "cwd" in ra["message"], ra
    rb = nobody_call(w, "instance.create", {"argv": ["./prog"],
                                            "cwd": secret + "x"})
    same_modulo_path(ra, rb, secret, secret + "x")
    # Reachable paths still work for nobody.
    r = nobody_call(w, "instance.create", {"argv": argv, "cwd": "/"})
    assert "ok" in r, r
    w.root.call("instance.remove", {"id": r["ok"]["id"]})


def test_nobody_cannot_borrow_a_group_for_the_check(w):
    need_root()
    # A directory only group 4321 may enter: asking for that group (one
    # nobody is not in) is refused before any path is looked at, so the
    # answer is the same whether the cwd in there exists or not.
    d = os.path.join(w.dir, "grp")
    if not os.path.isdir(d):
        os.mkdir(d, 0o750)
        os.chown(d, 0, 4321)
        os.mkdir(os.path.join(d, "sub"))
    res = [nobody_call(w, "instance.create", {
        "argv": wardtest.payload("hang"), "cwd": os.path.join(d, sub),
        "group": 4321}) for sub in ("sub", "missing")]
    assert res[0] == res[1], res
    assert res[0].get("code") == "permission_denied", res
    assert "group" in res[0]["message"], res


# ---- finding 7: shutdown that would leave captured output to die -----

def test_shutdown_refuses_while_output_is_captured(_):
    need_root()
    with Ward() as w:
        root = w.client()
        cap = root.call("instance.run", {"name": "cap", "capture_output": True,
                                         "argv": wardtest.payload("hang")})
        nob = run_nobody(w, name="nob", argv=wardtest.payload("hang"))
        plain = root.call("instance.run", {"name": "plain",
                                           "argv": wardtest.payload("hang")})
        e = root.error("ward.shutdown", {"kill_instances": False})
        assert e["code"] == "invalid_state", e
        assert "'cap'" in e["message"] and "'nob'" in e["message"], e
        assert "'plain'" not in e["message"], e
        assert "SIGPIPE" in e["message"], e
        # Nothing happened: wardd answers, all three still run.
        assert w.proc.poll() is None
        root.call("ward.hello")
        for ident, r in (("cap", cap), ("nob", nob), ("plain", plain)):
            st = root.call("instance.status", {"name": ident})
            assert st["state"] == "running" and st["pid"] == r["pid"], st
        # Without them it goes as before, and leaves 'plain' running.
        for ident in ("cap", "nob"):
            stop(root, ident)
        root.call("ward.shutdown", {"kill_instances": False})
        w.proc.wait(timeout=TIMEOUT)
        assert w.proc.returncode == 0, w.proc.returncode
        try:
            assert not wardtest.gone(plain["pid"]), "plain died with wardd"
        finally:
            os.kill(plain["pid"], signal.SIGKILL)


# ---- finding 12: signals at start ------------------------------------

def hostile_parent():
    """In the child before exec: what a careless parent leaves behind."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
    for s in (signal.SIGHUP, signal.SIGINT, signal.SIGCHLD, signal.SIGUSR2):
        signal.signal(s, signal.SIG_IGN)


def sigmask_hex(pid, field):
    return int(status_fields(pid)[field], 16)


def test_signals_blocked_or_ignored_at_start(_):
    need_root()
    # The bait: what hostile_parent leaves does survive an exec.
    p = subprocess.run(["cat", "/proc/self/status"], preexec_fn=hostile_parent,
                       capture_output=True, text=True, timeout=TIMEOUT)
    st = dict(l.split(":\t", 1) for l in p.stdout.splitlines() if ":\t" in l)
    assert int(st["SigBlk"], 16) & (1 << (signal.SIGTERM - 1)), st["SigBlk"]
    assert int(st["SigIgn"], 16) & (1 << (signal.SIGCHLD - 1)), st["SigIgn"]
    w = Ward(popen={"preexec_fn": hostile_parent}).start()
    try:
        c = w.root = w.client()
        for who in ("root", "nobody"):
            name = uniq("sig")
            if who == "root":
                r = run_root(c, name=name, argv=HANG)
            else:
                r = run_nobody(w, name=name, argv=HANG)
            for f in ("SigBlk", "SigIgn"):
                assert sigmask_hex(r["pid"], f) == 0, (who, f, status_fields(
                    r["pid"])[f])
            stop(c, name)
        # SIGCHLD ignored would have the kernel reap children unseen.
        c.call("instance.run", {"name": "code", "argv":
                                wardtest.payload("exit", 7)})
        st = wait_dead(c, "code")
        assert st["exit_code"] == 7, st
        # wardd handles its own: SIGHUP rereads, SIGTERM stops cleanly.
        w.proc.send_signal(signal.SIGHUP)
        retry(lambda: "reloaded" in w.read_log(), what="SIGHUP's reread")
        assert w.proc.poll() is None
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(timeout=TIMEOUT)
        assert w.proc.returncode == 0, w.proc.returncode
        assert "got SIGTERM" in w.read_log(), w.read_log()
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
