#!/usr/bin/python3
"""wardctl's interactive shell under a pty, as a user types at it:
it reconnects after wardd restarts (and says so, and goes on, while wardd
is down), ^C cancels a half-typed line and ends a running events back to
the prompt, history is kept in ~/.wardctl_history (0600, bounded, read
back by the next shell, never through a symlink). Then `run`: every flag
it has reaches wardd as its spec key (seen in status, or by the payload
itself), and a bad value is reported with the flag's name, not the
protocol key's."""
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from wardtest import (TIMEOUT, WARDCTL, Ward, retry, run, uniq,  # noqa: E402
                      wait_dead)


class Shell:
    """wardctl with no command on a pty; all it wrote is kept."""

    def __init__(self, w, home):
        self.master, slave = os.openpty()
        env = dict(os.environ, HOME=home, WARD_SOCKET=w.sock, TERM="dumb",
                   NO_COLOR="1")
        self.proc = subprocess.Popen([WARDCTL, "--socket", w.sock],
                                     stdin=slave, stdout=slave, stderr=slave,
                                     env=env, start_new_session=True,
                                     preexec_fn=self._ctty(slave))
        os.close(slave)
        self.out = b""

    @staticmethod
    def _ctty(fd):
        def f():
            import fcntl
            import termios
            fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
        return f

    def read(self, timeout=0.05):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            self.out += data
            return data
        return None

    def expect(self, text, what=None):
        """Wait until the output (since mark) holds text; return it."""
        text = text.encode() if isinstance(text, str) else text

        def seen():
            self.read()
            return text in self.out[self.mark:]
        retry(seen, what="%s (%r) in:\n%s" % (what or "output", text,
                                               self.tail()))
        return self.out[self.mark:].decode(errors="replace")

    def tail(self):
        return self.out[-2000:].decode(errors="replace")

    def send(self, s):
        self.mark = len(self.out)
        os.write(self.master, s.encode())

    def command(self, line, want):
        """Type line; wait for want and then the next prompt after it."""
        self.send(line + "\r")
        out = self.expect(want, line)
        self.mark += self.out[self.mark:].index(want.encode()) + len(want)
        self.expect("ward> ", "the prompt after " + line)
        return out

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.alive():
            self.send("quit\r")
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self.master)


def shell(w, home):
    s = Shell(w, home)
    s.mark = 0
    s.expect("ward> ", "the first prompt")
    return s


def setup_module():
    return Ward().start()


def test_reconnects_after_restart(w):
    home = tempfile.mkdtemp(dir=w.dir)
    s = shell(w, home)
    try:
        c = w.client()
        name = uniq("sh")
        c.call("instance.run", {"name": name, "argv": ["sleep", "600"]})
        s.command("status " + name, "running")
        # wardd goes away: the command says so and the shell goes on.
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(TIMEOUT)
        out = s.command("status " + name, "not answering")
        assert s.alive(), out
        # It comes back (its instances are gone with it): the next
        # command reaches the new wardd without restarting wardctl.
        w.restart()
        c = w.client()
        c.call("instance.run", {"name": name, "argv": ["sleep", "600"]})
        out = s.command("status " + name, "running")
        assert "not answering" not in out, out
        # A restart while connected: the dead connection is dropped and
        # the next command runs on a new one.
        s.command("status " + name, "running")
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(TIMEOUT)
        w.restart()
        c = w.client()
        c.call("instance.run", {"name": name, "argv": ["sleep", "600"]})
        out = s.command("status " + name, "running")
        assert "not answering" not in out, out
        assert s.alive()
    finally:
        s.close()
        if w.proc.poll() is not None:
            w.restart()	# for the tests after this one


