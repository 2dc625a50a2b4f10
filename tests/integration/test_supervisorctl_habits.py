#!/usr/bin/python3
"""wardctl's supervisorctl habits (issue 14), command by command.

Each case is a row of TABLE: a command line, the situation it meets, and
what supervisorctl 4.2.5 does there, its exit status and the per-name
result lines it prints ("NAME: stopped", "NAME: ERROR (no such process)").
That is the expected value. Every row is checked twice from the same
baseline: once against a real supervisord with real supervisorctl (Debian's
supervisor package; skipped when it is not installed), which confirms the
table, and once against a real wardd with wardctl, which must give the
same status and the same per-name lines.

The baseline, on both sides: up and grp:a, grp:b running, idle stopped
(autostart false), quit exited (it ran /bin/true). grp is a [group:grp]
of programs a and b on both sides (ward names a process inside a group
GROUP:PROCESS, as supervisorctl addresses it).

Where wardctl deliberately differs from supervisorctl (an option after a
name is a usage error, status 2, where supervisorctl takes "--bogus" for a
process name), the rows say so in WARD_ONLY.
"""
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import textwrap
import xmlrpc.client

import wardtest
from wardtest import Ward, retry

SUPERVISORD = shutil.which("supervisord")
SUPERVISORCTL = shutil.which("supervisorctl")
SLEEP = shutil.which("sleep")
TRUE = shutil.which("true")

# (args, expected status, expected per-name lines (sorted), why).
# "N" in a line stands for a number (pid).
TABLE = [
    # status: 0 all running, 3 not all running, 4 no such name.
    (["status"], 3, [], "idle is stopped, quit exited"),
    (["status", "up"], 0, [], "running"),
    (["status", "idle"], 3, [], "stopped"),
    (["status", "quit"], 3, [], "exited"),
    (["status", "nosuch"], 4, ["nosuch: ERROR (no such process)"], "unknown"),
    (["status", "up", "nosuch"], 4, ["nosuch: ERROR (no such process)"],
     "one known, one not"),
    (["status", "grp:*"], 0, [], "a group, all running"),
    (["status", "nogrp:*"], 4, ["nogrp: ERROR (no such group)"],
     "no such group"),
    (["status", "all"], 3, [], "all"),
    # start: already started is no failure; no such group is 2.
    (["start", "idle"], 0, ["idle: started"], "stopped"),
    (["start", "quit"], 0, ["quit: started"], "exited"),
    (["start", "up"], 0, ["up: ERROR (already started)"], "running"),
    (["start", "nosuch"], 1, ["nosuch: ERROR (no such process)"], "unknown"),
    (["start", "nogrp:*"], 2, ["nogrp: ERROR (no such group)"],
     "no such group"),
    (["start", "idle", "nosuch"], 1,
     ["idle: started", "nosuch: ERROR (no such process)"], "partial"),
    # A group or all leaves out what it does not apply to.
    (["start", "grp:*"], 0, [], "group, all running"),
    (["start", "all"], 0, ["idle: started", "quit: started"], "all"),
    (["start"], 2, [], "no name"),
    # stop: not running is no failure; each name on its own.
    (["stop", "up"], 0, ["up: stopped"], "running"),
    (["stop", "idle"], 0, ["idle: ERROR (not running)"], "stopped"),
    (["stop", "quit"], 0, ["quit: ERROR (not running)"], "exited"),
    (["stop", "nosuch"], 1, ["nosuch: ERROR (no such process)"], "unknown"),
    (["stop", "up", "nosuch"], 1,
     ["nosuch: ERROR (no such process)", "up: stopped"], "partial"),
    (["stop", "grp:*"], 0, ["grp:a: stopped", "grp:b: stopped"], "group"),
    (["stop", "all"], 0, ["grp:a: stopped", "grp:b: stopped", "up: stopped"],
     "all"),
    (["stop", "nogrp:*"], 1, ["nogrp: ERROR (no such group)"],
     "no such group"),
    (["stop"], 1, [], "no name"),
    # restart: stop, then start.
    (["restart", "up"], 0, ["up: started", "up: stopped"], "running"),
    (["restart", "idle"], 0, ["idle: ERROR (not running)", "idle: started"],
     "stopped"),
    (["restart", "nosuch"], 1, ["nosuch: ERROR (no such process)"] * 2,
     "unknown"),
    (["restart", "grp:*"], 0, ["grp:a: started", "grp:a: stopped",
                               "grp:b: started", "grp:b: stopped"], "group"),
    (["restart"], 1, [], "no name"),
    # signal: not running is 7 (LSB's NOT_RUNNING).
    (["signal", "USR1", "up"], 0, ["up: signalled"], "running"),
    (["signal", "USR1", "idle"], 7, ["idle: ERROR (not running)"], "stopped"),
    (["signal", "USR1", "nosuch"], 1, ["nosuch: ERROR (no such process)"],
     "unknown"),
    (["signal", "BOGUS", "up"], 1, ["up: ERROR (bad signal name)"],
     "bad signal"),
    (["signal", "USR1", "grp:*"], 0, ["grp:a: signalled", "grp:b: signalled"],
     "group"),
    (["signal", "USR1", "up", "idle"], 7,
     ["idle: ERROR (not running)", "up: signalled"], "partial"),
    (["signal", "USR1"], 1, [], "no name"),
    # pid: none is the daemon's; 0 for one not running, status 7.
    (["pid"], 0, ["N"], "the daemon's"),
    (["pid", "up"], 0, ["N"], "running"),
    (["pid", "idle"], 7, ["0"], "stopped"),
    (["pid", "nosuch"], 1, ["No such process nosuch"], "unknown"),
    # fg: not running and unknown are 1 (nothing to attach to).
    (["fg", "idle"], 1, None, "stopped"),
    (["fg", "nosuch"], 1, None, "unknown"),
    # clear: the captured output (supervisord: the log files).
    (["clear", "up"], 0, ["up: cleared"], "running"),
    (["clear", "up", "nosuch"], 1,
     ["nosuch: ERROR (no such process)", "up: cleared"], "partial"),
    (["clear"], 1, [], "no name"),
    # reread, update: nothing changed; update of an unknown group is 1.
    (["reread"], 0, None, "no change"),
    (["update"], 0, None, "no change"),
    (["update", "all"], 0, None, "all is as none"),
    (["update", "nogrp"], 1, None, "no such group"),
    (["update", "grp"], 0, None, "a group, no change"),
    # avail, version: no arguments.
    (["avail"], 0, None, "declared programs"),
    (["version"], 0, None, "the daemon's version"),
]

