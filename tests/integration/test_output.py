#!/usr/bin/python3
"""Captured stdout and stderr: capture_output, the ring instance.log reads,
following it (ward.log notifications), log files with rotation and
ward.logrotate / SIGUSR1, block and drop modes under a flood, grandchildren
writing after the death, the journal, who may set what, wardctl tail.

One wardd serves most tests; the journal test runs its own inside a private
mount namespace, as test_systemd.py does.
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import msgpack

import wardtest
from wardtest import TIMEOUT, Client, Ward, WardError, payload, retry, \
    wait_dead
from wardtest import uniq

WARDCTL = os.path.join(wardtest.BUILDDIR, "client", "wardctl")
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))
SH = "/bin/sh"

W = None
C = None


def setup_module():
    global W, C
    W = Ward().start()
    C = W.client()
    W.logs = os.path.join(W.dir, "logs")
    os.mkdir(W.logs)
    return W



def run(argv, **kw):
    name = kw.pop("name", None) or uniq('o')
    spec = {"name": name, "argv": argv, "capture_output": True}
    spec.update(kw)
    C.call("instance.run", spec)
    return name


def log(name, c=None, **kw):
    params = {"name": name}
    params.update(kw)
    return (c or C).call("instance.log", params)


def ring_has(name, text, stream="stdout"):
    return retry(lambda: text in log(name, stream=stream)["data"],
                 what="%r in %s's %s" % (text, name, stream))


def touch(path):
    with open(path, "w"):
        pass


def ctl(*args, timeout=TIMEOUT):
    env = dict(os.environ)
    env.pop("WARD_SOCKET", None)
    return subprocess.run([WARDCTL, "--socket", W.sock] + [str(a) for a in args],
                          env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


# ---- the ring ---------------------------------------------------------------

def test_ring_holds_stdout_and_stderr():
    a = run(payload("echo", "hello from a"))
    b = run([SH, "-c", "echo to-out; echo to-err >&2"])
    wait_dead(C, a)
    wait_dead(C, b)
    r = log(a)
    assert r == {"data": "hello from a\n", "dropped": 0, "stream": "stdout"}, r
    assert log(a, stream="stderr")["data"] == ""
    assert log(b)["data"] == "to-out\n"
    r = log(b, stream="stderr")
    assert r["data"] == "to-err\n" and r["stream"] == "stderr", r
    st = C.call("instance.status", {"name": a})
    assert st["capture_output"] is True and st["log_dropped"] == 0, st
    # Without capture_output nothing is captured, and instance.log says so.
    plain = uniq('o')
    C.call("instance.run", {"name": plain, "argv": payload("echo", "x")})
    wait_dead(C, plain)
    assert C.call("instance.status", {"name": plain})["capture_output"] is False
    assert C.error("instance.log", {"name": plain})["code"] == "invalid_state"


def test_redirect_stderr_is_one_stream_in_order():
    # supervisord's redirect_stderr: fd 2 is stdout's pipe, so the lines
    # come in one stream in the order they were written (a ring apart per
    # stream could not say which came first), across a second run too.
    script = "echo one; echo two >&2; echo three; echo four >&2"
    a = uniq("o")	# no capture_output: redirect_stderr implies it
    C.call("instance.run", {"name": a, "argv": [SH, "-c", script],
                            "redirect_stderr": True})
    wait_dead(C, a)
    assert log(a)["data"] == "one\ntwo\nthree\nfour\n", log(a)
    assert log(a, stream="stderr")["data"] == ""
    C.call("instance.start", {"name": a})
    retry(lambda: log(a)["data"].count("four") == 2, what="second run")
    assert log(a)["data"] == "one\ntwo\nthree\nfour\n" * 2
    # It implies capture; a stderr log file beside it has nothing to do.
    e = C.error("instance.create", {"name": uniq("o"), "argv": [SH],
                                    "redirect_stderr": True,
                                    "stderr_logfile": W.logs + "/x.log"})
    assert e["code"] == "invalid_argument" and "redirect_stderr" in \
        e["message"], e
    # wardctl's flag.
    b = uniq("o")
    r = ctl("run", b, "--redirect-stderr", "--", SH, "-c", "echo x >&2")
    assert r.returncode == 0, r
    retry(lambda: log(b)["data"] == "x\n", what="wardctl's stderr in stdout")


def test_bytes_limit_and_ring_size():
    a = run([SH, "-c", "printf abcdefghij"])
    wait_dead(C, a)
    assert log(a, bytes=4)["data"] == "ghij"
    assert log(a, bytes=0)["data"] == ""
    assert log(a, bytes=1000)["data"] == "abcdefghij"
    # A ring of 8 bytes keeps the last 8.
    b = run([SH, "-c", "printf 0123456789abcdefghij"], log_ring_bytes=8)
    wait_dead(C, b)
    assert log(b)["data"] == "cdefghij"
    # A ring of 0 keeps nothing, but the stream is still captured.
    z = run(payload("echo", "gone"), log_ring_bytes=0)
    wait_dead(C, z)
    assert log(z)["data"] == ""
    # UTF-8 cut by the byte limit is not half sent; bad bytes are replaced.
    u = run([SH, "-c", r"printf 'x\303\251\377'"])
    wait_dead(C, u)
    assert log(u)["data"] == "x\u00e9\ufffd"
    assert log(u, bytes=2)["data"] == "\ufffd"


def test_restart_appends_to_the_ring():
    a = run(payload("echo", "run"))
    wait_dead(C, a)
    C.call("instance.start", {"name": a})
    wait_dead(C, a)
    retry(lambda: log(a)["data"] == "run\nrun\n", what="both runs in the ring")


def test_bad_log_keys():
    def bad(code, **kw):
        spec = {"name": uniq('o'), "argv": payload("exit", 0)}
        spec.update(kw)
        e = C.error("instance.create", spec)
        assert e["code"] == code, (kw, e)
        return e["message"]
    bad("invalid_argument", capture_output=True, log_ring_bytes=16 * 1024 * 1024 + 1)
    bad("invalid_argument", capture_output=True, log_overflow="sometimes")
    bad("invalid_argument", capture_output=True, log_rate_lines=0)
    bad("invalid_argument", capture_output=True, logfile_backups=1001)
    m = bad("invalid_argument", log_ring_bytes=100)
    assert "capture_output" in m, m
    bad("invalid_argument", capture_output=False, stdout_logfile="/tmp/x.log")
    bad("invalid_argument", stdout_logfile="relative.log")
    bad("invalid_argument", stdout_logfile="/nonexistent-dir/x.log")
    bad("invalid_argument", stderr_logfile="/tmp/")
    a = run(payload("exit", 0))
    e = C.error("instance.log", {"name": a, "stream": "stdin"})
    assert e["code"] == "invalid_argument", e


def test_passed_stdout_wins_over_capture():
    r, w = os.pipe()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(W.sock)
    name = uniq('o')
    req = msgpack.packb([0, 1, "instance.run", [{
        "name": name, "capture_output": True, "stdout": 0,
        "argv": [SH, "-c", "echo passed; echo captured >&2"]}]])
    socket.send_fds(s, [req], [w])
    os.close(w)
    u = msgpack.Unpacker(raw=False)
    while True:
        u.feed(s.recv(65536))
        msgs = list(u)
        if msgs:
            break
    assert msgs[0][2] is None, msgs
    s.close()
    wait_dead(C, name)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"passed\n"
    assert log(name)["data"] == ""
    assert log(name, stream="stderr")["data"] == "captured\n"


# ---- following --------------------------------------------------------------

def log_notes(c, want, timeout=TIMEOUT):
    """ward.log notifications until their data holds want (a payload's
    write may come in pieces); their maps."""
    notes, data = [], ""
    deadline = time.monotonic() + timeout
    while want not in data:
        msg = c.notification(max(deadline - time.monotonic(), 0.001))
        assert msg is not None and msg[0] == 2 and msg[1] == "ward.log", msg
        notes.append(msg[2][0])
        data += msg[2][0]["data"]
    assert data == want, (data, want)
    return notes


def test_follow_delivers_new_output_live():
    go1, go2 = os.path.join(W.dir, uniq("go")), os.path.join(W.dir, uniq("go"))
    a = run(payload("echo", "one", "wait-file", go1, "echo", "two",
                    "wait-file", go2, "echo", "three", "hang"))
    ring_has(a, "one\n")
    f = W.client()
    r = log(a, c=f, follow=True)
    assert r["data"] == "one\n", r
    touch(go1)
    for n in log_notes(f, "two\n"):
        assert set(n) == {"id", "name", "stream", "data"}, n
        assert n["name"] == a and n["stream"] == "stdout", n
    # follow: false stops it; the output still reaches the ring.
    log(a, c=f, follow=False, bytes=0)
    touch(go2)
    ring_has(a, "three\n")
    f.call("ward.hello")
    assert not [m for m in f.notifications if m[1] == "ward.log"], f.notifications
    C.call("instance.kill", {"name": a})
    wait_dead(C, a)


def test_follow_ends_with_removal_and_disconnect():
    go = os.path.join(W.dir, uniq("go"))
    a = run(payload("wait-file", go, "echo", "late", "hang"))
    f = W.client()
    g = W.client()
    log(a, c=f, follow=True)
    log(a, c=g, follow=True, stream="stderr")
    g.close()                       # gone: wardd must forget it
    touch(go)
    log_notes(f, "late\n")
    C.call("instance.kill", {"name": a})
    wait_dead(C, a)
    C.call("instance.remove", {"name": a})
    f.call("ward.hello")             # wardd is fine; nothing more comes
    assert not [m for m in f.notifications if m[1] == "ward.log"]


def test_follower_that_does_not_read_is_dropped():
    a = run([SH, "-c", "yes 0123456789abcdef | head -c 5000000"])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(W.sock)
    s.sendall(msgpack.packb([0, 1, "instance.log",
                             [{"name": a, "follow": True, "bytes": 0}]]))
    # It reads nothing while 5 MB go by; wardd stays responsive.
    wait_dead(C, a, timeout=60)
    C.call("ward.hello")
    s.settimeout(TIMEOUT)
    u = msgpack.Unpacker(raw=False)
    last = None
    while True:
        data = s.recv(1 << 20)
        if not data:
            break
        u.feed(data)
        for m in u:
            last = m
    s.close()
    assert last[0] == 2 and last[1] == "ward.log", last
    assert last[2][0].get("overflow") is True, last


def test_slow_follower_with_hold_holds_a_block_mode_stream():
    """A follower with hold: true that pauses while 5 MB go by (longer than
    the payload needs to write them all) is waited for in block mode: the
    payload waits on its pipe, the follower gets every byte, nothing is
    dropped. Without hold it falls 1 MiB behind and is dropped, as the
    test above: a viewer never slows the payload unless it asks to."""
    text = "0123456789abcdef\n"
    go = os.path.join(W.dir, uniq("go"))
    a = run([SH, "-c", "wait_for() { while [ ! -e %s ]; do sleep 0.01; "
                       "done; }; wait_for; yes 0123456789abcdef | "
                       "head -c 5000000" % go])
    s, u = wardtest.follow_raw(W.sock, {"name": a, "hold": True})
    touch(go)
    # Paused, as a busy reader is, while the payload could write it all.
    time.sleep(0.3)
    assert C.call("instance.status", {"name": a})["state"] == "running"
    got = 0
    while got < 5000000:
        data = s.recv(1 << 20)
        assert data, "wardd closed the follower after %d bytes" % got
        u.feed(data)
        for m in u:
            assert m[1] == "ward.log" and "overflow" not in m[2][0], m
            assert set(m[2][0]["data"]) <= set(text), m
            got += len(m[2][0]["data"])
    assert got == 5000000, got
    wait_dead(C, a)
    s.close()


# ---- log files --------------------------------------------------------------

def test_logfiles_written_and_rotated():
    path = os.path.join(W.logs, uniq("rot") + ".log")
    # 1 MB through a 64 KiB pipe: many reads, so rotation must happen.
    a = run([SH, "-c", "seq 1 150000"], stdout_logfile=path,
            logfile_maxbytes=100000, logfile_backups=2)
    wait_dead(C, a)
    retry(lambda: log(a)["data"].endswith("\n150000\n"), what="the end")
    for p in (path, path + ".1", path + ".2"):
        assert os.path.exists(p), p
        assert os.stat(p).st_mode & 0o777 == 0o640, oct(os.stat(p).st_mode)
    assert not os.path.exists(path + ".3"), "more backups than asked for"
    # The three files are the end of the stream, in order.
    text = b""
    for p in (path + ".2", path + ".1", path):
        with open(p, "rb") as f:
            text += f.read()
    lines = text.decode().split("\n")
    assert lines[-1] == "", lines[-3:]
    nums = [int(x) for x in lines[1:-1]]      # the first may be cut
    assert nums[-1] == 150000 and nums[0] > 1, (nums[0], nums[-1])
    assert nums == list(range(nums[0], 150001)), "out of order"
    assert len(text) <= 3 * 100000 + 3 * 65536


def test_logfile_symlink_or_hard_link_refused():
    """wardd opens log files as root: a link planted at the path (by a
    payload's user who owns the log dir) must not redirect its writes."""
    victim = os.path.join(W.logs, uniq("victim"))
    with open(victim, "w") as f:
        f.write("precious\n")
    for kind in ("symlink", "hardlink"):
        path = os.path.join(W.logs, uniq(kind) + ".log")
        (os.symlink if kind == "symlink" else os.link)(victim, path)
        name = uniq('o')
        try:
            C.call("instance.run", {"name": name, "argv": [SH, "-c", "echo pwned"],
                                    "capture_output": True,
                                    "stdout_logfile": path})
            st = wait_dead(C, name)
            assert st["state"] == "failed", st
            msg = st["failure_reason"] or ""
        except WardError as e:
            msg = e.message
        assert path in msg, (kind, msg)
        with open(victim) as f:
            assert f.read() == "precious\n", kind


def test_logfile_shared_by_both_streams_and_stderr_file():
    both = os.path.join(W.logs, uniq("both") + ".log")
    a = run([SH, "-c", "echo out; echo err >&2"], stdout_logfile=both,
            stderr_logfile=both)
    err = os.path.join(W.logs, uniq("err") + ".log")
    b = run([SH, "-c", "echo out; echo err >&2"], stderr_logfile=err)
    wait_dead(C, a)
    wait_dead(C, b)
    with open(both) as f:
        assert sorted(f.read().splitlines()) == ["err", "out"]
    with open(err) as f:
        assert f.read() == "err\n"
    assert log(b)["data"] == "out\n"
    # A path that cannot be opened fails the spawn, saying why.
    d = os.path.join(W.logs, uniq("dir"))
    os.mkdir(d)
    e = C.error("instance.run", {"name": uniq('o'), "argv": payload("exit", 0),
                                 "stdout_logfile": d})
    assert e["code"] == "spawn_failed" and d in e["message"], e


def test_logrotate_and_sigusr1_reopen():
    path = os.path.join(W.logs, uniq("lr") + ".log")
    go1, go2 = os.path.join(W.dir, uniq("go")), os.path.join(W.dir, uniq("go"))
    a = run(payload("echo", "first", "wait-file", go1, "echo", "second",
                    "wait-file", go2, "echo", "third", "hang"),
            stdout_logfile=path)
    ring_has(a, "first\n")
    os.rename(path, path + ".old")
    r = C.call("ward.logrotate")
    assert r["ok"] is True and r["reopened"] >= 1 and r["failed"] == 0, r
    assert os.path.exists(path), "logrotate did not create a new file"
    touch(go1)
    ring_has(a, "second\n")
    # SIGUSR1 does the same.
    os.rename(path, path + ".older")
    W.proc.send_signal(signal.SIGUSR1)
    retry(lambda: os.path.exists(path), what="a new file after SIGUSR1")
    touch(go2)
    ring_has(a, "third\n")
    for p, want in ((path + ".old", "first\n"), (path + ".older", "second\n"),
                    (path, "third\n")):
        with open(p) as f:
            assert f.read() == want, p
    C.call("instance.kill", {"name": a})
    wait_dead(C, a)


# ---- backpressure -----------------------------------------------------------

def test_flood_in_block_mode_does_not_stall_wardd():
    a = run([SH, "-c", "yes | head -c 50000000"])
    h = W.client()
    worst, trips = 0.0, 0
    while C.call("instance.status", {"name": a})["state"] == "running":
        t0 = time.monotonic()
        h.call("ward.hello")
        worst = max(worst, time.monotonic() - t0)
        trips += 1
        if trips > 100000:
            break
    wait_dead(C, a, timeout=60)
    assert trips > 0
    assert worst < 2.0, "ward.hello took %.3f s during the flood" % worst
    st = C.call("instance.status", {"name": a})
    assert st["log_dropped"] == 0 and st["exit_code"] == 0, st
    data = log(a)["data"]
    assert len(data) == 65536 and data.endswith("y\n"), len(data)


def test_drop_mode_drops_whole_lines_and_counts_them():
    a = run([SH, "-c", "seq 1 100000"], log_overflow="drop", log_rate_lines=100)
    st = wait_dead(C, a)
    r = retry(lambda: (lambda r: r if r["dropped"] + len(
        r["data"].splitlines()) == 100000 else None)(log(a)),
        what="every line kept or dropped")
    assert r["dropped"] > 0, r
    kept = r["data"].splitlines()
    assert kept[:3] == ["1", "2", "3"], kept[:3]
    assert all(x.isdigit() for x in kept), "a line was cut"
    assert C.call("instance.status", {"name": a})["log_dropped"] == r["dropped"]


# ---- after the death --------------------------------------------------------

def test_grandchild_writes_after_the_death():
    go = os.path.join(W.dir, uniq("go"))
    script = '"$0" wait-file "$1" echo from-grandchild & echo from-child'
    a = run([SH, "-c", script, wardtest.PAYLOAD, go])
    st = wait_dead(C, a)
    assert st["exit_code"] == 0, st
    ring_has(a, "from-child\n")
    touch(go)
    ring_has(a, "from-grandchild\n")
    assert log(a)["data"] == "from-child\nfrom-grandchild\n"


# ---- who may set what -------------------------------------------------------

NOBODY_SCRIPT = r'''
import json, os
import wardtest
from wardtest import Client, WardError
c = Client(os.environ["WARD_SOCK"])
out = {}
def attempt(key, method, params=None):
    try:
        out[key] = {"ok": c.call(method, params)}
    except WardError as e:
        out[key] = {"code": e.code}
attempt("file", "instance.run", {"name": "nb1", "argv": ["/bin/true"],
                                 "stdout_logfile": "/tmp/nobody.log"})
attempt("errfile", "instance.run", {"name": "nb2", "argv": ["/bin/true"],
                                    "stderr_logfile": "/tmp/nobody.log"})
attempt("journal", "instance.run", {"name": "nb3", "argv": ["/bin/true"],
                                    "stdout_journal": True})
attempt("rotate", "ward.logrotate")
attempt("bigring", "instance.run", {"name": "nb5", "argv": ["/bin/true"],
                                    "capture_output": True,
                                    "log_ring_bytes": 1048577})
attempt("capture", "instance.run", {"name": "nb4", "capture_output": True,
                                    "argv": ["/bin/sh", "-c", "id -u"]})
wardtest.retry(lambda: c.call("instance.status", {"name": "nb4"})["state"] == "dead")
out["log"] = c.call("instance.log", {"name": "nb4"})["data"]
attempt("other", "instance.log", {"name": os.environ["ROOT_INSTANCE"]})
print(json.dumps(out), flush=True)
'''


def test_nobody_may_capture_but_not_set_files():
    mine = run(payload("echo", "root's"))
    wait_dead(C, mine)
    env = dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=W.sock,
               ROOT_INSTANCE=mine)
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--init-groups", sys.executable, "-c", NOBODY_SCRIPT],
                       env=env, capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = json.loads(p.stdout.decode().splitlines()[-1])
    for k in ("file", "errfile", "journal", "rotate", "bigring"):
        assert out[k] == {"code": "permission_denied"}, (k, out)
    # Another user's instance is not_found, as if it did not exist.
    assert out["other"] == {"code": "not_found"}, out
    assert "ok" in out["capture"], out
    assert out["log"] == "65534\n", out
    assert not os.path.exists("/tmp/nobody.log")


