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
(autostart false), quit exited (it ran /bin/true). In supervisord grp is a
[group:grp] of programs a and b; in ward the programs are named grp:a and
grp:b, as a declared program inside a group is named GROUP:PROCESS.

Where wardctl deliberately differs from supervisorctl (an option after a
name is a usage error, status 2, where supervisorctl takes "--bogus" for a
process name), the rows say so in WARD_ONLY.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap

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
]

RESULT = re.compile(r"^(\S+: (started|stopped|signalled|ERROR \(.*\))|"
                    r"No such process \S+|\d+)$")

SUP = None
W = None


def sup_conf(d):
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
        """) % {"d": d, "sleep": SLEEP, "true": TRUE}


WARD_CONF = """\
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
[program:grp:a]
command=%(sleep)s 1000
startsecs=0
[program:grp:b]
command=%(sleep)s 1000
startsecs=0
""" % {"sleep": SLEEP, "true": TRUE}


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
        import xmlrpc.client
        t = SupervisorTransport(None, None, "unix://" + self.dir + "/sup.sock")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=t)

    def states(self):
        return {("%s:%s" % (i["group"], i["name"]) if i["group"] != i["name"]
                 else i["name"]): i["statename"]
                for i in self.rpc().supervisor.getAllProcessInfo()}

    def baseline(self):
        s, want = self.states(), {"up": "RUNNING", "idle": "STOPPED",
                                  "quit": "EXITED", "grp:a": "RUNNING",
                                  "grp:b": "RUNNING"}
        if s == want:
            return
        rpc = self.rpc().supervisor
        for name in ("up", "grp:a", "grp:b"):
            if s[name] in ("STOPPED", "EXITED", "FATAL"):
                rpc.startProcess(name)
        if s["idle"] in ("RUNNING", "STARTING"):
            rpc.stopProcess("idle")
        if s["quit"] in ("STOPPED", "FATAL"):
            rpc.startProcess("quit", False)
        retry(lambda: self.states() == want, what="supervisord's baseline")

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
    for args, rc, lines, why in TABLE:
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


if __name__ == "__main__":
    wardtest.run(globals())