# wardctl only: where ward says more than supervisorctl does.
WARD_ONLY = [
    # An option after a name is an error naming it (supervisorctl takes
    # it for a process name).
    (["stop", "up", "--timeout", "5"], 2, "--timeout"),
    (["status", "up", "-l"], 2, "-l"),
    (["start", "--bogus", "up"], 2, "--bogus"),
    (["history", "-n", "x"], 2, "-n"),
    (["history", "a", "b"], 2, "one NAME"),
    (["history", "--bogus"], 2, "--bogus"),
    (["events", "up", "--metrics"], 2, "--metrics"),
    (["kill", "up", "-s", "HUP"], 2, "-s"),
    (["tail", "up", "-f"], 2, "-f"),
    (["signal", "HUP", "up", "--bogus"], 2, "--bogus"),
    (["pid", "up", "-x"], 2, "-x"),
]

# wardctl only: where ward does more than supervisorctl 4.2.5, whose result
# is given for the record.
WARD_MORE = [
    # supervisorctl: "grp:None: ERROR (no such process)", status 1 (its
    # clear takes no group).
    (["clear", "grp:*"], 0, ["grp:a: cleared", "grp:b: cleared"], "group"),
]

RESULT = re.compile(r"^(\S+: (started|stopped|signalled|cleared|"
                    r"ERROR \(.*\))|"
                    r"No such process \S+|\d+)$")

SUP = None
W = None


# The programs of the baseline, the same file text for both daemons.
PROGRAMS = """\
[program:up]
command=%(sleep)s 1000
startsecs=0
[program:idle]
command=%(sleep)s 1000
autostart=false
startsecs=0
[program:quit]
command=%(true)s
startsecs=0
autorestart=false
[program:a]
command=%(sleep)s 1000
startsecs=0
[program:b]
command=%(sleep)s 1000
startsecs=0
[group:grp]
programs=a,b
""" % {"sleep": SLEEP, "true": TRUE}
WARD_CONF = PROGRAMS