def test_ctrl_c_cancels_line_and_events(w):
    home = tempfile.mkdtemp(dir=w.dir)
    s = shell(w, home)
    try:
        # A half-typed line: ^C drops it, the shell stays and answers.
        s.send("status no-such-thing-typed-hal")
        s.expect("hal")
        s.send("\x03")
        s.expect("ward> ", "a fresh prompt after ^C")
        assert s.alive(), s.tail()
        out = s.command("help", "commands")
        assert "no-such-thing" not in out, out
        # events runs until ^C, which ends it back at the prompt.
        s.send("events\r")
        c = w.client()
        names = []

        def an_event():
            # events subscribes once it has read the line: until then,
            # an instance's events are not its; so one more each try.
            names.append(uniq("ev"))
            c.call("instance.run", {"name": names[-1], "argv": ["true"]})
            s.read(0.1)
            return any(n.encode() in s.out[s.mark:] for n in names)
        retry(an_event, what="an event in:\n" + s.tail())
        name = names[0]
        s.send("\x03")
        s.expect("ward> ", "the prompt after ^C in events")
        assert s.alive(), s.tail()
        s.command("status " + name, name)
        # tail -f and wait too: ^C ends them, the shell goes on.
        t = uniq("tail")
        c.call("instance.run", {"name": t, "capture_output": True, "argv": [
            "sh", "-c", "echo hello-tail; exec sleep 600"]})
        s.send("tail -f %s\r" % t)
        s.expect("hello-tail", "tail -f's output")
        s.send("\x03")
        s.expect("ward> ", "the prompt after ^C in tail -f")
        s.send("wait %s\r" % t)
        s.expect("wait %s\r\n" % t)
        # Until libedit gives the terminal back, a ^C is a byte it does
        # not read: so one each try until wait ends.
        mark = len(s.out)

        # A ^C while wait is still asking wardd for the pidfd ends it as
        # well, quietly (nothing is running yet to say "still running").
        def wait_ended():
            os.write(s.master, b"\x03")
            s.read(0.1)
            return b"still running" in s.out[mark:] or \
                b"ward> " in s.out[mark:]
        try:
            retry(wait_ended, what="wait ended by ^C")
        except AssertionError:
            raise AssertionError("wait not ended by ^C:\n" + s.out[
                mark - 200:mark + 800].decode(errors="replace"))
        assert b"wardctl:" not in s.out[mark:], s.out[mark:]
        s.mark = mark
        s.expect("ward> ")
        s.command("status " + t, "running")
        # A second ^C at an empty prompt: still there.
        s.send("\x03")
        s.expect("ward> ")
        s.command("help", "commands")
        assert s.alive()
    finally:
        s.close()


def test_history_file(w):
    home = tempfile.mkdtemp(dir=w.dir)
    hist = os.path.join(home, ".wardctl_history")
    s = shell(w, home)
    try:
        s.command("help run", "usage")
        s.command("help status", "usage")
    finally:
        s.close()
    st = os.stat(hist)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    with open(hist) as f:
        lines = f.read().splitlines()
    assert lines[-3:] == ["help run", "help status", "quit"], lines
    # The next shell reads it back: up-arrow twice gives "help run".
    s = shell(w, home)
    try:
        s.send("\x1b[A\x1b[A\x1b[A")
        s.expect("help run", "history's line on up-arrow (thrice)")
        s.send("\r")
        s.expect("usage: run", "the recalled command's output")
    finally:
        s.close()
    # Bounded: a file of 3000 lines is cut to the last 1000 on the next
    # write.
    with open(hist, "w") as f:
        f.write("".join("help x%d\n" % i for i in range(3000)))
    s = shell(w, home)
    try:
        s.command("help wait", "usage")
    finally:
        s.close()
    with open(hist) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1000 and lines[-2:] == ["help wait", "quit"], (
        len(lines), lines[-3:])
    assert lines[0] == "help x2002", lines[0]


def test_history_symlink_not_followed(w):
    home = tempfile.mkdtemp(dir=w.dir)
    target = os.path.join(home, "precious")
    with open(target, "w") as f:
        f.write("keep me\n")
    os.chmod(target, 0o644)
    os.symlink(target, os.path.join(home, ".wardctl_history"))
    s = shell(w, home)
    try:
        out = s.expect("not followed", "the shell saying it keeps none")
        s.command("help run", "usage")
        assert s.alive(), out
    finally:
        s.close()
    with open(target) as f:
        assert f.read() == "keep me\n"
    assert os.stat(target).st_mode & 0o777 == 0o644
    assert os.path.islink(os.path.join(home, ".wardctl_history"))


# ---- run: a flag for every spec key ---------------------------------------

def ctl(w, *args):
    return subprocess.run([WARDCTL, "--socket", w.sock] + list(args),
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT)


def status(w, name):
    p = ctl(w, "--json", "status", name)
    # 3: not running, as supervisorctl's status says
    assert p.returncode in (0, 3), p.stderr
    return json.loads(p.stdout)


def flags_of(args):
    return {a.split("=")[0] for a in args if a.startswith("--")}


USED = set()