# ---- wardctl ----------------------------------------------------------------

def test_wardctl_tail():
    a = run([SH, "-c", "echo line1; echo line2; echo oops >&2"])
    wait_dead(C, a)
    p = ctl("tail", a)
    assert p.returncode == 0 and p.stdout == "line1\nline2\n", p
    p = ctl("tail", "-n", 6, a)
    assert p.stdout == "line2\n", p
    p = ctl("tail", a, "stderr")
    assert p.stdout == "oops\n", p
    p = ctl("--json", "tail", a)
    assert json.loads(p.stdout) == {"data": "line1\nline2\n", "dropped": 0,
                                    "stream": "stdout"}, p.stdout
    assert ctl("tail", a, "stdin").returncode == 2
    assert ctl("tail").returncode == 2
    p = ctl("tail", "nosuch-instance")
    assert p.returncode == 1 and "nosuch-instance" in p.stderr, p
    p = ctl("logrotate")
    assert p.returncode == 0 and p.stdout.startswith("log files reopened: "), p


def read_until(proc, want, timeout=TIMEOUT):
    """What proc prints until want is in it (a bounded select, no sleep)."""
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got:
        left = deadline - time.monotonic()
        r, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not r:
            raise AssertionError("wardctl printed %r, not %r" % (got, want))
        data = os.read(proc.stdout.fileno(), 65536)
        if not data:
            raise AssertionError("wardctl ended: %r %r" % (
                got, proc.stderr.read()))
        got += data
    return got