def sup_conf(d):
    """supervisord's file: its own server sections, then PROGRAMS."""
    return textwrap.dedent("""\
        [unix_http_server]
        file=%(d)s/sup.sock
        [supervisord]
        logfile=%(d)s/supervisord.log
        pidfile=%(d)s/supervisord.pid
        childlogdir=%(d)s
        nodaemon=true
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [supervisorctl]
        serverurl=unix://%(d)s/sup.sock
        """) % {"d": d} + PROGRAMS


class Supervisord:
    """A real supervisord in a temp dir, on its own unix socket, -n."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ward-sup-")
        self.conf = os.path.join(self.dir, "supervisord.conf")
        with open(self.conf, "w") as f:
            f.write(sup_conf(self.dir))
        self.proc = subprocess.Popen([SUPERVISORD, "-n", "-c", self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        retry(lambda: os.path.exists(os.path.join(self.dir, "sup.sock")) and
              self.ctl("status").returncode in (0, 3),
              what="supervisord to answer")

    def ctl(self, *args):
        return subprocess.run([SUPERVISORCTL, "-c", self.conf] + list(args),
                              capture_output=True, text=True,
                              timeout=wardtest.TIMEOUT)

    def rpc(self):
        """supervisord's XML-RPC on its socket, for the baseline (one
        supervisorctl per row is slow enough)."""
        from supervisor.xmlrpc import SupervisorTransport
        t = SupervisorTransport(None, None, "unix://" + self.dir + "/sup.sock")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=t)

    def states(self):
        return {("%s:%s" % (i["group"], i["name"]) if i["group"] != i["name"]
                 else i["name"]): i["statename"]
                for i in self.rpc().supervisor.getAllProcessInfo()}

    def baseline(self):
        want = {"up": "RUNNING", "idle": "STOPPED", "quit": "EXITED",
                "grp:a": "RUNNING", "grp:b": "RUNNING"}

        def fix():
            s = self.states()
            if s == want:
                return True
            rpc = self.rpc().supervisor
            todo = [(rpc.startProcess, n, False) for n in ("up", "grp:a",
                    "grp:b") if s[n] in ("STOPPED", "EXITED", "FATAL")]
            if s["idle"] in ("RUNNING", "STARTING"):
                todo.append((rpc.stopProcess, "idle", True))
            if s["quit"] in ("STOPPED", "FATAL"):
                todo.append((rpc.startProcess, "quit", False))
            for fn, name, wait in todo:
                try:
                    fn(name, wait)
                except xmlrpc.client.Fault:
                    pass	# it moved meanwhile: looked at again
            return False
        retry(fix, what="supervisord's baseline")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=wardtest.TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def ward_states(c):
    got = {}
    for s in c.call("instance.list"):
        st = s["state"]
        prog = (s.get("program") or {}).get("state")
        got[s["name"]] = prog if prog in ("exited", "fatal") else st
    return got


def ward_baseline():
    c = W.client()
    try:
        for name in ("up", "grp:a", "grp:b"):
            if c.call("instance.status", {"name": name})["state"] != "running":
                c.call("instance.start", {"name": name})
        if c.call("instance.status", {"name": "idle"})["state"] == "running":
            c.call("instance.stop", {"name": "idle"})
        q = c.call("instance.status", {"name": "quit"})
        if q["state"] in ("not_started",):
            c.call("instance.start", {"name": "quit"})
        retry(lambda: (lambda s: s["up"] == s["grp:a"] == s["grp:b"] ==
                       "running" and s["idle"] != "running" and
                       s["quit"] not in ("running", "not_started"))(
                           ward_states(c)), what="wardd's baseline")
    finally:
        c.close()


def wardctl(*args):
    return subprocess.run([wardtest.WARDCTL, "--socket", W.sock] + list(args),
                          capture_output=True, text=True,
                          timeout=wardtest.TIMEOUT)


def results(out):
    """The per-name result lines of out, sorted; pids as N."""
    got = []
    for line in out.splitlines():
        line = line.strip()
        if RESULT.match(line):
            got.append("N" if line.isdigit() and line != "0" else line)
    return sorted(got)


def setup_module():
    global SUP, W
    d = tempfile.mkdtemp(prefix="ward-habits-")
    with open(os.path.join(d, "progs.conf"), "w") as f:
        f.write(WARD_CONF)
    W = Ward(args=["--config-dir", d]).start()
    W.confdir = d
    if SUPERVISORD and SUPERVISORCTL:
        SUP = Supervisord()
    return W


def teardown_module(ctx):
    if SUP is not None:
        SUP.stop()
    if W is not None:
        W.stop()
        shutil.rmtree(W.confdir, ignore_errors=True)


def check(p, args, rc, lines, who):
    out = p.stdout + p.stderr
    assert p.returncode == rc, (who, args, p.returncode, rc, out)
    if lines is not None:
        assert results(p.stdout) == sorted(lines), (who, args, out)


def test_supervisorctl_agrees_with_the_table():
    """The table is what supervisorctl does (its own check)."""
    if SUP is None:
        raise wardtest.Skip("supervisord is not installed")
    for args, rc, lines, why in TABLE:
        SUP.baseline()
        check(SUP.ctl(*args), args, rc, lines, "supervisorctl (%s)" % why)


def test_wardctl_agrees_with_the_table():
    for args, rc, lines, why in TABLE + WARD_MORE:
        ward_baseline()
        check(wardctl(*args), args, rc, lines, "wardctl (%s)" % why)


def test_wardctl_rejects_options_after_names():
    for args, rc, needle in WARD_ONLY:
        p = wardctl(*args)
        assert p.returncode == rc, (args, p.returncode, p.stderr)
        assert needle in p.stderr, (args, p.stderr)


def test_every_command_takes_help():
    """COMMAND --help and -h print its usage, status 0, wardd or not."""
    out = subprocess.run([wardtest.WARDCTL, "help"], capture_output=True,
                         text=True).stdout
    names = [l.split()[0] for l in out.splitlines()[1:] if l.strip()]
    assert "signal" in names and "avail" in names, names
    for name in names:
        for flag in ("--help", "-h"):
            p = subprocess.run([wardtest.WARDCTL, "--socket", "/nonexistent",
                                name, flag], capture_output=True, text=True)
            assert p.returncode == 0, (name, flag, p.stderr)
            assert p.stdout.startswith("usage: " + name), (name, p.stdout)
    p = subprocess.run([wardtest.WARDCTL, "--help"], capture_output=True,
                       text=True)
    assert p.returncode == 0 and p.stdout.startswith("usage:"), p


def avail_rows(out):
    """avail's rows as (name, in use|avail, auto|manual)."""
    rows = set()
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+(in use|avail)\s+(auto|manual)\b", line)
        if m:
            rows.add(m.groups())
    return rows


