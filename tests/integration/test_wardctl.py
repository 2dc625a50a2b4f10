#!/usr/bin/python3
"""wardctl, the admin tool, driven as a user drives it: the real binary
against a real wardd, one command at a time, with its exit statuses (0 done,
1 refused, 2 usage, 3 unreachable), its tables and its --json output, which
must be what the daemon said. Then the interactive shell, under tmux.

One wardd serves most tests (it keeps an instance "web" running); the
metrics stream, shutdown, the shell and payloads that write hostile text
each get their own.
"""
import json
import os
import pwd
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time

import msgpack

import wardtest
from wardtest import TIMEOUT, Ward, WardError, payload, read_report, retry, \
    wait_dead
from wardtest import uniq

WARDCTL = os.path.join(wardtest.BUILDDIR, "client", "wardctl")
HEADER = ["NAME", "ID", "STATE", "PAYLOAD", "PID", "UPTIME", "CPU%", "RSS",
          "REASON"]
# Fields of a status map that change while one looks at it.
MOVING = {"uptime_ms", "metrics"}

W = None
C = None


def setup_module():
    global W, C
    W = Ward().start()
    C = W.client()
    W.shared_out()                           # payloads as nobody write here
    C.call("instance.run", {"name": "web",
                            "argv": payload("notify", "READY=1", "hang")})
    retry(lambda: C.call("instance.status", {"name": "web"})
          ["payload_state"] == "ready", what="web ready")
    return W



def base_env(**kw):
    env = dict(os.environ)
    for k in ("WARD_SOCKET", "NO_COLOR"):
        env.pop(k, None)
    env.update(kw)
    return env