def run_ok(w, name, args, argv):
    USED.update(flags_of(args))
    p = ctl(w, "run", name, *args, "--", *argv)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def test_run_flags_reach_the_spec(w):
    d = tempfile.mkdtemp(dir=w.dir)
    os.chmod(d, 0o755)
    f = {k: os.path.join(d, k) for k in ("in", "out", "fd7", "pre", "post")}
    with open(f["in"], "w") as fh:
        fh.write("hello-stdin\n")
    name = uniq("every")
    script = ('read l; echo "stdin=$l"; echo "env=$A_FLAG"; '
              'echo "cwd=$(pwd)"; echo "umask=$(umask)"; echo "nice=$(nice)"; '
              'echo "oom=$(cat /proc/self/oom_score_adj)"; '
              'echo "nofile=$(ulimit -n)"; echo "notify=$NOTIFY_SOCKET"; '
              'echo "path=$PATH"; echo "warn" >&2; echo fd7 >&7; '
              'echo done; exec sleep 600')
    args = ["--env", "A_FLAG=yes", "--clean-env", "--cwd", d,
            "--user", "root", "--group", "root", "--umask", "027",
            "--nice", "7", "--oom-score-adj", "500", "--rlimit",
            "nofile=777", "--detect-hangup", "--hangup-timeout=600000",
            "--rss-mapping", "heap", "--notify", "systemd",
            "--watchdog", "600000", "--control",
            "--stdin", f["in"], "--stdout", f["out"], "--stderr", f["out"],
            "--fd", "7=" + f["fd7"],
            "--pre-start", "echo pre > " + f["pre"],
            "--pre-start-timeout", "5000",
            "--post-death", 'echo "$WARD_DEATH_REASON" > ' + f["post"],
            "--post-death-timeout", "5000", "--sidecar", "sleep 600",
            "--sidecar", "sleep 601"]
    run_ok(w, name, args, ["sh", "-c", script])

    def payload_done():
        try:
            with open(f["out"]) as fh:
                t = fh.read()
        except FileNotFoundError:
            return None
        return t if "done" in t else None
    out = retry(payload_done, what="the payload's report")
    got = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert got["stdin"] == "hello-stdin", out
    assert got["env"] == "yes", out
    assert got["cwd"] == d, out
    assert got["umask"] in ("0027", "027"), out
    assert got["nice"] == "7", out
    assert got["oom"] == "500", out
    assert got["nofile"] == "777", out
    assert got["notify"] != "", out	# --notify systemd: NOTIFY_SOCKET set
    assert got["path"] == "/usr/local/bin:/usr/bin:/bin", out  # --clean-env
    assert "warn" in out, out	# --stderr
    with open(f["fd7"]) as fh:
        assert fh.read() == "fd7\n"
    with open(f["pre"]) as fh:
        assert fh.read() == "pre\n"
    st = status(w, name)
    assert st["state"] == "running", st
    assert st["detect_hangup"] is True and st["hangup_timeout_ms"] == 600000
    assert st["notify"] == "systemd" and st["watchdog_ms"] == 600000, st
    assert st["control"] is True, st
    long = ctl(w, "status", "-l", name)
    assert long.returncode == 0 and name in long.stdout, long
    p = ctl(w, "stop", name)
    assert p.returncode == 0, p.stderr
    retry(lambda: os.path.exists(f["post"]) and open(f["post"]).read(),
          what="the post-death hook")

    # The death reasons: --exit-code's, and --profile crosvm's table.
    for code, reason in ((3, "BOOM"), (33, "CRASH")):
        n = uniq("codes")
        run_ok(w, n, ["--exit-code", "3=BOOM", "--profile", "crosvm"],
               ["sh", "-c", "exit %d" % code])
        st = retry(lambda: (lambda s: s if s["state"] in ("dead", "failed")
                            else None)(status(w, n)), what=n + " to die")
        assert st["death_reason"] == reason, st


