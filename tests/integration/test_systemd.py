#!/usr/bin/python3
"""systemd integration, with systemd's own tools: socket activation,
sd_notify both ways, the instance watchdog, the journal, the units."""
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import wardtest
from wardtest import Client, Ward, payload, retry, wait_dead

TIMEOUT = wardtest.TIMEOUT


class Datagrams:
    """A datagram socket the test owns: systemd's or journald's stand-in."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)

    def recv(self, timeout=TIMEOUT):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise AssertionError("no datagram on %s" % self.path)
        return self.sock.recv(1 << 20)

    def until(self, pred, timeout=TIMEOUT):
        """Datagrams until one satisfies pred; returns (it, all seen)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("not seen; got %r" % seen[-10:])
            d = self.recv(left)
            seen.append(d)
            if pred(d):
                return d, seen

    def close(self):
        self.sock.close()


def wardd_cmd(d, *extra):
    return [wardtest.WARDD, "--state-dir", os.path.join(d, "state"),
            "--config-dir", os.path.join(d, "conf")] + list(extra)


# ---- socket activation

def test_socket_activation():
    d = tempfile.mkdtemp(prefix="ward-sa-")
    sock = os.path.join(d, "act.sock")
    log = open(os.path.join(d, "log"), "wb")
    p = subprocess.Popen(["systemd-socket-activate", "-l", sock] +
                         wardd_cmd(d), stdout=log, stderr=log)
    try:
        wardtest.wait_listening(sock)
        c = Client(sock)
        h = c.call("ward.hello")
        # The activator exec'd wardd in place: same pid.
        assert h["pid"] == p.pid, (h, p.pid)
        c.call("ward.shutdown")
        assert p.wait(timeout=TIMEOUT) == 0
        # wardd never unlinks a socket it did not bind.
        assert os.path.exists(sock), "the activator's path was removed"
        assert b"socket systemd passed" in open(os.path.join(d, "log"),
                                                "rb").read()
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def run_with_listen_fds(n, fd3):
    """wardd with LISTEN_PID/LISTEN_FDS set by hand; returns (rc, stderr)."""
    d = tempfile.mkdtemp(prefix="ward-lfd-")
    try:
        cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=%d exec "$@"' % n,
               "sh"] + wardd_cmd(d, "--socket", os.path.join(d, "s"))
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           pass_fds=[fd3] if fd3 is not None else [],
                           timeout=TIMEOUT,
                           preexec_fn=(lambda: os.dup2(fd3, 3)) if fd3 else None)
        return p.returncode, p.stderr.decode()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_socket_activation_refuses_wrong_sockets():
    f = open("/dev/null")
    rc, err = run_with_listen_fds(1, f.fileno())
    assert rc != 0 and "not a listening AF_UNIX stream socket" in err, err
    s1, s2 = socket.socketpair()
    rc, err = run_with_listen_fds(2, s1.fileno())
    assert rc != 0 and "expected exactly one socket, got 2" in err, err
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rc, err = run_with_listen_fds(1, u.fileno())
    assert rc != 0 and "not a listening AF_UNIX stream socket" in err, err
    for s in (f, s1, s2, u):
        s.close()


# ---- wardd's own sd_notify