def test_avail_agrees():
    want = {("up", "in use", "auto"), ("idle", "in use", "manual"),
            ("quit", "in use", "auto"), ("grp:a", "in use", "auto"),
            ("grp:b", "in use", "auto")}
    if SUP is not None:
        got = avail_rows(SUP.ctl("avail").stdout)
        assert got == want, ("supervisorctl", got)
    p = wardctl("avail")
    assert p.returncode == 0 and avail_rows(p.stdout) == want, p


def test_maintail_is_wardds_log():
    """maintail: the end of wardd's own log, each line as it wrote it."""
    c = W.client()
    c.call("instance.clear_log", {"name": "up"})    # logs a line
    c.close()
    p = wardctl("maintail")
    assert p.returncode == 0, p
    assert "instance up: captured output cleared" in p.stdout, p.stdout
    assert len(p.stdout) <= 1600, len(p.stdout)
    assert p.stdout.startswith("<"), p.stdout[:80]  # a whole line
    p = wardctl("maintail", "-100")
    assert p.returncode == 0 and len(p.stdout) <= 100, p
    p = wardctl("maintail", "-x")
    assert p.returncode == 2 and "-x" in p.stderr, p
    # -f: what wardd logs from then on, until ^C (status 0).
    f = subprocess.Popen([wardtest.WARDCTL, "--socket", W.sock, "maintail",
                          "-f", "-1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    c = W.client()
    try:
        got = b""

        def logged():
            # A new line each time, until one comes after -f's start.
            nonlocal got
            c.call("instance.clear_log", {"name": "grp:a"})
            if select.select([f.stdout], [], [], 0.2)[0]:
                got += os.read(f.stdout.fileno(), 65536)
            return b"instance grp:a: captured output cleared" in got
        retry(logged, what="maintail -f to print a new line")
        f.send_signal(signal.SIGINT)
        assert f.wait(timeout=wardtest.TIMEOUT) == 0, f.stderr.read()
    finally:
        f.kill()
        f.wait()
        c.close()


def test_clear_and_maintail_are_authorized():
    """clear is the owner's or an admin's, maintail an admin's: uid 65534
    may neither clear root's instance nor read wardd's log."""
    os.chmod(W.dir, 0o755)
    r = wardtest.as_nobody(W, 'done([attempt("instance.clear_log", '
                           '{"name": "up"}), attempt("ward.maintail")])')
    assert r[0].get("code") in ("not_found", "permission_denied"), r
    assert r[1].get("code") == "permission_denied", r


def read_until(p, text):
    """p's stdout until it holds text (bounded by the test timeout)."""
    got = b""
    fd = p.stdout.fileno()

    def more():
        nonlocal got
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError("wardctl ended: %r" % got)
            got += chunk
        return text.encode() in got
    retry(more, what="%r from wardctl" % text)
    return got.decode()


def talker(c, name):
    c.call("instance.run", {"name": name, "capture_output": True, "argv": [
        "/bin/sh", "-c", "echo hello; exec %s 1000" % SLEEP]})
    retry(lambda: "hello" in c.call("instance.log", {"name": name})["data"],
          what="%s's output" % name)


def test_tail_bytes_and_follow_ends_at_removal():
    """tail -BYTES is supervisorctl's; tail -f ends (status 0) when the
    instance is removed, where it used to wait for ever."""
    c = W.client()
    talker(c, "talk1")
    p = wardctl("tail", "-5", "talk1")
    assert p.returncode == 0 and p.stdout == "ello\n", p
    p = wardctl("tail", "-n", "3", "talk1", "stdout")
    assert p.returncode == 0 and p.stdout == "lo\n", p
    f = subprocess.Popen([wardtest.WARDCTL, "--socket", W.sock, "tail", "-f",
                          "talk1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        read_until(f, "hello")
        c.call("instance.stop", {"name": "talk1"})
        wardtest.wait_dead(c, "talk1")
        c.call("instance.remove", {"name": "talk1"})
        assert f.wait(timeout=wardtest.TIMEOUT) == 0, f.stderr.read()
    finally:
        f.kill()
        f.wait()
        c.close()


def test_fg_detaches_on_ctrl_c():
    c = W.client()
    talker(c, "talk2")
    f = subprocess.Popen([wardtest.WARDCTL, "--socket", W.sock, "fg",
                          "talk2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        read_until(f, "==> Press Ctrl-C to exit <==")
        f.send_signal(signal.SIGINT)
        assert f.wait(timeout=wardtest.TIMEOUT) == 0, f.stderr.read()
        # It only detached: the instance runs on.
        assert c.call("instance.status", {"name": "talk2"})["state"] == \
            "running"
    finally:
        f.kill()
        f.wait()
        c.call("instance.kill", {"name": "talk2", "signal": "KILL"})
        wardtest.wait_dead(c, "talk2")
        c.call("instance.remove", {"name": "talk2"})
        c.close()


def test_add_applies_a_new_program():
    """add NAME after a reread: supervisorctl's results, the last test
    (it adds a program to both configs)."""
    late = "[program:late]\ncommand=%s 1000\nstartsecs=0\n" % SLEEP
    want = [(["add", "late"], 0, ["late: added process group"]),
            (["add", "late"], 0, ["ERROR: process group already active"]),
            (["add", "nosuch"], 1, ["ERROR: no such process/group: nosuch"])]
    if SUP is not None:
        with open(SUP.conf, "a") as f:
            f.write(late)
        assert SUP.ctl("reread").returncode == 0
        for args, rc, lines in want:
            p = SUP.ctl(*args)
            assert (p.returncode, p.stdout.splitlines()) == (rc, lines), (
                "supervisorctl", args, p)
    with open(os.path.join(W.confdir, "late.conf"), "w") as f:
        f.write(late)
    assert wardctl("reread").returncode == 0
    for args, rc, lines in want:
        p = wardctl(*args)
        assert (p.returncode, p.stdout.splitlines()) == (rc, lines), (
            "wardctl", args, p)
    c = W.client()
    retry(lambda: c.call("instance.status", {"name": "late"})["state"] ==
          "running", what="late to run")
    c.close()


if __name__ == "__main__":
    wardtest.run(globals())
