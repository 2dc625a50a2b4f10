"""wardtest: what every integration test shares.

Starts the real wardd on a private socket in a temp dir, waits until it
answers ward.hello (a bounded retry, never a fixed sleep), and talks to it
as a msgpack-RPC client. Tests are functions named test_*; run() executes
them in order and prints TAP, which automake's tap-driver counts.
"""
import inspect
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import msgpack

BUILDDIR = os.environ.get("WARD_BUILDDIR", os.getcwd())
SRCDIR = os.environ.get("WARD_SRCDIR", BUILDDIR)
WARDD = os.path.join(BUILDDIR, "src", "wardd")
WARDCTL = os.path.join(BUILDDIR, "client", "wardctl")
PAYLOAD = os.path.join(BUILDDIR, "tests", "payload")
TIMEOUT = float(os.environ.get("WARD_TEST_TIMEOUT", "20"))


class WardError(Exception):
    def __init__(self, err):
        self.code = err.get("code") if isinstance(err, dict) else None
        self.message = err.get("message") if isinstance(err, dict) else str(err)
        super().__init__("%s: %s" % (self.code, self.message))


class Skip(Exception):
    """Raised by a test whose precondition this machine lacks (no cgroups,
    not root, no unshare): reported as TAP "# SKIP", never as a pass."""


def retry(pred, timeout=TIMEOUT, what="condition"):
    """Poll pred() until it returns a true value, for at most timeout s."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def wait_listening(path, timeout=TIMEOUT):
    """Wait until a UNIX socket at path takes connections. It exists from
    bind on but is connectable only from listen on, so waiting for the
    path alone races (ECONNREFUSED)."""
    def probe():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()
    retry(probe, timeout, what="%s to take connections" % path)


class Client:
    """A msgpack-RPC client on wardd's socket."""

    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.msgid = 0
        self.notifications = []
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _next(self, timeout=None):
        """The next message, or None at EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for msg in self.unpacker:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no message from wardd")
            self.sock.settimeout(left)
            data = self._recv()
            if not data:
                return None
            self.unpacker.feed(data)

    def _recv(self):
        return self.sock.recv(1 << 16)

    def request(self, method, params=None, method_bin=False):
        self.msgid += 1
        m = method.encode() if method_bin else method
        args = [] if params is None else [params]
        self.sock.sendall(msgpack.packb([0, self.msgid, m, args],
                                        use_bin_type=True))
        return self.msgid

    def response(self, msgid):
        while True:
            msg = self._next()
            if msg is None:
                raise ConnectionError("wardd closed the connection")
            if msg[0] == 2:
                self.notifications.append(msg)
                continue
            assert msg[0] == 1 and msg[1] == msgid, msg
            return msg[2], msg[3]

    def call(self, method, params=None, **kw):
        err, result = self.response(self.request(method, params, **kw))
        if err is not None:
            raise WardError(err)
        return result

    def error(self, method, params=None):
        """Call a method that must fail; return the error map."""
        err, result = self.response(self.request(method, params))
        assert err is not None, "%s %r succeeded: %r" % (method, params, result)
        assert set(err) == {"code", "message"}, err
        return err

    def notification(self, timeout=None):
        if self.notifications:
            return self.notifications.pop(0)
        msg = self._next(timeout)
        return msg

    def event(self, pred=lambda e: True, timeout=None):
        """The next ward.event matching pred (others are skipped)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching event")
            msg = self.notification(left)
            if msg is None:
                raise ConnectionError("wardd closed the connection")
            if msg[0] == 2 and msg[1] == "ward.event" and pred(msg[2][0]):
                return msg[2][0]