def test_wardctl_tail_follow():
    go = os.path.join(W.dir, uniq("go"))
    a = run(payload("echo", "before", "wait-file", go, "echo", "after", "hang"))
    ring_has(a, "before\n")
    env = dict(os.environ)
    env.pop("WARD_SOCKET", None)
    proc = subprocess.Popen([WARDCTL, "--socket", W.sock, "tail", "-f", a],
                            env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = read_until(proc, b"before\n")
        assert got == b"before\n", got
        touch(go)
        got += read_until(proc, b"after\n")
        assert got == b"before\nafter\n", got
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    C.call("instance.kill", {"name": a})
    wait_dead(C, a)


def test_wardctl_run_capture_options():
    out = os.path.join(W.logs, uniq("ctl") + ".log")
    name = uniq('o')
    p = subprocess.run([WARDCTL, "--socket", W.sock, "run", name,
                        "--stderr-log", os.path.relpath(out, W.dir), "--",
                        SH, "-c", "echo o; echo e >&2"], cwd=W.dir,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    wait_dead(C, name)
    with open(out) as f:
        assert f.read() == "e\n"
    assert log(name)["data"] == "o\n"
    name = uniq('o')
    p = subprocess.run([WARDCTL, "--socket", W.sock, "run", name, "--capture",
                        "--", SH, "-c", "echo captured"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    wait_dead(C, name)
    assert log(name)["data"] == "captured\n"


# ---- the journal ------------------------------------------------------------

parse_journal = wardtest.parse_journal


def test_stdout_journal():
    if shutil.which("unshare") is None or os.geteuid() != 0:
        raise wardtest.Skip("needs root and unshare")
    d = tempfile.mkdtemp(prefix="ward-out-jnl-")
    os.chmod(d, 0o755)
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind(os.path.join(d, "socket"))
    sock = os.path.join(d, "ward.sock")
    logf = open(os.path.join(d, "log"), "wb")
    script = ('mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal '
              '&& mount --bind "$0" /run/systemd/journal && exec "$@"')
    os.makedirs("/run/systemd", exist_ok=True)
    p = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", SH, "-c", script, d,
         wardtest.WARDD, "--socket", sock, "--state-dir",
         os.path.join(d, "state"), "--config-dir", os.path.join(d, "conf"),
         "--log-target", "stderr"], stdout=logf, stderr=logf)
    try:
        wardtest.wait_listening(sock)
        c = Client(sock)
        c.call("instance.run", {"name": "jr", "stdout_journal": True,
                                "argv": [SH, "-c", "echo out-line; "
                                         "printf 'err-line\\npartial' >&2"]})
        seen = {}
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < 3 and time.monotonic() < deadline:
            j.settimeout(max(0.01, deadline - time.monotonic()))
            f = parse_journal(j.recv(1 << 20))
            if f.get("SYSLOG_IDENTIFIER") == "jr":
                seen[f["MESSAGE"]] = f
        assert set(seen) == {"out-line", "err-line", "partial"}, seen
        o, e = seen["out-line"], seen["err-line"]
        assert o["PRIORITY"] == "6" and o["WARD_STREAM"] == "stdout", o
        assert e["PRIORITY"] == "3" and e["WARD_STREAM"] == "stderr", e
        assert o["WARD_INSTANCE_ID"] == "1" and o["WARD_INSTANCE_NAME"] == "jr"
        # The ring has it too.
        retry(lambda: c.call("instance.log", {"name": "jr"})["data"] ==
              "out-line\n", what="the ring")
        c.call("ward.shutdown")
        assert p.wait(timeout=TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        logf.close()
        j.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    wardtest.run(globals())