def test_wardd_notifies_systemd():
    d = tempfile.mkdtemp(prefix="ward-nfy-")
    n = Datagrams(os.path.join(d, "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="200000")
    w = Ward(env=env)
    try:
        w.start()
        ready, _ = n.until(lambda m: b"READY=1" in m)
        status, _ = n.until(lambda m: m.startswith(b"STATUS="))
        assert status == b"STATUS=0 instances running", status
        c = w.client()
        c.call("instance.run", {"name": "x", "argv": payload("hang")})
        n.until(lambda m: m == b"STATUS=1 instance running")
        # The watchdog: pings at half of WATCHDOG_USEC (0.1 s), not at the
        # full period (0.2 s, which would let systemd's watchdog fire on any
        # late turn) nor faster. The median shrugs off one late wakeup.
        pings = []
        while len(pings) < 9:
            m = n.recv()
            if m == b"WATCHDOG=1":
                pings.append(time.monotonic())
        gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
        median = gaps[len(gaps) // 2]
        assert 0.06 < median < 0.15, gaps
        assert "systemd watchdog: pinging every 0.100 s" in w.read_log()
        # Reload: RELOADING=1, then READY=1 again.
        w.proc.send_signal(signal.SIGHUP)
        n.until(lambda m: m.startswith(b"RELOADING=1"))
        n.until(lambda m: m.startswith(b"READY=1"))
        # Stop: STOPPING=1, the instance stopped, exit 0.
        w.proc.send_signal(signal.SIGTERM)
        n.until(lambda m: m.startswith(b"STOPPING=1"))
        assert w.proc.wait(timeout=TIMEOUT) == 0
    finally:
        w.stop()
        n.close()
        shutil.rmtree(d, ignore_errors=True)


def test_status_updates_on_change_not_per_tick():
    d = tempfile.mkdtemp(prefix="ward-st-")
    n = Datagrams(os.path.join(d, "notify"))
    w = Ward(args=["--metrics-interval", "100"],
             env=dict(os.environ, NOTIFY_SOCKET=n.path))
    try:
        w.start()
        n.until(lambda m: m == b"STATUS=0 instances running")
        c = w.client()
        c.call("instance.run", {"name": "x", "argv": payload("hang")})
        n.until(lambda m: m == b"STATUS=1 instance running")
        # Ten metrics ticks later, nothing more was sent.
        t0 = c.call("ward.stats")["metrics_ticks"]
        retry(lambda: c.call("ward.stats")["metrics_ticks"] >= t0 + 10,
              what="ten ticks")
        # (The fd store's FDSTORE=1 messages are not STATUS=: fdstore.c.)
        while select.select([n.sock], [], [], 0)[0]:
            m = n.sock.recv(4096)
            assert b"STATUS=" not in m and b"WATCHDOG" not in m, m
    finally:
        w.stop()
        n.close()
        shutil.rmtree(d, ignore_errors=True)


def test_sighup_reloads_log_level():
    d = tempfile.mkdtemp(prefix="ward-hup-")
    conf = os.path.join(d, "conf")
    os.makedirs(conf)
    w = Ward()
    try:
        # Ward passes --log-level debug itself: that fixes the level, so
        # start this one without it.
        w.log = open(w.logpath, "ab")
        w.proc = subprocess.Popen(
            [wardtest.WARDD, "--socket", w.sock, "--state-dir", w.state,
             "--config-dir", conf], stdout=w.log, stderr=w.log)
        w.wait_ready()
        c = w.client()
        c.call("ward.hello")
        assert "client connected" not in w.read_log()
        with open(os.path.join(conf, "10-ward.conf"), "w") as f:
            f.write("[ward]\nlog_level = debug\n\n[ward]\nbogus = 1\n")
        w.proc.send_signal(signal.SIGHUP)
        retry(lambda: "reloaded" in w.read_log(), what="reload")
        log = w.read_log()
        assert "10-ward.conf:5: [ward] has no key 'bogus'" in log, log
        assert "log level 7" in log, log
        w.client().call("ward.hello")
        retry(lambda: "client connected" in w.read_log(), what="debug lines")
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


# ---- the supervised side

def test_payload_systemd_notify():
    with Ward() as w:
        c = w.client()
        c.call("instance.run", {
            "name": "sn", "notify": "systemd",
            "argv": ["/bin/sh", "-c", "systemd-notify --ready "
                     "--status='serving 42'; exec sleep 1000"]})
        st = retry(lambda: (lambda s: s if s["payload_state"] == "ready"
                            else None)(c.call("instance.status", {"name": "sn"})),
                   what="ready")
        assert st["status_text"] == "serving 42", st
        assert st["notify"] == "systemd" and st["sd_notify_dropped"] == 0, st
        # One NOTIFY_SOCKET for every instance (issue 12), in STATE_DIR.
        path = os.path.join(w.state, "notify")
        before = c.call("ward.stats")["channel"]["notify_dropped"]
        # Outsiders change nothing and are counted, as are bad datagrams.
        out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for d in (b"STATUS=evil", b"STOPPING=1", b"", b"STATUS=a\0b",
                  b"STATUS=" + b"x" * 5000):
            out.sendto(d, path)
        out.close()
        retry(lambda: c.call("ward.stats")["channel"]["notify_dropped"]
              == before + 5, what="5 dropped")
        st = c.call("instance.status", {"name": "sn"})
        assert st["status_text"] == "serving 42", st
        assert st["payload_state"] == "ready", st
        c.call("instance.stop", {"name": "sn"})
        wait_dead(c, "sn")


def test_payload_as_nobody_notifies():
    """A payload running as another user: the socket is its to send to, and
    the sender check places an unprivileged sender (which cannot claim its
    parent's pid as root's systemd-notify does) by its session."""
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root to run a payload as nobody")
    pw = pwd.getpwnam("nobody")
    user = "%d:%d" % (pw.pw_uid, pw.pw_gid)
    with Ward() as w:
        c = w.client()
        c.call("instance.run", {
            "name": "nb", "notify": "systemd", "user": user,
            "argv": ["/bin/sh", "-c", "systemd-notify --ready "
                     "--status=\"uid $(id -u)\"; exec sleep 1000"]})
        st = instance_when(c, "nb", lambda s: s["payload_state"] == "ready",
                           "nobody's systemd-notify")
        assert st["status_text"] == "uid %d" % pw.pw_uid, st
        assert st["sd_notify_dropped"] == 0, st
        # The payload's own process, as nobody, without a helper.
        c.call("instance.run", {"name": "nb2", "notify": "systemd",
                                "user": user, "argv": payload(
                                    "sdnotify", "READY=1\\nSTATUS=direct",
                                    "hang")})
        st = instance_when(c, "nb2", lambda s: s["payload_state"] == "ready",
                           "nobody's own datagram")
        assert st["status_text"] == "direct" and st["sd_notify_dropped"] == 0
        for n in ("nb", "nb2"):
            c.call("instance.stop", {"name": n})
            wait_dead(c, n)


def test_payload_stopping_and_errno():
    with Ward() as w:
        c = w.client()
        c.call("instance.run", {
            "name": "st", "notify": "systemd",
            "argv": ["/bin/sh", "-c",
                     "systemd-notify STOPPING=1 ERRNO=2; exit 3"]})
        st = wait_dead(c, "st")
        assert st["payload_state"] == "finished", st
        assert st["failure_info"] == "ERRNO=2 (No such file or directory)", st


def instance_when(c, name, pred, what):
    """The status of name once pred(status) holds (a bounded retry)."""
    return retry(lambda: (lambda s: s if pred(s) else None)(
        c.call("instance.status", {"name": name})), what=what)


def test_bad_datagrams_from_inside_are_dropped():
    """Sent by the instance's own process, so the sender check passes: only
    their shape can get them dropped. Each carries STOPPING=1 (a forward-only
    move past ready) or ERRNO=, so one wrongly believed would show."""
    with Ward() as w:
        c = w.client()
        go = os.path.join(w.dir, "go")
        c.call("instance.run", {"name": "bad", "notify": "systemd", "argv": payload(
            "sdnotify", "",                                  # empty
            "sdnotify", "STOPPING=1\\0",                     # NUL at the end
            "sdnotify", "ERRNO=5\\0STATUS=nul",              # NUL inside
            "sdnotifypad", 5000, "STOPPING=1\\nSTATUS=",     # oversized
            "sdnotifypad", 4097, "ERRNO=5\\nSTATUS=",        # one byte over
            "sdnotifypad", 70000, "STOPPING=1\\nSTATUS=",    # far over
            # Exactly the limit, then a small one: both believed.
            "sdnotifypad", 4096, "READY=1\\nSTATUS=max",
            "wait-file", go, "sdnotify", "STATUS=still here",
            "wait-file", go + "2", "exit", 0)})
        st = instance_when(c, "bad", lambda s: s["payload_state"] == "ready",
                           "ready")
        # Datagrams are read in order: all six were judged before READY=1.
        assert st["sd_notify_dropped"] == 6, st
        assert st["status_text"] == "max" + "x" * 253, st
        open(go, "w").close()
        st = instance_when(c, "bad", lambda s: s["status_text"] == "still here",
                           "the datagram after the bad ones")
        assert st["payload_state"] == "ready" and st["sd_notify_dropped"] == 6
        open(go + "2", "w").close()
        st = wait_dead(c, "bad")
        assert st["death_reason"] == "SHUTDOWN", st
        assert not st.get("failure_info"), st
        assert c.call("ward.hello")["pid"] == w.proc.pid


def test_notify_pipe_and_socket_together():
    """notify: "systemd" does not turn fd 4 off: both channels count."""
    with Ward() as w:
        c = w.client()
        go = os.path.join(w.dir, "go")
        c.call("instance.run", {"name": "both", "notify": "systemd",
                                "argv": payload(
            "sdnotify", "STATUS=via socket", "notify", "READY=1",
            "wait-file", go, "notify", "STATUS=via pipe",
            "sdnotify", "STOPPING=1", "hang")})
        st = instance_when(c, "both", lambda s: s["payload_state"] == "ready"
                           and s["status_text"] == "via socket",
                           "READY=1 on fd 4, STATUS= on the socket")
        open(go, "w").close()
        st = instance_when(c, "both", lambda s: s["payload_state"] == "finished"
                           and s["status_text"] == "via pipe",
                           "STATUS= on fd 4, STOPPING=1 on the socket")
        assert st["notify_dropped"] == 0 and st["sd_notify_dropped"] == 0, st
        c.call("instance.stop", {"name": "both"})
        wait_dead(c, "both")


def test_exit_status_and_errno_become_failure_info():
    with Ward() as w:
        c = w.client()

        def run(name, *steps):
            c.call("instance.run", {"name": name, "notify": "systemd",
                                    "argv": payload(*steps)})
        # The last of ERRNO= / EXIT_STATUS= is what the death says, even
        # when the payload exits right after sending it: twenty at once, so
        # deaths and datagrams arrive in the same loop turns.
        for k in range(20):
            run("es%d" % k, "sdnotify", "ERRNO=2", "sdnotify", "EXIT_STATUS=7",
                "exit", 7)
        for k in range(20):
            st = wait_dead(c, "es%d" % k)
            assert st["exit_code"] == 7, st
            assert st["failure_info"] == "EXIT_STATUS=7", st
        run("en", "sdnotify", "EXIT_STATUS=7", "sdnotify", "ERRNO=13", "exit", 1)
        st = wait_dead(c, "en")
        assert st["failure_info"] == "ERRNO=13 (Permission denied)", st
        # The failure pipe, when it speaks, wins over both.
        run("f3", "fail", "BOOM|from fd 3", "sdnotify", "EXIT_STATUS=9",
            "exit", 9)
        st = wait_dead(c, "f3")
        assert st["death_reason"] == "BOOM", st
        assert st["failure_info"] == "from fd 3", st
        # And the exit record in history says the same.
        h = c.call("instance.history", {"name": "es0"})
        assert h[-1]["failure_info"] == "EXIT_STATUS=7", h


def test_notify_socket_only_when_asked():
    with Ward() as w:
        c = w.client()
        out = os.path.join(w.dir, "rep")
        c.call("instance.run", {"name": "a", "argv": payload("report", out)})
        wait_dead(c, "a")
        assert "NOTIFY_SOCKET" not in wardtest.read_report(out)["env"]
        c.call("instance.run", {"name": "b", "notify": "systemd",
                                "watchdog_ms": 5000,
                                "argv": payload("report", out)})
        wait_dead(c, "b")
        env = wardtest.read_report(out)["env"]
        assert env["NOTIFY_SOCKET"].endswith("/notify"), env
        assert env["NOTIFY_SOCKET"].startswith(w.state), env
        err = c.error("instance.create", {"argv": ["true"], "notify": "dbus"})
        assert err["code"] == "invalid_argument", err
        err = c.error("instance.create", {"argv": ["true"], "watchdog_ms": 0})
        assert err["code"] == "invalid_argument", err


def test_instance_watchdog():
    with Ward() as w:
        c = w.client()
        # One pings on and on; the other three times, then goes quiet.
        # (Its period is 20 of its pings: a loaded machine, an ASan build,
        # may stall a ping loop for a few hundred ms.)
        c.call("instance.run", {
            "name": "alive", "notify": "systemd", "watchdog_ms": 1000,
            "argv": ["/bin/sh", "-c", "while :; do systemd-notify "
                     "WATCHDOG=1; sleep 0.05; done"]})
        c.call("instance.run", {
            "name": "wd", "notify": "systemd", "watchdog_ms": 300,
            "argv": ["/bin/sh", "-c", "for i in 1 2 3; do systemd-notify "
                     "WATCHDOG=1; sleep 0.1; done; exec sleep 1000"]})
        st = wait_dead(c, "wd")
        assert st["death_reason"] == "WATCHDOG", st
        assert st["exit_signal"] == 9, st
        # The quiet one's death took longer than the period: the pinging
        # one has outlived several periods.
        assert st["uptime_ms"] >= 300, st
        # The pinging one outlives three of its own periods.
        alive = retry(lambda: (lambda a: a if a["state"] != "running" or
                               a["uptime_ms"] >= 3000 else None)(
            c.call("instance.status", {"name": "alive"})),
            what="alive to outlive 3 periods")
        assert alive["state"] == "running", alive
        c.call("instance.stop", {"name": "alive"})
        assert wait_dead(c, "alive")["death_reason"] == "KILLED"
        # WATCHDOG=trigger on fd 4 kills at once.
        c.call("instance.run", {"name": "trig", "watchdog_ms": 60000,
                                "argv": payload("notify", "WATCHDOG=trigger",
                                                "hang")})
        assert wait_dead(c, "trig")["death_reason"] == "WATCHDOG"


# ---- the journal

parse_journal = wardtest.parse_journal


class JournalWardd:
    """wardd in a private mount namespace with our datagram socket at
    journald's path, its stdout and stderr on a file (self.log)."""

    def __init__(self, *args, stream_is_journal=False):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            raise wardtest.Skip("needs root and unshare")
        self.dir = tempfile.mkdtemp(prefix="ward-jnl-")
        os.chmod(self.dir, 0o755)
        self.journal = Datagrams(os.path.join(self.dir, "socket"))
        self.sock = os.path.join(self.dir, "ward.sock")
        self.logpath = os.path.join(self.dir, "log")
        self.log = open(self.logpath, "wb")
        env = dict(os.environ)
        if stream_is_journal:
            # As systemd says it of a service whose output is the journal.
            st = os.fstat(self.log.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        script = ('mount -t tmpfs tmpfs /run/systemd && '
                  'mkdir /run/systemd/journal && '
                  'mount --bind "$0" /run/systemd/journal && exec "$@"')
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh",
             "-c", script, self.dir] + wardd_cmd(self.dir, "--socket",
                                                 self.sock, *args),
            stdout=self.log, stderr=self.log, env=env)

    def client(self):
        """A client, once wardd has said it is ready (to the journal)."""
        own, _ = self.journal.until(lambda m: b"ready on" in m)
        f = parse_journal(own)
        assert f["PRIORITY"] == "5" and f["SYSLOG_IDENTIFIER"] == "wardd", f
        retry(lambda: os.path.exists(self.sock), what="socket")
        return Client(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.journal.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_journal_entries():
    with JournalWardd("--log-target", "journal") as jw:
        c = jw.client()
        c.call("instance.run", {"name": "web", "profile": "crosvm",
                                "argv": payload("fail", "CRASH|disk on fire",
                                                "exit", 33)})
        m, _ = jw.journal.until(lambda m: b"WARD_DEATH_REASON" in m)
        f = parse_journal(m)
        assert f["MESSAGE"].startswith("instance web (id 1) died: CRASH after"), f
        assert f["MESSAGE"].endswith(", exit code 33"), f
        assert f["WARD_INSTANCE_ID"] == "1" and f["WARD_INSTANCE_NAME"] == "web"
        assert f["WARD_DEATH_REASON"] == "CRASH" and f["WARD_EXIT_CODE"] == "33"
        assert f["WARD_FAILURE_INFO"] == "disk on fire", f
        assert f["PRIORITY"] == "3", f
        for k in ("WARD_UPTIME_MS", "WARD_CPU_USER_MS", "WARD_CPU_SYSTEM_MS",
                  "WARD_RSS_MAX_KB"):
            assert f[k].isdigit(), (k, f)
        assert f["WARD_OWNER_UID"] == "0", f
        # Issue 13: the run, and nobody killed it.
        assert f["WARD_RUN"] == "1" and f["WARD_KILLED_BY"] == "", f
        assert f["WARD_KILLED_BY_UID"] == "", f
        c.call("instance.run", {"name": "ok", "argv": payload("exit", 0)})
        m, _ = jw.journal.until(lambda m: b"WARD_INSTANCE_NAME=ok" in m)
        f = parse_journal(m)
        assert f["WARD_DEATH_REASON"] == "SHUTDOWN" and f["PRIORITY"] == "6", f
        c.call("instance.run", {"name": "sig", "argv": payload("hang")})
        c.call("instance.kill", {"name": "sig", "signal": "TERM"})
        m, _ = jw.journal.until(lambda m: b"WARD_INSTANCE_NAME=sig" in m)
        f = parse_journal(m)
        assert f["WARD_EXIT_SIGNAL"] == "SIGTERM" and "WARD_EXIT_CODE" not in f
        assert f["WARD_KILLED_BY"] == "kill", f
        assert f["WARD_KILLED_BY_UID"] == str(os.getuid()), f
        c.call("ward.shutdown")
        assert jw.proc.wait(timeout=TIMEOUT) == 0


def test_journal_stream_means_journal():
    """Auto mode: JOURNAL_STREAM naming our stderr sends wardd's lines to
    the journal natively, with priorities, and not down the stream."""
    with JournalWardd(stream_is_journal=True) as jw:
        jw.client().call("ward.shutdown")
        assert jw.proc.wait(timeout=TIMEOUT) == 0
        with open(jw.logpath, "rb") as f:
            out = f.read()
        assert b"ready on" not in out and b"<5>" not in out, out


def test_stderr_lines_carry_levels():
    """Not under journald (JOURNAL_STREAM names some other file): every line
    on stderr starts with its sd-daemon level, "<N>"."""
    d = tempfile.mkdtemp(prefix="ward-lvl-")
    conf = os.path.join(d, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "10-ward.conf"), "w") as f:
        f.write("[ward]\nbogus = 1\n")
    st = os.stat("/dev/null")
    w = Ward(args=["--config-dir", conf], env=dict(
        os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino)))
    try:
        w.start()
        w.client().call("ward.hello")
        retry(lambda: "client connected" in w.read_log(), what="a debug line")
        lines = w.read_log().splitlines()
        assert [l for l in lines if not re.match(r"<[3-7]>\S", l)] == [], lines

        def level(text):
            return [l[:3] for l in lines if text in l][0]
        assert level("ready on") == "<5>", lines
        assert level("has no key 'bogus'") == "<4>", lines
        assert level("client connected") == "<7>", lines
        # And an error, as the last thing a failed start-up says.
        s = socket.socket()
        rc, err = run_with_listen_fds(2, s.fileno())
        s.close()
        last = err.splitlines()[-1]
        assert rc == 1 and last.startswith("<3>socket activation:"), err
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


# ---- the units

def test_units_verify():
    d = tempfile.mkdtemp(prefix="ward-units-")
    try:
        src = os.path.join(wardtest.SRCDIR, "contrib")
        shutil.copy(os.path.join(src, "ward.socket"), d)
        with open(os.path.join(src, "ward.service.in")) as f:
            unit = f.read().replace("@sbindir@/wardd", wardtest.WARDD)
        with open(os.path.join(d, "ward.service"), "w") as f:
            f.write(unit)
        for key in ("Type=notify", "WatchdogSec=", "Delegate=yes",
                    "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=process",
                    "FileDescriptorStoreMax="):
            assert key in unit, key
        p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(d, "ward.socket"),
                            os.path.join(d, "ward.service")],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode()
        assert p.stderr.strip() == b"", p.stderr.decode()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    wardtest.run(globals())