class Ward:
    """A private wardd: its own socket, state dir and log."""

    def __init__(self, args=(), env=None, popen=None):
        self.dir = tempfile.mkdtemp(prefix="ward-test-")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "ward.sock")
        self.state = os.path.join(self.dir, "state")
        self.logpath = os.path.join(self.dir, "wardd.log")
        self.extra = list(args)
        self.env = env
        self.popen = popen or {}	# more subprocess.Popen arguments
        self.proc = None
        self.clients = []

    started = []

    def start(self):
        Ward.started.append(self)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [WARDD, "--socket", self.sock, "--state-dir", self.state,
             "--log-level", "debug"] + self.extra,
            stdout=self.log, stderr=self.log, env=self.env, **self.popen)
        self.wait_ready()
        return self

    def wait_ready(self):
        def hello():
            if self.proc.poll() is not None:
                raise AssertionError("wardd exited with %s:\n%s" % (
                    self.proc.returncode, self.read_log()))
            try:
                c = Client(self.sock, timeout=2)
            except OSError:
                return None
            try:
                return c.call("ward.hello")
            finally:
                c.close()
        self.hello = retry(hello, what="wardd to answer ward.hello")

    def restart(self):
        """Start a new wardd on the same socket and state dir (self.dir
        stays): after the caller stopped or killed the last one."""
        for c in self.clients:
            c.close()
        self.clients = []
        self.log.close()
        if self in Ward.started:
            Ward.started.remove(self)
        return self.start()

    def client(self):
        c = Client(self.sock)
        self.clients.append(c)
        return c

    def shared_out(self):
        """A directory under the test's dir that payloads running as any
        user (nobody among them) write their reports to: self.out."""
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)
        os.chmod(self.out, 0o777)
        return self.out

    def cgroups_in_use(self):
        """Whether this machine gives wardd cgroups (it says once if not);
        printed as a TAP comment so a skip's reason shows in the log."""
        self.cgroups = "not using cgroups" not in self.read_log()
        print("# cgroups %s" % ("in use" if self.cgroups else
                                "not usable here"), flush=True)
        return self.cgroups

    def read_log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self in Ward.started:
            Ward.started.remove(self)
        for c in self.clients:
            c.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class FakeWardd:
    """Answers each request from a table of results (a value, or a function
    of the params; a WardError is sent as the error), on its own socket:
    three days of uptime, a gigabyte of RSS or an older wardd cannot be
    produced on demand, but what the clients make of them must be seen."""

    def __init__(self, path, answers):
        self.answers = answers
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                u = msgpack.Unpacker(raw=False)
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    u.feed(data)
                    for _, msgid, method, params in u:
                        res, err = self.answers[method], None
                        if callable(res):
                            res = res(params[0] if params else {})
                        if isinstance(res, WardError):
                            res, err = None, {"code": res.code,
                                            "message": res.message}
                        conn.sendall(msgpack.packb([1, msgid, err, res]))

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(TIMEOUT)


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, T, Z, ...), None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):	# ESRCH mid-read
        return None


def gone(pid):
    """pid has exited (a zombie counts: its parent has not reaped it yet)."""
    s = proc_state(pid)
    return s is None or s == "Z"


# What a script run as another uid (setpriv) starts with: a client on
# $WARD_SOCK and call helpers that turn an error into {"code", "message"}.
UID_PRELUDE = r'''
import json, sys, os
import wardtest
from wardtest import Client, WardError
c = Client(os.environ["WARD_SOCK"])

def attempt(method, params=None):
    try:
        return {"ok": c.call(method, params)}
    except WardError as e:
        return {"code": e.code, "message": e.message}

def done(out):
    print(json.dumps(out), flush=True)
'''

SETPRIV_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def nobody_popen(w, body, prefix=(), **kw):
    """Start body (after UID_PRELUDE) as uid 65534 on w's socket, under the
    command prefix (prlimit, nice, ...); stdin, stdout and stderr are pipes
    (the caller waits, e.g. with nobody_result)."""
    env = dict(os.environ, WARD_SOCK=w.sock,
               PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen(
        list(prefix) + SETPRIV_NOBODY +
        [sys.executable, "-c", UID_PRELUDE + body], env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        **kw)


def nobody_result(p, timeout=TIMEOUT):
    """Wait for a nobody_popen script; what it passed to done()."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("nobody script timed out:\n%s" %
                             err.decode(errors="replace"))
    assert p.returncode == 0, "nobody script failed (%d):\n%s" % (
        p.returncode, err.decode(errors="replace"))
    return json.loads(out.decode().splitlines()[-1])


def as_nobody(w, body, prefix=(), timeout=TIMEOUT):
    """Run body as uid 65534 (see nobody_popen); what it passed to done()."""
    return nobody_result(nobody_popen(w, body, prefix), timeout)


def trash_empty(w):
    """Whether w's trash.c has finished every tree (it holds directories
    open across loop turns while it removes one)."""
    return os.listdir(os.path.join(w.state, "trash")) == []


def fds_settled(w, c):
    """Whether w's wardd holds no fd only for a while: trash.c done (it
    holds directories open across loop turns) and no STATE_DIR/state write
    under way (snapshot.c holds state.tmp open across its slices)."""
    return trash_empty(w) and not c.call("ward.stats")["snapshot"]["pending"]


def wardd_fds(w):
    """{fd: what it links to} of w's wardd's fds (those that stay while read)."""
    d = "/proc/%d/fd" % w.proc.pid
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except FileNotFoundError:
            pass
    return out


def parse_journal(data):
    """systemd's native journal protocol: KEY=VALUE lines, or KEY\\n then a
    little-endian 64-bit length and the binary value."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode()
            i = nl + 1
        else:
            n = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            fields[line.decode()] = data[nl + 9:nl + 9 + n].decode()
            i = nl + 9 + n + 1
    return fields


