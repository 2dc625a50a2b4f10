#!/usr/bin/python3
"""Issue 14's features attacked by a local non-admin (uid 65534 through
setpriv) and by hostile payloads; each test is an attack that worked before
its fix.

- stdout_logfile=/dev/stdout: wardd dup'ed its own fd 1 and set O_NONBLOCK
  on the dup, but a dup shares the open file description, so wardd's own
  fd 1 and, when it is the same pipe or socket (2>&1, a container
  runtime's pipe, systemd's journal stream), its stderr turned
  non-blocking too: a payload (running as nobody) flooding that pipe made
  wardd's own log lines fail with EAGAIN and be lost. A pipe is now opened
  again through /proc/self/fd (a description of its own), a socket written
  with MSG_DONTWAIT; wardd's own fds stay as they were given.
- wardctl's shell history, run by root in a HOME another user controls
  (sudo keeps HOME): a ~/.wardctl_history that user made (mode 0666) was
  opened, truncated and chmod'ed 600 but stayed theirs, so root's lines
  were written into a file the user reads (and the user's lines loaded as
  root's history); a FIFO there hung the shell before its first prompt.
  The file is opened non-blocking and must be the shell user's own, of
  one link.
- [include] files=conf.d/*.conf, with conf.d root's but holding a link to
  a deploy user's file (supervisord's habit): that user wrote
  [program:x] user=root and wardd ran it as root. A config file (read
  directly or included) another user than root or wardd's may change,
  its owner or group- or world-writable, is now refused.
"""
import os
import subprocess
import tempfile
import textwrap
import threading

import wardtest
from wardtest import SETPRIV_NOBODY, Ward, retry
import test_wardctl_shell

O_NONBLOCK = 0o4000


def fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError("no flags for fd %d" % fd)


def test_dev_stdout_leaves_wardds_own_stderr_blocking():
    w = Ward()
    conf = os.path.join(w.dir, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent("""
            [supervisord]
            nodaemon = true
            [program:flood]
            command = /bin/sh -c 'echo flood-says-hello; exec sleep 1000'
            user = nobody
            stdout_logfile = /dev/stdout
            stdout_logfile_maxbytes = 0
            """))
    # wardd's stdout and stderr are one pipe (2>&1), read by a thread.
    r, wr = os.pipe()
    got = []

    def drain():
        while True:
            b = os.read(r, 65536)
            if not b:
                return
            got.append(b)
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    Ward.started.append(w)
    w.log = open(w.logpath, "ab")
    w.proc = subprocess.Popen(
        [wardtest.WARDD, "--socket", w.sock, "--state-dir", w.state,
         "--log-level", "debug", "--supervisord-conf", conf,
         "--config-dir", os.path.join(w.dir, "no-such-dir")],
        stdout=wr, stderr=wr)
    os.close(wr)
    try:
        w.wait_ready()
        retry(lambda: b"flood-says-hello" in b"".join(got),
              what="the payload's line on wardd's stdout")
        for fd in (1, 2):
            flags = fd_flags(w.proc.pid, fd)
            assert not flags & O_NONBLOCK, \
                "wardd's own fd %d made non-blocking (%o)" % (fd, flags)
    finally:
        w.stop()
        t.join(wardtest.TIMEOUT)
        os.close(r)


def nobody_sh(script):
    subprocess.run(SETPRIV_NOBODY + ["/bin/sh", "-c", script], check=True,
                   timeout=wardtest.TIMEOUT)


def nobodys_home(w):
    home = tempfile.mkdtemp(dir=w.dir)
    os.chown(home, 65534, 65534)
    os.chmod(home, 0o755)
    return home


def test_root_shell_keeps_no_history_in_a_users_file():
    with Ward() as w:
        home = nobodys_home(w)
        hist = os.path.join(home, ".wardctl_history")
        # nobody leaves a file of its own, readable, with a line in it.
        nobody_sh("echo 'help planted' > %s && chmod 666 %s" % (hist, hist))
        s = test_wardctl_shell.shell(w, home)
        try:
            s.command("help run", "usage")
        finally:
            s.close()
        # nobody reads its file: root's line must not be there.
        out = subprocess.run(SETPRIV_NOBODY + ["cat", hist],
                             capture_output=True, timeout=wardtest.TIMEOUT)
        assert b"help run" not in out.stdout, out
        assert os.stat(hist).st_uid == 65534
        assert "another user's file" in s.out.decode(errors="replace"), \
            s.tail()


def test_root_shell_not_hung_by_a_fifo_history():
    with Ward() as w:
        home = nobodys_home(w)
        hist = os.path.join(home, ".wardctl_history")
        nobody_sh("mkfifo -m 666 %s" % hist)
        s = test_wardctl_shell.shell(w, home)	# its first prompt
        try:
            s.command("help run", "usage")
        finally:
            s.close()


def test_included_file_of_another_user_not_read():
    w = Ward()
    out = w.shared_out()
    sv = os.path.join(w.dir, "sv")
    confd = os.path.join(sv, "conf.d")
    os.makedirs(confd)
    deploy = nobodys_home(w)
    evil = os.path.join(deploy, "app.conf")
    marker = os.path.join(out, "ran-as")
    # nobody writes its own file; root links it into conf.d.
    nobody_sh("printf '[program:evil]\\ncommand = /bin/sh -c \"id -u > %s; "
              "exec sleep 1000\"\\nuser = root\\n' > %s" % (marker, evil))
    os.symlink(evil, os.path.join(confd, "app.conf"))
    svconf = os.path.join(sv, "supervisord.conf")
    with open(svconf, "w") as f:
        f.write("[supervisord]\n[include]\nfiles = conf.d/*.conf\n"
                "[program:good]\ncommand = sleep 1000\n")
    w.extra += ["--supervisord-conf", svconf,
                "--config-dir", os.path.join(w.dir, "no-such-dir")]
    w.start()
    try:
        c = w.client()
        def names():
            r = c.call("instance.list")
            lst = r["instances"] if isinstance(r, dict) else r
            return [i["name"] for i in lst]
        retry(lambda: "good" in names(),
              what="the root-owned config's program")
        r = c.call("ward.reread")
        names = names()
        assert "evil" not in names, (names, open(marker).read()
                                     if os.path.exists(marker) else "")
        assert any("another user" in e for e in r["errors"]), r
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
