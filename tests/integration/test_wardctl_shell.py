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
    home = tempfile.mkdtemp()
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


def test_ctrl_c_cancels_line_and_events(w):
    home = tempfile.mkdtemp()
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
        name = uniq("ev")
        c.call("instance.run", {"name": name, "argv": ["true"]})
        s.expect(name, "the event of " + name)
        s.send("\x03")
        s.expect("ward> ", "the prompt after ^C in events")
        assert s.alive(), s.tail()
        s.command("status " + name, name)
        # A second ^C at an empty prompt: still there.
        s.send("\x03")
        s.expect("ward> ")
        s.command("help", "commands")
        assert s.alive()
    finally:
        s.close()


def test_history_file(w):
    home = tempfile.mkdtemp()
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
    home = tempfile.mkdtemp()
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


if __name__ == "__main__":
    run(globals())