def test_run_output_flags(w):
    d = tempfile.mkdtemp(dir=w.dir)
    name = uniq("logs")
    args = ["--capture", "--stdout-log", os.path.join(d, "out.log"),
            "--stderr-log", os.path.join(d, "err.log"),
            "--log-ring-bytes", "4096", "--logfile-maxbytes", "100000",
            "--logfile-backups", "2", "--log-overflow", "drop",
            "--log-rate-lines", "100"]
    run_ok(w, name, args, ["sh", "-c",
                           "echo out-line; echo err-line >&2; exec sleep 600"])
    retry(lambda: os.path.exists(os.path.join(d, "err.log")) and
          "err-line" in open(os.path.join(d, "err.log")).read(),
          what="the stderr log")
    assert "out-line" in open(os.path.join(d, "out.log")).read()
    assert status(w, name)["capture_output"] is True
    p = ctl(w, "tail", name)
    assert "out-line" in p.stdout, (p.stdout, p.stderr)
    ctl(w, "stop", name)
    # --journal: taken by wardd (where there is no journald its lines are
    # counted as dropped, never a refusal).
    n = uniq("journal")
    run_ok(w, n, ["--journal"], ["sh", "-c", "echo to-journal"])
    # --redirect-stderr: stderr's line comes in stdout's tail, in order.
    n = uniq("merged")
    run_ok(w, n, ["--redirect-stderr"],
           ["sh", "-c", "echo a; echo b >&2; echo c; exec sleep 600"])
    retry(lambda: ctl(w, "tail", n).stdout == "a\nb\nc\n",
          what="stderr in stdout's tail")
    ctl(w, "stop", n)


LIMITS = {"--memory-max": ("memory_max", "64M"),
          "--memory-high": ("memory_high", "32M"),
          "--cpu-max": ("cpu_max", "50%"), "--cpu-weight": ("cpu_weight", "50"),
          "--io-weight": ("io_weight", "50"), "--pids-max": ("pids_max", "100"),
          "--cpus": ("cpus", "0"), "--limit": ("cpus", "cpus=0")}


def test_run_limit_flags(w):
    """Each limit flag is set where the machine's cgroup offers its
    controller, else refused in the flag's words."""
    for flag, (key, value) in LIMITS.items():
        USED.add(flag)
        n = uniq("lim")
        p = ctl(w, "run", n, flag, value, "--", "sleep", "600")
        if p.returncode == 0:
            assert status(w, n)["limits"][key] is not None, (flag, key)
            ctl(w, "stop", n)
        else:
            words = flag if flag != "--limit" else "--limit " + key
            assert p.stderr.startswith("wardctl: %s needs the cgroup" % words), \
                (flag, p.stderr)
            assert key + " " not in p.stderr, p.stderr


def test_every_run_flag_tested(w):
    """The flags of run's usage, each used by the tests above (run in
    order): a new row of ctl-run.c's table needs a test here."""
    usage = ctl(w, "help", "run").stdout
    flags = set(re.findall(r"\[(--[a-z-]+)", usage))
    assert len(flags) > 40, usage
    missing = flags - USED
    assert not missing, "run's flags no test used: %s" % sorted(missing)


def test_run_errors_name_the_flag(w):
    cases = [(["--hangup-timeout", "999999999999"],
              "--hangup-timeout: must be 1 to", "hangup_timeout_ms"),
             (["--nice", "40"], "--nice: must be -20 to 19", "'nice'"),
             (["--watchdog", "0"], "--watchdog: must be", "watchdog_ms"),
             (["--rlimit", "nofile=lots"], "--rlimit nofile", "rlimits"),
             (["--capture", "--log-overflow", "sometimes"], "--log-overflow",
              "log_overflow"),
             (["--oom-score-adj", "5000"], "--oom-score-adj: must be",
              "oom_score_adj"),
             (["--umask", "999"], "--umask: must be", "'umask'")]
    for args, want, never in cases:
        p = ctl(w, "run", uniq("bad"), *args, "--", "true")
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert want in p.stderr, (args, p.stderr)
        assert never not in p.stderr, (args, p.stderr)
    # Checked here, before wardd: a value that is no number.
    p = ctl(w, "run", "x", "--watchdog", "soon", "--", "true")
    assert p.returncode == 2 and "--watchdog takes a whole number" in \
        p.stderr, p.stderr
    p = ctl(w, "run", "x", "--no-such-flag", "--", "true")
    assert p.returncode == 2 and "--no-such-flag" in p.stderr, p.stderr
    # The other commands' keys: payload's STATE is its argument.
    n = uniq("pl")
    run_ok(w, n, [], ["sleep", "600"])
    p = ctl(w, "payload", n, "bogus")
    assert p.returncode == 1 and "STATE: must be" in p.stderr, p.stderr
    assert "'state'" not in p.stderr, p.stderr
    ctl(w, "stop", n)


if __name__ == "__main__":
    run(globals())