def ctl(*args, sock=None, env=None, cwd=None, timeout=TIMEOUT):
    """Run wardctl; its output is piped (not a tty) and stdin is empty."""
    argv = [WARDCTL]
    if sock is not False:
        argv += ["--socket", sock or W.sock]
    p = subprocess.run(argv + [str(a) for a in args], env=env or base_env(),
                       cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    return p


def ok(*args, **kw):
    p = ctl(*args, **kw)
    assert p.returncode == 0, "wardctl %s: exit %d\n%s%s" % (
        " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
    assert "\x1b" not in p.stdout, "escape codes in piped output: %r" % p.stdout
    return p.stdout


def refused(expect, *args, **kw):
    p = ctl(*args, **kw)
    assert p.returncode == expect, "wardctl %s: exit %d, not %d\n%s%s" % (
        " ".join(map(str, args)), p.returncode, expect, p.stdout, p.stderr)
    return p


def status(name, c=None):
    return (c or C).call("instance.status", {"name": name})


def run_hang(name=None, *steps):
    name = name or uniq("h")
    C.call("instance.run", {"name": name,
                            "argv": payload(*(steps + ("hang",)))})
    return name


def kill_quietly(*names):
    for n in names:
        try:
            C.call("instance.kill", {"name": n})
        except WardError:
            pass
    for n in names:
        try:
            wait_dead(C, n)
        except WardError:
            pass


def table(text):
    """The status table: (header words, {name: row words})."""
    lines = [l for l in text.splitlines() if l.strip()]
    assert lines, text
    rows = {}
    for l in lines[1:]:
        w = l.split()
        rows[w[0]] = w
    return lines[0].split(), rows


# Numbers are right-aligned under their header, words left-aligned.
RIGHT = {"ID", "PID", "UPTIME", "CPU%", "RSS"}


def words_at(line):
    """[(start, end, word)] for each word of line."""
    out, i = [], 0
    for w in line.split():
        i = line.index(w, i)
        out.append((i, i + len(w), w))
        i += len(w)
    return out


def assert_aligned(text, right=RIGHT):
    """Every column of a table sits at the same offset on every row: a
    left-aligned column's cells start where its header starts, a
    right-aligned one's end where its header ends (its field, padding and
    all, then starts at one offset on every row too), so a wide cell cannot
    push the rest of its row out of line."""
    lines = [l for l in text.splitlines() if l.strip()]
    head = words_at(lines[0])
    for l in lines[1:]:
        cells = words_at(l)
        assert len(cells) in (len(head), len(head) - 1), (l, text)
        for (hs, he, h), (s, e, w) in zip(head, cells):
            if h in right:
                assert e == he, "%s %r ends at %d, its header at %d:\n%s" % (
                    h, w, e, he, text)
            else:
                assert s == hs, "%s %r starts at %d, its header at %d:\n%s" \
                    % (h, w, s, hs, text)


def strip_moving(st):
    return {k: v for k, v in st.items() if k not in MOVING}


class Lines:
    """Lines from a child's stdout, each waited for with a bounded select."""

    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def next(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no line from wardctl in %ss (have %r)"
                                     % (timeout, self.buf))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                data = os.read(self.fd, 65536)
                if not data:
                    raise AssertionError("wardctl closed its output (exit %s):"
                                         " %r %s" % (self.proc.poll(), self.buf,
                                                     self.proc.stderr.read()))
                self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def json(self, timeout=TIMEOUT):
        return json.loads(self.next(timeout))


def events_proc(*args, sock=None):
    return subprocess.Popen(
        [WARDCTL, "--socket", sock or W.sock] + list(args), env=base_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, bufsize=0)


def end_proc(p):
    if p.poll() is None:
        p.kill()
    p.wait()
    p.stdout.close()
    p.stderr.close()


# ---- help and usage --------------------------------------------------------

COMMANDS = ["status", "run", "start", "stop", "restart", "kill", "suspend",
            "resume", "wait", "remove", "payload", "history", "events", "tail", "top",
            "reread", "update", "logrotate", "info", "shutdown", "reexec",
            "metrics", "call", "help"]


def test_help_lists_every_command():
    out = ok("help", sock=False)
    listed = [l.split()[0] for l in out.splitlines()[1:] if l.strip()]
    assert listed == COMMANDS, out


def test_help_run_shows_usage():
    out = ok("help", "run", sock=False)
    assert out.startswith("usage: run NAME "), out
    for opt in ("--detect-hangup", "--hangup-timeout MS",
                "--exit-code N=REASON", "--profile crosvm", "--env K=V",
                "--cwd DIR", "--user U", "-- ARGV"):
        assert opt in out, (opt, out)
    p = refused(2, "help", "frobnicate", sock=False)
    assert "frobnicate" in p.stderr, p.stderr


def test_usage_errors_exit_2():
    p = refused(2, "frobnicate")
    assert "unknown command 'frobnicate'" in p.stderr, p.stderr
    # run without "--": nothing created.
    p = refused(2, "run", "nodash")
    assert "after --" in p.stderr and "usage: run NAME" in p.stderr, p.stderr
    p = refused(2, "run", "nodash", "/bin/true")
    assert "usage: run NAME" in p.stderr, p.stderr
    p = refused(2, "run", "nodash", "--env", "A=1")
    assert "after --" in p.stderr, p.stderr
    p = refused(2, "run", "nodash2", "--bogus", "x", "--", "/bin/true")
    assert "--bogus" in p.stderr, p.stderr
    p = refused(2, "run", "nodash3", "--exit-code", "FOO", "--",
                wardtest.PAYLOAD)
    assert "N=REASON" in p.stderr, p.stderr
    refused(2, "kill")
    refused(2, "payload", "web")
    refused(2, "stop", "--timeout", "soon", "web")
    for n in ("nodash", "nodash2", "nodash3"):
        try:
            status(n)
            raise AssertionError("%s was created by a usage error" % n)
        except WardError as e:
            assert e.code == "not_found", e


def test_unreachable_exit_3():
    missing = os.path.join(W.dir, "no-such.sock")
    p = refused(3, "status", sock=missing)
    assert "cannot connect to wardd at %s" % missing in p.stderr, p.stderr
    assert "(is wardd running?)" in p.stderr, p.stderr
    # The same through $WARD_SOCKET.
    p = refused(3, "info", sock=False, env=base_env(WARD_SOCKET=missing))
    assert "cannot connect to wardd at %s" % missing in p.stderr, p.stderr


def test_refused_connection_exit_3():
    """A socket file nobody listens on (a wardd that died without removing
    it): ECONNREFUSED, not a hang, and the same hint."""
    stale = os.path.join(W.dir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    p = refused(3, "status", sock=stale)
    assert p.stderr == "wardctl: cannot connect to wardd at %s: Connection " \
        "refused (is wardd running?)\n" % stale, p.stderr
    os.unlink(stale)


def test_ward_socket_env():
    out = ok("status", "web", sock=False, env=base_env(WARD_SOCKET=W.sock))
    assert "web" in table(out)[1], out


def test_refused_exit_1_suggests_names():
    p = refused(1, "stop", "wbe")
    assert "wbe" in p.stderr, p.stderr
    assert "did you mean: web" in p.stderr, p.stderr
    p = refused(1, "status", "wbe")
    assert "did you mean: web" in p.stderr, p.stderr
    p = refused(1, "kill", "nothing-like-it-at-all")
    assert "nothing-like-it-at-all" in p.stderr, p.stderr
    assert "did you mean" not in p.stderr, p.stderr


# ---- status ----------------------------------------------------------------

def test_status_table():
    dead = uniq("d")
    C.call("instance.run", {"name": dead, "argv": payload("exit", 3),
                            "exit_codes": {"3": "TABLE_REASON"}})
    wait_dead(C, dead)
    out = ok("status")
    head, rows = table(out)
    assert head == HEADER, out
    listed = C.call("instance.list")
    assert sorted(rows) == sorted(s["name"] for s in listed), out
    web = status("web")
    r = rows["web"]
    assert r[1] == str(web["id"]) and r[2] == "running", r
    assert r[3] == "ready" and r[4] == str(web["pid"]), r
    r = rows[dead]
    assert r[2] == "dead" and r[4] == "-" and r[-1] == "TABLE_REASON", r
    assert_aligned(out)
    # Names select rows; ids work as names do.
    out = ok("status", str(web["id"]), dead)
    head, rows = table(out)
    assert head == HEADER and sorted(rows) == sorted(["web", dead]), out


def test_status_long():
    name = uniq("l")
    C.call("instance.run", {"name": name, "argv": payload("exit", 4),
                            "exit_codes": {"4": "LONG_REASON"}})
    wait_dead(C, name)
    out = ok("status", "-l", name)
    assert out.splitlines()[0].startswith(name + " (id "), out
    assert "owner:    root (uid 0)" in out, out
    assert "state:    dead" in out, out
    assert "died:     LONG_REASON, exit code 4" in out, out
    assert "command:  %s exit 4" % wardtest.PAYLOAD in out, out
    out = ok("status", "-l", "web")
    assert "state:    running" in out and "payload:  ready" in out, out
    assert "pid:      %d" % status("web")["pid"] in out, out


def test_json_status_is_the_daemons():
    name = uniq("j")
    C.call("instance.run", {"name": name, "argv": payload("fail", "X|y"),
                            "env": {"TEST_J": "1"}})
    wait_dead(C, name)
    for ident in ("web", name):
        got = json.loads(ok("--json", "status", ident))
        want = status(ident)
        assert isinstance(got, dict), got
        assert strip_moving(got) == strip_moving(want), (got, want)
        assert set(got["metrics"]) == set(want["metrics"]), got
    # Several names: an array in that order.
    got = json.loads(ok("--json", "status", name, "web"))
    assert [s["name"] for s in got] == [name, "web"], got
    assert strip_moving(got[0]) == strip_moving(status(name)), got


def lenient_client(w):
    """A client that takes non-UTF-8 strings from wardd (as surrogates)."""
    c = w.client()
    c.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                  unicode_errors="surrogateescape")
    return c


def test_json_stays_json_whatever_the_payload_writes():
    """Status text and failure text come from the payload, byte for byte;
    wardd makes them valid UTF-8 (bad bytes become U+FFFD), so --json
    prints valid JSON. Arguments that are not UTF-8 are refused."""
    with Ward() as w:
        c = lenient_client(w)
        # The payload's own bytes (its argv stays ASCII).
        ok("run", "u8", "--", "/bin/sh", "-c",
           r"printf 'STATUS=caf\351\n' >&4; printf 'bad\377\376' >&3; "
           r"printf 'READY=1\n' >&4; exit 1", sock=w.sock)
        st = wait_dead(c, "u8")
        assert st["failure_reason"] == "bad\ufffd\ufffd", st
        assert st["status_text"] == "caf\ufffd", st
        for args in (("--json", "status", "u8"), ("--json", "history"),
                     ("--json", "status")):
            p = subprocess.run([WARDCTL, "--socket", w.sock] + list(args),
                               env=base_env(), capture_output=True,
                               timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            try:
                json.loads(p.stdout.decode("utf-8"))
            except ValueError as e:
                raise AssertionError("wardctl %s printed invalid JSON (%s): "
                                     "%r" % (" ".join(args), e,
                                             p.stdout[-120:]))
        p = ctl("run", "bad", "--", wardtest.PAYLOAD, "fail",
                os.fsdecode(b"bad\xff"), sock=w.sock)
        assert p.returncode == 1 and "UTF-8" in p.stderr, (p.returncode,
                                                          p.stderr)


def test_plain_output_has_no_escapes_from_payload_text():
    """Piped output is plain even when a payload's text holds ESC."""
    with Ward() as w:
        c = w.client()
        c.call("instance.run", {"name": "esc", "argv": payload(
            "notify", "STATUS=\x1b]0;owned\x07\x1b[2J", "fail",
            "\x1b[31mred", "exit", 1)})
        wait_dead(c, "esc")
        for args in (("status", "-l", "esc"), ("history", "esc")):
            p = ctl(*args, sock=w.sock)
            assert p.returncode == 0, p.stderr
            assert "\x1b" not in p.stdout, "wardctl %s printed the " \
                "payload's escape codes: %r" % (" ".join(args), p.stdout)


def test_json_status_all_is_an_array():
    got = json.loads(ok("--json", "status"))
    want = C.call("instance.list")
    assert isinstance(got, list), got
    assert [strip_moving(s) for s in got] == [strip_moving(s) for s in want]


# ---- run -------------------------------------------------------------------

def test_run_every_option():
    nobody = pwd.getpwnam("nobody")
    report = os.path.join(W.out, uniq("every") + ".report")
    name = uniq("every")
    out = ok("run", name, "--detect-hangup", "--hangup-timeout", 60000,
             "--exit-code", "3=EVERY_THREE", "--exit-code", "4=EVERY_FOUR",
             "--profile", "crosvm", "--env", "TEST_A=1", "--env",
             "TEST_B=two=2", "--cwd", W.out, "--user", "nobody", "--",
             "./tests/payload", "report", report, "notify", "STATE=started",
             "exit", 4, cwd=wardtest.BUILDDIR)
    st = wait_dead(C, name)
    assert out.startswith("%s: started (id %d, pid " % (name, st["id"])), out
    # argv[0] was relative to wardctl's cwd; wardctl made it absolute.
    assert st["argv"] == [wardtest.PAYLOAD, "report", report, "notify",
                          "STATE=started", "exit", "4"], st
    assert st["detect_hangup"] is True and st["hangup_timeout_ms"] == 60000, st
    assert st["death_reason"] == "EVERY_FOUR" and st["exit_code"] == 4, st
    rep = read_report(report)
    assert rep["env"].get("TEST_A") == "1", rep
    assert rep["env"].get("TEST_B") == "two=2", rep
    assert rep["cwd"] == os.path.realpath(W.out), rep
    assert int(rep["uid"]) == nobody.pw_uid, rep
    assert int(rep["gid"]) == nobody.pw_gid, rep
    # The other codes: the first --exit-code kept, the profile's as well.
    for code, reason in ((3, "EVERY_THREE"), (33, "CRASH"), (32, "REBOOT"),
                         (5, "UNKNOWN")):
        n = uniq("every")
        ok("run", n, "--exit-code", "3=EVERY_THREE", "--exit-code",
           "4=EVERY_FOUR", "--profile", "crosvm", "--",
           wardtest.PAYLOAD, "exit", code)
        st = wait_dead(C, n)
        assert st["death_reason"] == reason, (code, st)


def test_run_user_number_and_relative_argv0():
    report = os.path.join(W.out, uniq("num") + ".report")
    name = uniq("num")
    # Run from tests/: "./payload" means tests/payload, not wardd's cwd's.
    ok("run", name, "--user", 65534, "--cwd", ".", "--", "./payload",
       "report", report, cwd=os.path.dirname(wardtest.PAYLOAD))
    st = wait_dead(C, name)
    assert st["argv"][0] == wardtest.PAYLOAD, st
    assert st["death_reason"] == "SHUTDOWN", st
    rep = read_report(report)
    assert rep["uid"] == "65534" and rep["gid"] == "65534", rep
    assert rep["cwd"] == os.path.dirname(wardtest.PAYLOAD), rep


def test_run_hangup_timeout_kills():
    name = uniq("hup")
    ok("run", name, "--hangup-timeout", 200, "--", wardtest.PAYLOAD, "hang")
    st = wait_dead(C, name)
    assert st["detect_hangup"] is True and st["hangup_timeout_ms"] == 200, st
    assert st["death_reason"] == "HANGUP", st
    assert st["payload_state"] == "hangup", st


def test_run_json_and_refusals():
    name = uniq("rj")
    r = json.loads(ok("--json", "run", name, "--", wardtest.PAYLOAD, "hang"))
    st = status(name)
    assert r["id"] == st["id"] and r["pid"] == st["pid"], (r, st)
    assert r["state"] == "running", r
    # The name is taken: the daemon refuses, wardctl says so and exits 1.
    p = refused(1, "run", name, "--", wardtest.PAYLOAD, "hang")
    assert name in p.stderr, p.stderr
    # Not an executable: spawn_failed, exit 1.
    p = refused(1, "run", uniq("rj"), "--", "/nonexistent/exe")
    assert "/nonexistent/exe" in p.stderr, p.stderr
    kill_quietly(name)


# ---- start, stop, restart, kill, suspend, resume, remove -------------------

def test_start():
    name = uniq("s")
    C.call("instance.create", {"name": name, "argv": payload("hang")})
    out = ok("start", name)
    assert out == "%s: started\n" % name, out
    st = status(name)
    assert st["state"] == "running" and st["pid"] > 0, st
    # Starting a running instance is refused.
    refused(1, "start", name)
    kill_quietly(name)
    # A dead instance starts again, with a new pid.
    ok("start", name)
    st2 = status(name)
    assert st2["state"] == "running" and st2["pid"] != st["pid"], st2
    kill_quietly(name)


def test_stop_waits_for_death():
    name = run_hang()
    pid = status(name)["pid"]
    out = ok("stop", name)
    assert out == "%s: stopped (KILLED, SIGTERM)\n" % name, out
    # No waiting here: stop returned only once it was dead.
    st = status(name)
    assert st["state"] == "dead" and st["signal_name"] == "SIGTERM", st
    assert not os.path.exists("/proc/%d" % pid), "pid %d not reaped" % pid
    out = ok("status", name)
    assert table(out)[1][name][2] == "dead", out
    # Stopping a dead one: refused.
    p = refused(1, "stop", name)
    assert "not running" in p.stderr, p.stderr


def test_stop_timeout_escalates_to_sigkill():
    name = run_hang(None, "ignore-term", "notify", "STATE=started")
    retry(lambda: status(name)["payload_state"] == "started",
          what="ignore-term in place")
    t0 = time.monotonic()
    out = ok("--json", "stop", "--timeout", 200, name)
    took = time.monotonic() - t0
    ev = json.loads(out)
    assert ev["type"] == "died" and ev["name"] == name, ev
    assert ev["exit"]["signal_name"] == "SIGKILL", ev
    st = status(name)
    assert st["state"] == "dead" and st["signal_name"] == "SIGKILL", st
    assert st["death_reason"] == "KILLED", st
    assert took >= 0.19, took


def test_restart_new_pid_and_history():
    name = run_hang()
    pid0 = status(name)["pid"]
    out = ok("restart", name)
    assert out == "%s: restarted\n" % name, out
    st = status(name)
    assert st["state"] == "running" and st["pid"] not in (0, pid0), st
    pid1 = st["pid"]
    ok("restart", "--timeout", 1000, name)
    st = status(name)
    assert st["state"] == "running" and st["pid"] not in (pid0, pid1), st
    hist = json.loads(ok("--json", "history", name))
    assert len(hist) == 2, hist
    assert all(h["name"] == name and h["signal_name"] == "SIGTERM"
               for h in hist), hist
    # A dead instance restarts without complaint.
    kill_quietly(name)
    ok("restart", name)
    assert status(name)["state"] == "running"
    kill_quietly(name)


def test_kill_signals():
    a, b, c = run_hang(), run_hang(), run_hang()
    assert ok("kill", "-s", "TERM", a) == "%s: sent TERM\n" % a
    assert ok("kill", "-s", 15, b) == "%s: sent 15\n" % b
    assert ok("kill", c) == "%s: sent KILL\n" % c
    assert wait_dead(C, a)["signal_name"] == "SIGTERM"
    assert wait_dead(C, b)["signal_name"] == "SIGTERM"
    assert wait_dead(C, c)["signal_name"] == "SIGKILL"
    p = refused(1, "kill", "-s", "NOTASIGNAL", "web")
    assert "web" in p.stderr and "signal" in p.stderr, p.stderr
    assert status("web")["state"] == "running"


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_suspend_resume():
    name = run_hang()
    pid = status(name)["pid"]
    assert ok("suspend", name) == "%s: suspended\n" % name
    st = status(name)
    assert st["suspended"] is True
    if st["cgroup"] is None:	# else frozen (test_suspend.py), not stopped
        retry(lambda: proc_state(pid) == "T", what="stopped process")
    head, rows = table(ok("status", name))
    assert rows[name][2] == "suspended", rows
    assert "(suspended)" in ok("status", "-l", name)
    assert ok("resume", name) == "%s: resumed\n" % name
    assert status(name)["suspended"] is False
    head, rows = table(ok("status", name))
    assert rows[name][2] == "running", rows
    retry(lambda: proc_state(pid) != "T", what="continued process")
    kill_quietly(name)


def test_remove():
    name = run_hang()
    p = refused(1, "remove", name)       # running
    assert name in p.stderr, p.stderr
    kill_quietly(name)
    assert ok("remove", name) == "%s: removed\n" % name
    try:
        status(name)
        raise AssertionError("still there after remove")
    except WardError as e:
        assert e.code == "not_found", e
    refused(1, "remove", name)
    # Several at once, one missing: the others are done, exit 1.
    x, y = run_hang(), run_hang()
    kill_quietly(x, y)
    p = refused(1, "remove", x, "no-such-one", y)
    assert p.stdout == "%s: removed\n%s: removed\n" % (x, y), p.stdout
    assert "no-such-one" in p.stderr, p.stderr


def test_payload_forward_only():
    name = run_hang()
    assert status(name)["payload_state"] == "starting"
    assert ok("payload", name, "ready") == "%s: payload ready\n" % name
    assert status(name)["payload_state"] == "ready"
    p = refused(1, "payload", name, "started")
    assert "ready" in p.stderr and "started" in p.stderr, p.stderr
    assert status(name)["payload_state"] == "ready"
    ok("payload", name, "finished")
    assert status(name)["payload_state"] == "finished"
    kill_quietly(name)


# ---- history ---------------------------------------------------------------

def test_history():
    name = uniq("hist")
    C.call("instance.create", {"name": name, "argv": payload("exit", 7),
                               "exit_codes": {"7": "HIST_SEVEN"}})
    for _ in range(3):
        C.call("instance.start", {"name": name})
        wait_dead(C, name)
    want = C.call("instance.history", {"name": name})
    assert len(want) == 3, want
    out = ok("history", name)
    lines = out.splitlines()
    assert lines[0].split() == ["DIED", "NAME", "ID", "RUN", "REASON", "BY",
                                "EXIT", "UPTIME", "RSSMAX", "INFO"], out
    assert len(lines) == 4, out
    for run, l in enumerate(lines[1:], 1):
        w = l.split()
        assert w[2] == name and w[4] == str(run) and w[5] == "HIST_SEVEN" \
            and w[6] == "-" and w[7] == "7", l
    # -n: the last ones.
    out = ok("history", "-n", 1)
    assert len(out.splitlines()) == 2 and name in out, out
    got = json.loads(ok("--json", "history", "-n", 2, name))
    assert got == want[-2:], (got, want)
    assert got == C.call("instance.history", {"name": name, "limit": 2})
    got = json.loads(ok("--json", "history"))
    assert got == C.call("instance.history"), got
    got = json.loads(ok("--json", "history", str(want[0]["id"])))
    assert got == want, got


# ---- events ----------------------------------------------------------------

def subscribers(c=None):
    return (c or C).call("ward.stats")["subscribers"]


def test_events_json_lines_in_order():
    name = uniq("ev")
    other = uniq("ev")
    C.call("instance.create", {"name": name,
                               "argv": payload("notify", "STATE=started",
                                               "hang")})
    base = subscribers()
    p = events_proc("--json", "events", name)
    try:
        lines = Lines(p)
        retry(lambda: subscribers() == base + 1 or p.poll() is not None,
              what="wardctl to subscribe")
        assert p.poll() is None, p.stderr.read()
        # Another instance's activity must not show.
        C.call("instance.run", {"name": other, "argv": payload("exit", 0)})
        ok("start", name)
        retry(lambda: status(name)["payload_state"] == "started",
              what="payload started")
        ok("stop", name)
        ok("remove", name)
        got = [lines.json() for _ in range(4)]
        assert [e["type"] for e in got] == ["started", "payload", "died",
                                            "removed"], got
        assert all(e["name"] == name for e in got), got
        assert got[1]["payload_state"] == "started", got
        assert got[2]["exit"]["signal_name"] == "SIGTERM", got
        # Each line is the event map as wardd sends it.
        assert {"type", "time_ms", "id", "name", "state"} <= set(got[0]), got
        assert got[0]["pid"] > 0, got
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=TIMEOUT) == 0, p.stderr.read()
        assert lines.buf == b"" and p.stdout.read() == b"", "more events"
    finally:
        end_proc(p)
    retry(lambda: subscribers() == base, what="wardctl to go away")


def test_events_plain_all():
    base = subscribers()
    p = events_proc("events")
    try:
        lines = Lines(p)
        retry(lambda: subscribers() == base + 1 or p.poll() is not None,
              what="wardctl to subscribe")
        name = uniq("evp")
        C.call("instance.run", {"name": name, "argv": payload("exit", 9),
                                "exit_codes": {"9": "PLAIN_NINE"}})
        got = [lines.next() for _ in range(3)]
        for line, typ in zip(got, ("created", "started", "died")):
            w = line.split()
            assert w[1] == typ and w[2] == name, got
        assert "PLAIN_NINE exit 9" in got[2], got
        assert all("\x1b" not in l for l in got), got
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=TIMEOUT) == 0, p.stderr.read()
    finally:
        end_proc(p)


def test_events_unknown_name():
    p = refused(1, "events", "wbe")
    assert "did you mean: web" in p.stderr, p.stderr


def test_events_metrics():
    with Ward(args=["--metrics-interval", "100"]) as w:
        c = w.client()
        c.call("instance.run", {"name": "busy", "argv": payload("hang")})
        plain = events_proc("--json", "events", "busy", sock=w.sock)
        metrics = events_proc("--json", "events", "--metrics", sock=w.sock)
        try:
            retry(lambda: subscribers(c) == 2 or plain.poll() is not None
                  or metrics.poll() is not None, what="two subscribers")
            assert plain.poll() is None and metrics.poll() is None
            both = time.time() * 1000
            ml = Lines(metrics)
            seen = 0
            while seen < 2:
                e = ml.json()
                assert e["type"] == "metrics" and e["name"] == "busy", e
                assert {"cpu_percent", "rss_kb", "cpu_user_ms"} <= \
                    set(e["metrics"]), e
                if e["time_ms"] > both:
                    seen += 1
            # Ticks happened while the plain subscriber listened; it has
            # not seen one: its first line is the death.
            ok("kill", "busy", sock=w.sock)
            e = Lines(plain).json()
            assert e["type"] == "died" and e["name"] == "busy", e
            for p in (plain, metrics):
                p.send_signal(signal.SIGINT)
                assert p.wait(timeout=TIMEOUT) == 0, p.stderr.read()
        finally:
            end_proc(plain)
            end_proc(metrics)


def test_events_wardd_dies_exit_3():
    w = Ward().start()
    p = None
    try:
        c = w.client()
        p = events_proc("events", sock=w.sock)
        retry(lambda: subscribers(c) == 1 or p.poll() is not None,
              what="wardctl to subscribe")
        w.proc.kill()
        w.proc.wait()
        assert p.wait(timeout=TIMEOUT) == 3, p.stderr.read()
        err = p.stderr.read().decode()
        assert err == "wardctl: wardd closed the connection\n", err
    finally:
        if p is not None:
            end_proc(p)
        w.stop()


# ---- human units, from a daemon that says what wardd cannot be made to ----

def fake_status(name, id, state, uptime_s, rss_kb, **kw):
    running = state == "running"
    st = {"id": id, "name": name, "state": state, "payload_state": "ready",
          "status_text": "", "pid": 1000 + id if running else None,
          "argv": ["x"], "owner_uid": 0, "created_at_ms": 1,
          "started_at_ms": 1 if uptime_s is not None else None,
          "uptime_ms": int((uptime_s or 0) * 1000), "suspended": False,
          "metrics": {"cpu_percent": 1.5, "rss_kb": rss_kb if running else 0,
                      "rss_max_kb": rss_kb, "cpu_user_ms": 0,
                      "cpu_system_ms": 0, "cpu_guest_ms": 0}}
    st.update(kw)
    return st


def test_status_human_units():
    day, hour = 86400, 3600
    rows = [
        fake_status("vm", 1, "running", 3 * day + 4 * hour + 59 * 60,
                    int(1.2 * 1024 * 1024)),
        fake_status("mid", 2, "running", 3 * hour + 2 * 60 + 7, 1536),
        fake_status("small", 3, "running", 45.9, 512),
        fake_status("ten", 4, "running", 12 * 60 + 3, 10 * 1024 * 1024),
        fake_status("old", 5, "dead", 59, 20 * 1024 * 1024,
                    death_reason="CRASH", exit_code=1, uptime_ms=59000),
        fake_status("new", 6, "not_started", None, 0),
    ]
    path = os.path.join(W.dir, "fake.sock")
    f = wardtest.FakeWardd(path, {"instance.list": rows,
                         "instance.status": lambda p: rows[0]})
    try:
        out = ok("status", sock=path)
        head, got = table(out)
        assert head == HEADER, out
        # NAME ID STATE PAYLOAD PID UPTIME CPU% RSS [REASON]
        assert got["vm"][5:8] == ["3d4h", "1.5", "1.2G"], out
        assert got["mid"][5:8] == ["3h2m", "1.5", "1.5M"], out
        assert got["small"][5:8] == ["45s", "1.5", "512K"], out
        assert got["ten"][5:8] == ["12m3s", "1.5", "10G"], out
        # Dead: no CPU%, the peak RSS, the reason.
        assert got["old"][4:] == ["-", "59s", "-", "20G", "CRASH"], out
        assert got["new"][4:7] == ["-", "-", "-"], out
        # The columns line up under the header, whatever the widths.
        lines = out.splitlines()
        for col in ("UPTIME", "RSS"):
            end = lines[0].index(col) + len(col)
            for l in lines[1:]:
                assert l[end - 1] != " " and l[end] == " ", (col, out)
        out = ok("status", "-l", "vm", sock=path)
        assert "pid:      1001, up 3d4h" in out, out
        assert "memory:   rss 1.2G, max 1.2G" in out, out
    finally:
        f.close()


def test_status_columns_stay_aligned():
    """Wide cells widen their column, they do not shift the rest of the row:
    ids past a million (ids are never reused), CPU% past 999 (ten busy
    cores), a long name, a long uptime, a reason."""
    day = 86400
    rows = [
        fake_status("a", 1, "running", 5, 512),
        fake_status("long-name-of-a-worker-instance-0123456789", 2, "running",
                    1234 * day, 64 * 1024 * 1024),
        fake_status("many", 12345678, "running", 61, 2048, pid=4194303,
                    metrics={"cpu_percent": 1234.5, "rss_kb": 2048,
                             "rss_max_kb": 2048, "cpu_user_ms": 0,
                             "cpu_system_ms": 0, "cpu_guest_ms": 0}),
        fake_status("gone", 7, "dead", 59, 1024, death_reason="A_LONG_REASON",
                    exit_code=1),
        fake_status("new", 8, "not_started", None, 0),
    ]
    running = [r for r in rows if r["state"] == "running"]
    path = os.path.join(W.dir, "fake-wide.sock")
    f = wardtest.FakeWardd(path, {
        "instance.list": lambda p: running if p.get("state") == "running"
        else rows,
        "ward.stats": {"instances": 5, "running": 3, "clients": 1,
                       "subscribers": 0, "created": 5, "started": 4,
                       "died": 1, "spawn_failed": 0, "removed": 0,
                       "metrics_ticks": 0, "rss_kb": 4096}})
    try:
        out = ok("status", sock=path)
        head, got = table(out)
        assert head == HEADER and sorted(got) == sorted(r["name"] for r in
                                                        rows), out
        assert got["many"][1] == "12345678" and got["many"][6] == "1234.5", out
        assert_aligned(out)
        out = ok("top", sock=path)
        lines = out.splitlines()
        assert lines[0].startswith("wardd: 5 instances, 3 running, "), out
        rows_out = {l.split()[0]: l.split() for l in lines[3:]}
        assert sorted(rows_out) == sorted(r["name"] for r in running), out
        assert rows_out["many"][1:4] == ["12345678", "4194303", "1234.5"], out
        assert_aligned("\n".join(lines[2:]))
    finally:
        f.close()


# ---- top, info -------------------------------------------------------------

def test_top_one_frame():
    a, b = run_hang(uniq("top")), run_hang(uniq("top"))
    try:
        running = C.call("instance.list", {"state": "running"})
        st = C.call("ward.stats")
        for args in (("top", "-n", 1), ("top",)):
            out = ok(*args)
            lines = out.splitlines()
            assert lines[0].startswith("wardd: %d instances, %d running, " % (
                st["instances"], st["running"])), out
            assert lines[1] == "", out
            assert lines[2].split() == ["NAME", "ID", "PID", "CPU%", "RSS",
                                        "UPTIME", "PAYLOAD"], out
            rows = {l.split()[0]: l.split() for l in lines[3:]}
            assert sorted(rows) == sorted(s["name"] for s in running), out
            assert rows[a][1] == str(status(a)["id"]), rows
            assert rows[a][2] == str(status(a)["pid"]), rows
            assert rows["web"][-1] == "ready", rows
            assert out.count("wardd: ") == 1, "more than one frame: " + out
    finally:
        kill_quietly(a, b)


def test_info():
    st = C.call("ward.stats")
    out = ok("info")
    assert out.startswith("wardd %s (protocol 1), pid %d, at %s\n" % (
        W.hello["version"], W.proc.pid, W.sock)), out
    assert "uid 0 (admin)" in out, out
    assert "instances:   %d (%d running)" % (st["instances"], st["running"]) \
        in out, out
    got = json.loads(ok("--json", "info"))
    assert set(got) == set(st), got
    for k in ("instances", "running", "created", "started", "died",
              "removed"):
        assert got[k] == st[k], (k, got, st)


# ---- shutdown --------------------------------------------------------------

def test_shutdown():
    w = Ward().start()
    try:
        c = w.client()
        c.call("instance.run", {"name": "victim", "argv": payload("hang")})
        pid = c.call("instance.status", {"name": "victim"})["pid"]
        out = ok("shutdown", sock=w.sock)
        assert out == "wardd is shutting down\n", out
        assert w.proc.wait(timeout=TIMEOUT) == 0, w.read_log()
        assert not os.path.exists("/proc/%d" % pid), "victim survived"
        p = refused(3, "status", sock=w.sock)
        assert "(is wardd running?)" in p.stderr, p.stderr
    finally:
        w.stop()


# ---- the interactive shell -------------------------------------------------

class Tmux:
    """A private tmux server (its socket in dir) running one session."""

    def __init__(self, dir):
        self.server = os.path.join(dir, "tmux.sock")
        self.session = "wardctl"

    def tmux(self, *args, check=True):
        p = subprocess.run(["tmux", "-S", self.server] + list(args),
                           capture_output=True, text=True, timeout=TIMEOUT)
        if check:
            assert p.returncode == 0, (args, p.stderr)
        return p

    def start(self, command):
        self.tmux("new-session", "-d", "-s", self.session, "-x", "200",
                  "-y", "50", command)

    def screen(self, escapes=False):
        p = self.tmux("capture-pane", "-p", *(["-e"] if escapes else []),
                      "-t", self.session, check=False)
        return p.stdout if p.returncode == 0 else ""

    def wait(self, pred, what):
        """Wait until pred(screen) holds; return that screen."""
        def check():
            s = self.screen()
            return s if pred(s) else None
        try:
            return retry(check, what=what)
        except AssertionError as e:
            raise AssertionError("%s; the screen:\n%s" % (e, self.screen()))

    def keys(self, *keys):
        self.tmux("send-keys", "-t", self.session, *keys)

    def alive(self):
        return self.tmux("has-session", "-t", self.session,
                         check=False).returncode == 0

    def kill(self):
        self.tmux("kill-server", check=False)


def pane(t, fmt):
    """A tmux format of the pane: alternate_on, cursor_flag, ..."""
    return t.tmux("display-message", "-p", "-t", t.session,
                  "#{%s}" % fmt).stdout.strip()


def prompt_is(screen, prompt):
    """The screen's last non-empty line is the bare prompt."""
    lines = [l.rstrip() for l in screen.splitlines() if l.strip()]
    return bool(lines) and lines[-1] == prompt


def prompt_line(screen):
    """The last line holding the prompt."""
    lines = [l for l in screen.splitlines() if l.startswith("ward>")]
    return lines[-1].rstrip() if lines else None


def test_interactive_shell():
    w = Ward().start()
    home = tempfile.mkdtemp(dir=w.dir)
    t = Tmux(w.dir)
    try:
        c = w.client()
        c.call("instance.run", {"name": "webserver",
                                "argv": payload("notify", "READY=1", "hang")})
        retry(lambda: c.call("instance.status", {"name": "webserver"})
              ["payload_state"] == "ready", what="webserver ready")
        t.start("env -u NO_COLOR WARD_SOCKET=%s HOME=%s %s" % (
            w.sock, home, WARDCTL))
        s = t.wait(lambda s: prompt_line(s) == "ward>", "the ward> prompt")
        assert "wardd %s at %s" % (w.hello["version"], w.sock) in s, s

        t.keys("status", "Enter")
        s = t.wait(lambda s: s.count("ward>") == 2, "the status table")
        lines = s.splitlines()
        i = [k for k, l in enumerate(lines) if l.startswith("NAME")][0]
        assert lines[i].split() == HEADER, s
        row = lines[i + 1].split()
        assert row[0] == "webserver" and row[2] == "running", s
        assert row[3] == "ready", s
        # A tty gets colour: the header is bold, the state green.
        assert "\x1b[" in t.screen(escapes=True), "no colour on a tty"

        # Tab completes a command ("sta" alone is start or status) ...
        t.keys("stat", "Tab")
        t.wait(lambda s: prompt_line(s) == "ward> status", "status completed")
        # ... and lists the choices when there are several.
        t.keys("C-u", "sta", "Tab", "Tab")
        t.wait(lambda s: any(l.split() == ["start", "status"]
                             for l in s.splitlines()), "start and status listed")
        # ... and instance names after a command.
        t.keys("C-u", "status we", "Tab")
        t.wait(lambda s: prompt_line(s) == "ward> status webserver",
               "the name completed")
        t.keys("Enter")
        t.wait(lambda s: prompt_line(s) == "ward>" and
               len([l for l in s.splitlines()
                    if l.startswith("webserver ")]) == 2,
               "status webserver ran")

        t.keys("help stop", "Enter")
        s = t.wait(lambda s: "usage: stop [--timeout MS] NAME|ID ..." in s,
                   "help stop")
        t.keys("stop nosuch", "Enter")
        s = t.wait(lambda s: "nosuch" in s.split("stop nosuch", 1)[-1],
                   "the refusal")
        t.keys("quit", "Enter")
        retry(lambda: not t.alive(), what="the shell to quit")
        with open(os.path.join(home, ".wardctl_history")) as f:
            hist = f.read()
        assert "status" in hist, hist
        assert "help stop" in hist or "help\\040stop" in hist, hist
        # The shell refused nothing fatally: webserver still runs.
        assert c.call("instance.status", {"name": "webserver"})["state"] == \
            "running"
    finally:
        t.kill()
        w.stop()


def test_shell_help_and_history_across_runs():
    w = Ward().start()
    home = tempfile.mkdtemp(dir=w.dir)
    t = Tmux(w.dir)
    shell = "env -u NO_COLOR WARD_SOCKET=%s HOME=%s %s" % (w.sock, home,
                                                           WARDCTL)
    try:
        t.start(shell)
        t.wait(lambda s: prompt_line(s) == "ward>", "the ward> prompt")
        # Bare help: every command, one a line, then the prompt again.
        t.keys("help", "Enter")
        s = t.wait(lambda s: s.count("ward>") == 2, "help's list")
        lines = s.split("ward> help", 1)[1].splitlines()
        assert lines[1] == "commands (help COMMAND for its usage):", s
        listed = [l.split()[0] for l in lines[2:] if l.strip() and
                  not l.startswith("ward>")]
        assert listed == COMMANDS, s
        t.keys("info", "Enter")
        t.wait(lambda s: s.count("ward>") == 3 and "instances:" in s, "info")
        t.keys("quit", "Enter")
        retry(lambda: not t.alive(), what="the first shell to quit")
        # A second run: Up recalls the first one's lines, newest first, and
        # Enter runs what it recalled.
        t.start(shell)
        t.wait(lambda s: prompt_line(s) == "ward>", "the second prompt")
        t.keys("Up")
        t.wait(lambda s: prompt_line(s) == "ward> quit", "quit recalled")
        t.keys("Up")
        t.wait(lambda s: prompt_line(s) == "ward> info", "info recalled")
        t.keys("Enter")
        t.wait(lambda s: prompt_line(s) == "ward>" and "instances:" in s,
               "the recalled info ran")
        t.keys("quit", "Enter")
        retry(lambda: not t.alive(), what="the second shell to quit")
    finally:
        t.kill()
        w.stop()


def top_frame(screen):
    """The top view on screen: (summary line, {name: row words}), or None
    while the screen does not start with one."""
    lines = screen.splitlines()
    if len(lines) < 3 or not lines[0].startswith("wardd: ") or \
            lines[2].split() != ["NAME", "ID", "PID", "CPU%", "RSS", "UPTIME",
                                 "PAYLOAD"]:
        return None
    return lines[0], {l.split()[0]: l.split() for l in lines[3:] if l.strip()}


def test_top_full_screen():
    """top on a terminal: a full-screen view (the alternate screen) with a
    summary, a header and a row per running instance, redrawn each second
    with no key pressed; q leaves it with status 0, the terminal as it was
    (modes, cursor) and the shell's screen back."""
    w = Ward().start()
    t = Tmux(w.dir)
    sleep = ["/bin/sleep", "1000"]
    try:
        c = w.client()
        for n in ("alpha", "beta"):
            c.call("instance.run", {"name": n, "argv": sleep})
        t.start("env -u NO_COLOR PS1='$ ' sh")
        t.wait(lambda s: prompt_is(s, "$"), "the shell's prompt")
        stty = [os.path.join(w.dir, "stty.%s" % k) for k in ("before", "after")]
        t.keys("stty -g >%s; echo before-top" % stty[0], "Enter")
        t.wait(lambda s: "\nbefore-top\n" in s and prompt_is(s, "$"),
               "the marker")
        assert pane(t, "alternate_on") == "0"

        t.keys("%s --socket %s top" % (WARDCTL, w.sock), "Enter")
        s = t.wait(lambda s: (top_frame(s) or (0, {}))[1].keys() ==
                   {"alpha", "beta"}, "the first frame")
        head, rows = top_frame(s)
        assert head.startswith("wardd: 2 instances, 2 running, 0 died, "), s
        for n in ("alpha", "beta"):
            st = c.call("instance.status", {"name": n})
            assert rows[n][1:3] == [str(st["id"]), str(st["pid"])], (n, s)
            assert rows[n][-1] == "starting", (n, s)
        # Full screen: the view has a screen of its own, the shell's lines
        # are not under or around it, and the cursor is hidden.
        assert pane(t, "alternate_on") == "1", s
        assert "before-top" not in s and "$ " not in s, s
        assert pane(t, "cursor_flag") == "0", s

        # It refreshes by itself: a new instance appears, a dead one goes.
        c.call("instance.run", {"name": "gamma", "argv": sleep})
        s = t.wait(lambda s: (top_frame(s) or (0, {}))[1].keys() ==
                   {"alpha", "beta", "gamma"}, "gamma on screen")
        assert top_frame(s)[0].startswith("wardd: 3 instances, 3 running, "), s
        c.call("instance.kill", {"name": "alpha"})
        wait_dead(c, "alpha")
        c.call("instance.remove", {"name": "alpha"})
        s = t.wait(lambda s: (top_frame(s) or (0, {}))[1].keys() ==
                   {"beta", "gamma"} and top_frame(s)[0].startswith(
                       "wardd: 2 instances, 2 running, 1 died, "),
                   "alpha gone from the screen")
        assert_aligned("\n".join(s.splitlines()[2:]),
                       right={"ID", "PID", "CPU%", "RSS", "UPTIME"})

        t.keys("q")
        s = t.wait(lambda s: prompt_is(s, "$") and "before-top" in s,
                   "the shell's screen back")
        assert pane(t, "alternate_on") == "0", s
        assert pane(t, "cursor_flag") == "1", s
        assert "wardd: " not in s and "NAME" not in s, \
            "top left its frame on the shell's screen:\n" + s
        t.keys("echo top-exit=$?; stty -g >%s" % stty[1], "Enter")
        s = t.wait(lambda s: "\ntop-exit=" in s and prompt_is(s, "$"),
                   "top's exit status")
        assert "\ntop-exit=0\n" in s, s
        # The terminal's modes are what they were (echo, canonical input).
        with open(stty[0]) as f0, open(stty[1]) as f1:
            assert f0.read() == f1.read(), "top left the terminal's modes " \
                "changed"
        # ^C ends it the same way.
        t.keys("clear; %s --socket %s top" % (WARDCTL, w.sock), "Enter")
        t.wait(lambda s: top_frame(s) is not None, "top again")
        t.keys("C-c")
        t.wait(lambda s: prompt_is(s, "$") and pane(t, "alternate_on") == "0",
               "the shell after ^C")
        t.keys("echo top-exit=$?", "Enter")
        s = t.wait(lambda s: "\ntop-exit=" in s and prompt_is(s, "$"),
                   "top's exit status after ^C")
        assert "\ntop-exit=0\n" in s and "wardd: " not in s, s
        assert pane(t, "cursor_flag") == "1", s
        # wardd going away ends it with status 3, its message printed on
        # the shell's screen, not on the view's that is thrown away.
        t.keys("clear; %s --socket %s top; echo top-exit=$?" % (
            WARDCTL, w.sock), "Enter")
        t.wait(lambda s: top_frame(s) is not None, "top once more")
        w.proc.kill()
        w.proc.wait()
        s = t.wait(lambda s: "\ntop-exit=" in s and prompt_is(s, "$"),
                   "top's exit status after wardd died")
        lines = s.splitlines()
        k = lines.index("top-exit=3")
        assert lines[k - 1] == "wardctl: wardd closed the connection" or \
            lines[k - 1].startswith("wardctl: lost the connection to wardd "
                                    "at %s: " % w.sock), s
        assert pane(t, "alternate_on") == "0", s
    finally:
        t.kill()
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