_uniq = [0]


def programs_conf(n, run=None, back=None):
    """n [program:RUNk] that say READY=1 and hang, and n [program:BACKk]
    that exit 1 and then wait in a 10-minute backoff: config text."""
    out = []
    for k in range(n):
        if run:
            out.append("[program:%s%d]\ncommand = %s notify READY=1 hang\n"
                       "startsecs = 0\n" % (run, k, PAYLOAD))
        if back:
            out.append("[program:%s%d]\ncommand = %s exit 1\nstartsecs = 0\n"
                       "restart = always\nbackoff_initial_ms = 600000\n"
                       "backoff_max_ms = 600000\nmax_restarts = 1000\n"
                       % (back, k, PAYLOAD))
    return "".join(out)


def uniq(prefix="t"):
    """A name no other call in this test process returns: prefix + a count."""
    _uniq[0] += 1
    return "%s%d" % (prefix, _uniq[0])


def payload(*steps):
    return [PAYLOAD] + [str(s) for s in steps]


def wait_dead(client, ident, timeout=TIMEOUT):
    """Wait until the instance is no longer running; return its status."""
    key = "id" if isinstance(ident, int) else "name"

    def done():
        st = client.call("instance.status", {key: ident})
        return st if st["state"] in ("dead", "failed") else None
    return retry(done, timeout, what="instance %s to die" % ident)


def read_report(path):
    """Parse what `payload report FILE` wrote."""
    out = {"env": {}}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(":")
            v = v.strip()
            if k == "env":
                ek, _, ev = v.partition("=")
                out["env"][ek] = ev
            else:
                out[k] = v
    return out


def wait_file(path, timeout=TIMEOUT):
    return retry(lambda: os.path.exists(path) and os.path.getsize(path) > 0,
                 timeout, what=path)


def follow_raw(sockpath, target, raw=False, rcvbuf=4096):
    """A bare socket following stdout of target (a map with id or name)
    from now on, its answer read: (socket, msgpack.Unpacker) for the
    ward.log notifications, for tests of slow or fast followers. rcvbuf:
    its receive buffer (small: what is not read stays on wardd's side)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(sockpath)
    s.settimeout(TIMEOUT)
    params = dict(target, follow=True, bytes=0)
    s.sendall(msgpack.packb([0, 1, "instance.log", [params]]))
    u = msgpack.Unpacker(raw=raw)
    while True:
        data = s.recv(1 << 16)
        if not data:
            raise ConnectionError("wardd closed the follower")
        u.feed(data)
        m = next(u, None)
        if m is not None:
            break
    assert m[0] == 1 and m[2] is None, m
    return s, u


def run(module_globals):
    """Run every test_* function in definition order, printing TAP."""
    tests = [(n, f) for n, f in module_globals.items()
             if n.startswith("test_") and inspect.isfunction(f)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    setup = module_globals.get("setup_module")
    teardown = module_globals.get("teardown_module")
    print("1..%d" % len(tests), flush=True)
    failed = 0
    ctx = None
    try:
        if setup:
            try:
                ctx = setup()
            except Exception:
                for line in traceback.format_exc().splitlines():
                    print("# " + line, flush=True)
                for k, (name, fn) in enumerate(tests, 1):
                    print("not ok %d - %s # setup failed" % (k, name), flush=True)
                raise
        for k, (name, fn) in enumerate(tests, 1):
            t0 = time.monotonic()
            try:
                if inspect.signature(fn).parameters:
                    fn(ctx)
                else:
                    fn()
                print("ok %d - %s # %.0f ms" % (k, name,
                      (time.monotonic() - t0) * 1000), flush=True)
            except Skip as e:
                print("ok %d - %s # SKIP %s" % (k, name, e), flush=True)
            except Exception:
                failed += 1
                print("not ok %d - %s" % (k, name), flush=True)
                for line in traceback.format_exc().splitlines():
                    print("# " + line, flush=True)
                if isinstance(ctx, Ward):
                    for line in ctx.read_log().splitlines()[-15:]:
                        print("#   wardd: " + line, flush=True)
    except Exception:
        failed = len(tests)
    finally:
        if teardown:
            teardown(ctx)
        elif isinstance(ctx, Ward):
            ctx.stop()
        for w in Ward.started:
            w.stop()
    sys.exit(1 if failed else 0)
