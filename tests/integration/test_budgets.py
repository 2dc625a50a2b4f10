#!/usr/bin/python3
"""Every non-admin uid has budgets (budget.c): connections, buffered bytes,
held fds and output ring bytes. Each test attacks as uid 65534 (nobody),
the way issue 9 found wardd could be turned against everyone, and checks
that the attack hits its own budget while root and other users are still
served.

Findings 3 (memory per connection), 5 (passed fds exhaust the fd table)
and 11 (ring bytes per uid) of issue 9.
"""
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time

import msgpack

import wardtest
from wardtest import TIMEOUT, Client, Ward, WardError, retry

NOBODY = 65534
OTHER = 61002           # another non-admin uid, with no passwd entry
MIB = 1024 * 1024
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))
SANITIZED = "address" in os.environ.get("WARD_SAN_CFLAGS", "")


def setup_module():
    if os.geteuid() != 0:
        return None     # each test skips
    w = Ward().start()
    w.root = w.client()
    w.pid = w.proc.pid
    return w


# ---- helpers ----------------------------------------------------------

def need_root(w=True):
    if w is None or os.geteuid() != 0:
        raise wardtest.Skip("needs root to act as uid 65534 (setpriv)")


def uid_argv(uid, code, *args):
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
            "--clear-groups", sys.executable, "-c", code] + list(args)


def uid_env(w):
    return dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=w.sock)


def as_uid(w, uid, body, timeout=TIMEOUT * 3):
    """Run UID_PRELUDE + body as uid; return the JSON it passed to done()."""
    p = subprocess.run(uid_argv(uid, wardtest.UID_PRELUDE + body),
                       env=uid_env(w), capture_output=True, timeout=timeout)
    assert p.returncode == 0, "uid %d script failed (%d):\n%s" % (
        uid, p.returncode, p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode().splitlines()[-1])


def stats(w):
    return w.root.call("ward.stats")


def budget(w, uid):
    """What uid holds, from ward.stats (as root, which sees every uid)."""
    for b in stats(w)["budgets"]:
        if b["uid"] == uid:
            return b
    return {"uid": uid, "conns": 0, "buffer_bytes": 0, "fds": 0,
            "ring_bytes": 0, "instances": 0}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def wardd_fds(w):
    return len(os.listdir("/proc/%d/fd" % w.pid))


def root_served(w):
    """root gets in on a new connection and runs something."""
    c = Client(w.sock)
    try:
        assert c.call("ward.hello")["admin"] is True
        r = c.call("instance.run", {"argv": wardtest.payload("hang")})
        assert r["state"] == "running" and r["pid"] > 0, r
        c.call("instance.kill", {"id": r["id"], "signal": "KILL"})
        wardtest.wait_dead(c, r["id"])
        c.call("instance.remove", {"id": r["id"]})
    finally:
        c.close()


def other_uid_served(w):
    out = as_uid(w, OTHER, 'done(c.call("ward.hello"))')
    assert out["uid"] == OTHER and out["admin"] is False, out


@contextlib.contextmanager
def fd_room(w, room):
    """wardd's soft fd limit set to what it holds now, with its reserve
    held, plus room; afterwards nobody's and OTHER's instances are removed
    and the limit is set back. Yields the number of fds it held."""
    other_uid_served(w)     # serving a non-admin: the reserve is held
    before = wardd_fds(w)
    nofile = resource.prlimit(w.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(w.pid, resource.RLIMIT_NOFILE,
                     (before + room, nofile[1]))
    try:
        yield before
    finally:
        remove_all_of(w, NOBODY)
        remove_all_of(w, OTHER)
        resource.prlimit(w.pid, resource.RLIMIT_NOFILE, nofile)


def remove_all_of(w, uid):
    for i in w.root.call("instance.list"):
        if i["owner_uid"] != uid:
            continue
        if i["state"] == "running":
            try:
                w.root.call("instance.kill", {"id": i["id"], "signal": "KILL"})
            except WardError as e:      # it ended since the list
                assert e.code == "invalid_state", e
            wardtest.wait_dead(w.root, i["id"])
        w.root.call("instance.remove", {"id": i["id"]})


# A pipelining client: argv sock, conns. Opens that many connections, says
# "ready N", then sends ward.hello requests on every one of them as fast
# as wardd takes them and never reads an answer. When its stdin closes it
# reads what each connection still holds and prints how many of them
# wardd had closed (EOF or reset) as JSON.
PIPELINER = r"""
import json, select, socket, sys
import msgpack
path, n = sys.argv[1], int(sys.argv[2])
one = msgpack.packb([0, 1, "ward.hello", []])
chunk = one * 4096
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.setblocking(False)
    socks.append(s)
print("ready", len(socks), flush=True)
pending = {s: b"" for s in socks}
dead = set()
while True:
    live = [s for s in socks if s not in dead]
    r, wr, _ = select.select([sys.stdin], live, [], 1.0)
    if sys.stdin in r:
        break
    for s in wr:
        data = pending[s] or chunk
        try:
            k = s.send(data)
        except BlockingIOError:
            continue
        except OSError:
            dead.add(s)
            continue
        pending[s] = data[k:]
closed = 0
for s in socks:
    s.settimeout(2)
    try:
        while s.recv(1 << 20):
            pass
        closed += 1
    except (ConnectionResetError, BrokenPipeError):
        closed += 1
    except socket.timeout:
        pass
print(json.dumps({"closed": closed}), flush=True)
"""


class Pipeliner:
    """PIPELINER run as uid with n connections; finish() returns its JSON."""

    def __init__(self, w, uid, n):
        self.p = subprocess.Popen(uid_argv(uid, PIPELINER, w.sock, str(n)),
                                  env=uid_env(w), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line == "ready %d\n" % n, (line, self.p.stderr.read())

    def finish(self):
        self.p.stdin.close()
        out = self.p.stdout.read()
        self.p.wait(timeout=TIMEOUT * 3)
        assert self.p.returncode == 0, self.p.stderr.read()
        return json.loads(out.splitlines()[-1])

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# ---- finding 3: memory per connection ---------------------------------

def test_setup_is_sane(w):
    need_root(w)
    s = stats(w)
    assert s["limits"] == {"max_user_conns": 64, "max_user_buffer": 64 * MIB,
                           "max_user_fds": 256, "max_user_ring": 64 * MIB,
                           "max_user_instances": 1000,
                           "fd_reserve": s["limits"]["fd_reserve"]}, s
    assert budget(w, NOBODY)["conns"] == 0


def test_pipelining_without_reading_is_bounded(w):
    """The original attack: nobody fills its 64 connections with requests
    and reads no answer. wardd stops reading them at its budget: its RSS
    stays within 64 MiB of where it was, and everyone else is served."""
    need_root(w)
    base = rss_kb(w.pid)
    atk = Pipeliner(w, NOBODY, 64)
    try:
        # The attack is on: nobody's connections hold most of its budget.
        retry(lambda: budget(w, NOBODY)["buffer_bytes"] >= 48 * MIB,
              timeout=TIMEOUT * 3, what="nobody's buffers to fill")
        peak = 0
        for _ in range(50):
            t0 = time.monotonic()
            assert w.root.call("ward.hello")["pid"] == w.pid
            assert time.monotonic() - t0 < 1.0, "root waited"
            b = budget(w, NOBODY)
            # Its budget, and one connection's growth past it at most.
            assert b["buffer_bytes"] <= 64 * MIB + 4 * MIB, b
            assert b["conns"] == 64, b
            peak = max(peak, rss_kb(w.pid))
        print("# wardd's RSS %d -> %d kB; nobody holds %r" % (
            base, peak, budget(w, NOBODY)), flush=True)
        if not SANITIZED:   # ASan keeps freed memory in quarantine
            assert peak - base < 64 * 1024, \
                "wardd's RSS grew from %d to %d kB" % (base, peak)
        root_served(w)
        other_uid_served(w)
    finally:
        atk.kill()
    retry(lambda: budget(w, NOBODY)["conns"] == 0,
          what="nobody's connections to be gone")
    assert budget(w, NOBODY)["buffer_bytes"] == 0


def test_client_that_never_reads_is_closed(w):
    """A client over its output budget is not read, and once nothing of
    its output has been taken for 10 s (CONN_STALL_S) it is closed."""
    need_root(w)
    atk = Pipeliner(w, NOBODY, 4)
    try:
        t0 = time.monotonic()
        retry(lambda: budget(w, NOBODY)["buffer_bytes"] >= 4 * MIB,
              what="the four connections to back up")
        # Never more than its output budget and one request each.
        assert budget(w, NOBODY)["buffer_bytes"] <= 4 * 4 * MIB
        retry(lambda: budget(w, NOBODY)["conns"] == 0, timeout=30,
              what="wardd to close the connections that never read")
        assert time.monotonic() - t0 >= 9, "closed before the 10 s stall"
        assert atk.finish() == {"closed": 4}
    finally:
        atk.kill()
    assert "does not read its answers for 10 s: closing" in w.read_log()
    assert budget(w, NOBODY)["buffer_bytes"] == 0
    root_served(w)


def test_never_ending_frame(w):
    """A frame whose every header is within the limits but which never
    ends: ward.error too_large once one maximal request (1 MiB) is
    buffered, then the connection is closed."""
    need_root(w)
    out = as_uid(w, NOBODY, r'''
import socket, msgpack
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["WARD_SOCK"])
s.settimeout(20)
# array32 of 65535 elements, each a bin16 of 60000 bytes: ~3.9 GB declared.
head = b"\x94\x00\x01\xaaward.hello\x91\xdd\x00\x00\xff\xff"
elem = b"\xc5\xea\x60" + b"x" * 60000
sent = 0
try:
    s.sendall(head)
    while sent < 16 * 1024 * 1024:
        s.sendall(elem)
        sent += len(elem)
except (BrokenPipeError, ConnectionResetError):
    pass
unp = msgpack.Unpacker(raw=False)
msgs = []
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        unp.feed(d)
        msgs.extend(unp)
except ConnectionResetError:
    pass
done({"sent": sent, "msgs": msgs})
''')
    assert out["sent"] < 16 * MIB, out["sent"]   # closed before the end
    msgs = out["msgs"]
    assert len(msgs) == 1, msgs
    assert msgs[0][:2] == [2, "ward.error"], msgs
    err = msgs[0][2][0]
    assert err["code"] == "too_large", err
    assert "over 1048576 bytes" in err["message"], err
    retry(lambda: budget(w, NOBODY)["conns"] == 0, what="it to be gone")
    root_served(w)


def test_connection_cap_per_uid(w):
    """A non-admin uid may hold 64 connections (--max-user-conns): the 65th
    is refused with busy; another uid and root still get in."""
    need_root(w)
    holder = subprocess.Popen(
        uid_argv(NOBODY, r'''
import sys, wardtest
cs = []
for _ in range(64):
    cs.append(wardtest.Client(sys.argv[1]))
    cs[-1].call("ward.hello")
print("ready", len(cs), flush=True)
sys.stdin.read()
''', w.sock), env=uid_env(w), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline()
        assert line == "ready 64\n", (line, holder.stderr.read())
        assert budget(w, NOBODY)["conns"] == 64
        out = as_uid(w, NOBODY, r'''
import socket, msgpack
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(os.environ["WARD_SOCK"])
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
done(msgpack.unpackb(data))
''')
        assert out[:2] == [2, "ward.error"], out
        assert out[2][0]["code"] == "busy", out
        assert "too many connections" in out[2][0]["message"], out
        assert "--max-user-conns" in out[2][0]["message"], out
        assert budget(w, NOBODY)["conns"] == 64
        other_uid_served(w)
        root_served(w)
    finally:
        holder.stdin.close()
        holder.wait(timeout=TIMEOUT)
    retry(lambda: budget(w, NOBODY)["conns"] == 0, what="the holder to go")


def test_uid_buffer_budget_across_connections():
    """--max-user-buffer bounds all of a uid's connections together: eight
    connections that would each hold over 2 MiB of unread answers hold
    8 MiB between them, and root is served meanwhile."""
    need_root()
    with Ward(args=["--max-user-buffer", "8M"]) as w2:
        w2.root = w2.client()
        w2.pid = w2.proc.pid
        assert stats(w2)["limits"]["max_user_buffer"] == 8 * MIB
        atk = Pipeliner(w2, NOBODY, 8)
        try:
            retry(lambda: budget(w2, NOBODY)["buffer_bytes"] >= 8 * MIB,
                  what="nobody's buffers to reach the budget")
            for _ in range(20):
                t0 = time.monotonic()
                assert w2.root.call("ward.hello")["pid"] == w2.pid
                assert time.monotonic() - t0 < 1.0, "root waited"
                b = budget(w2, NOBODY)
                # Eight times 2 MiB would be 16 MiB: the uid's budget
                # holds, give or take one connection's last growth.
                assert 8 * MIB <= b["buffer_bytes"] <= 8 * MIB + 3 * MIB, b
                assert b["conns"] == 8, b
            root_served(w2)
        finally:
            atk.kill()
        retry(lambda: budget(w2, NOBODY)["conns"] == 0,
              what="nobody's connections to be gone")
        # Under budget again: a new connection of nobody is served.
        out = as_uid(w2, NOBODY, 'done(c.call("ward.hello"))')
        assert out["uid"] == NOBODY, out


def test_error_messages_are_utf8(w):
    """Errors that quote what the client sent (a method, a key, a name) are
    valid UTF-8 even when that was not, or was cut inside a sequence."""
    need_root(w)
    out = as_uid(w, NOBODY, r'''
import socket, msgpack
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(os.environ["WARD_SOCK"])
def raw_str(b):
    return bytes([0xd9, len(b)]) + b
reqs = [
    # method: invalid bytes; str, and bin
    b"\x94\x00\x01" + raw_str(b"no\xff\xfemethod") + b"\x90",
    b"\x94\x00\x02\xc4\x08no\xff\xfemeth" + b"\x90",
    # method: 63 ASCII bytes and a 2-byte sequence cut by the 64 shown
    b"\x94\x00\x03" + raw_str(b"m" * 63 + "\u00e9".encode()) + b"\x90",
    # unknown key with invalid bytes
    b"\x94\x00\x04" + raw_str(b"ward.hello") + b"\x91\x81" +
        raw_str(b"k\xc3\x28ey") + b"\x01",
    # an instance name with invalid bytes
    b"\x94\x00\x05" + raw_str(b"instance.status") + b"\x91\x81" +
        raw_str(b"name") + raw_str(b"x\xed\xa0\x80y"),
]
s.sendall(b"".join(reqs))
unp = msgpack.Unpacker(raw=True)
got = []
while len(got) < len(reqs):
    unp.feed(s.recv(65536))
    got.extend(unp)
out = []
for m in got:
    err = m[2]
    msg = err[b"message"]
    try:
        text = msg.decode("utf-8")
    except UnicodeDecodeError as e:
        text = None
    out.append({"id": m[1], "code": err[b"code"].decode(),
                "raw": msg.hex(), "text": text})
done(out)
''')
    assert [m["id"] for m in out] == [1, 2, 3, 4, 5], out
    for m in out:
        assert m["text"] is not None, "not UTF-8: %r" % m
    assert out[0]["code"] == "no_such_method", out
    assert "no\ufffd\ufffdmethod" in out[0]["text"], out
    assert "no\ufffd\ufffdmeth" in out[1]["text"], out
    assert out[2]["code"] == "no_such_method", out
    assert "m" * 63 in out[2]["text"], out
    assert out[3]["code"] == "invalid_argument", out
    assert "unknown key 'k\ufffd(ey'" in out[3]["text"], out
    assert "x" in out[4]["text"] and "y" in out[4]["text"], out


# ---- finding 5: held fds ----------------------------------------------

# Creates instances as this uid, each given one passed fd (its stdin),
# until argv[2] of them exist or one is refused; reports the counts and
# the first refusal. Keeps nothing open afterwards.
FD_FILLER = r'''
import socket, msgpack
n = %d
r, wr = os.pipe()
made, refused = 0, []
for k in range(n):
    req = msgpack.packb([0, k + 1, "instance.create",
                         [{"argv": ["/bin/true"], "stdin": 0}]])
    try:
        socket.send_fds(c.sock, [req], [r])
        err, res = c.response(k + 1)
    except (ConnectionError, OSError) as e:
        refused.append({"code": "closed", "message": str(e)})
        break
    if err is None:
        made += 1
    else:
        refused.append(err)
done({"made": made, "refused": len(refused),
      "first": refused[0] if refused else None})
'''


def test_held_fds_budget(w):
    """309 instances created by nobody with a passed fd each: 256 are held
    (--max-user-fds), the 257th and later are resource_exhausted, wardd's
    fd table is not pushed to its limit, and root still runs things."""
    need_root(w)
    # Room for nobody's 256 and a little: 309 would not fit.
    with fd_room(w, 256 + 40) as before:
        out = as_uid(w, NOBODY, FD_FILLER % 309)
        assert out["made"] == 256, out
        assert out["refused"] == 309 - 256, out
        first = out["first"]
        assert first["code"] == "resource_exhausted", first
        assert "uid 65534" in first["message"], first
        assert "257 file descriptors" in first["message"], first
        assert "at most 256" in first["message"], first
        assert "--max-user-fds" in first["message"], first
        b = budget(w, NOBODY)
        assert b["fds"] == 256 and b["instances"] == 256, b
        # nobody sits at its budget: root still connects and runs things.
        root_served(w)
        other_uid_served(w)
        # Starting spends an instance's fds: room for one more.
        ids = [i["id"] for i in w.root.call("instance.list")
               if i["owner_uid"] == NOBODY]
        out = as_uid(w, NOBODY, '''
st = c.call("instance.start", {"id": %d})
done(st)
''' % ids[0])
        assert out["state"] in ("running", "dead", "failed"), out
        retry(lambda: budget(w, NOBODY)["fds"] == 255,
              what="the started instance's fd to be given back")
    retry(lambda: budget(w, NOBODY)["fds"] == 0, what="nobody's fds back")
    other_uid_served(w)
    retry(lambda: wardd_fds(w) <= before,
          what="wardd's fds back to %d" % before)


def test_fd_reserve_keeps_root_served(w):
    """nobody holds its 256 fds and another uid takes every fd that is
    left but the reserve (wardd at EMFILE for it): root still gets in and
    runs an instance, thanks to the 32 fds kept for admins."""
    need_root(w)
    with fd_room(w, 256 + 48):
        out = as_uid(w, NOBODY, FD_FILLER % 256)
        assert out["made"] == 256, out
        # The other uid runs into the table's end long before its budget.
        out = as_uid(w, OTHER, FD_FILLER % 256)
        assert 0 < out["made"] < 48, out
        assert out["refused"] >= 1, out
        # What is left is the reserve: root is let in and served.
        root_served(w)
        h = Client(w.sock)
        try:
            assert h.call("ward.hello")["admin"] is True
        finally:
            h.close()
    retry(lambda: budget(w, OTHER)["fds"] == 0, what="the other's fds back")
    other_uid_served(w)


# ---- finding 11: ring bytes -------------------------------------------

def test_ring_budget(w):
    """Rings are reserved at an instance's first start: 1 MiB x 2 streams
    x 32 instances fill nobody's 64 MiB; the 33rd run and a start beyond
    are resource_exhausted (a create is not: it reserves nothing), and a
    removal makes room again."""
    need_root(w)
    try:
        ring_budget(w)
    finally:
        remove_all_of(w, NOBODY)
        remove_all_of(w, 0)
    assert budget(w, NOBODY)["ring_bytes"] == 0


def ring_budget(w):
    out = as_uid(w, NOBODY, r'''
spec = {"argv": ["/bin/true"], "capture_output": True,
        "log_ring_bytes": 1048576}
ids = [c.call("instance.run", spec)["id"] for _ in range(32)]
n = len(c.call("instance.list"))
over = attempt("instance.run", spec)
after = len(c.call("instance.list"))
made = c.call("instance.create", spec)["id"]
start = attempt("instance.start", {"id": made})
state = c.call("instance.status", {"id": made})["state"]
last = ids.pop()     # /bin/true may still run: removable once it ended
wardtest.retry(lambda: c.call("instance.status", {"id": last})["state"]
               in ("dead", "failed"), what="the run to end")
c.call("instance.remove", {"id": last})
again = attempt("instance.start", {"id": made})
done({"n": n, "over": over, "after": after, "start": start, "state": state,
      "again": again})
''')
    assert out["n"] == 32, out
    over = out["over"]
    assert over.get("code") == "resource_exhausted", out
    assert "ring" in over["message"] and "--max-user-ring" in over["message"], out
    assert "67108864" in over["message"], out
    assert out["after"] == 32, out     # the refused run left nothing
    assert out["start"].get("code") == "resource_exhausted", out
    assert out["state"] == "not_started", out
    assert "ok" in out["again"], out
    b = budget(w, NOBODY)
    assert b["ring_bytes"] == 64 * MIB, b
    # Root is not held to it.
    for _ in range(5):
        w.root.call("instance.run", {"argv": ["/bin/true"],
                                     "capture_output": True,
                                     "log_ring_bytes": 16 * MIB})
    assert budget(w, 0)["ring_bytes"] == 5 * 2 * 16 * MIB


def test_ring_passed_stream_reserves_nothing(w):
    """A stream the client passed an fd for is not captured: its ring is
    not reserved."""
    need_root(w)
    out = as_uid(w, NOBODY, r'''
import socket, msgpack
r, wr = os.pipe()
req = msgpack.packb([0, 1, "instance.run",
                     [{"argv": ["/bin/true"], "capture_output": True,
                       "log_ring_bytes": 1048576, "stdout": 0}]])
socket.send_fds(c.sock, [req], [wr])
err, res = c.response(1)
st = c.call("ward.stats")
done({"err": err, "budgets": st["budgets"]})
''')
    assert out["err"] is None, out
    assert out["budgets"][0]["uid"] == NOBODY, out
    remove_all_of(w, NOBODY)
    assert out["budgets"][0]["ring_bytes"] == 1 * MIB, out


def test_stats_show_only_own_budget_to_others(w):
    need_root(w)
    out = as_uid(w, NOBODY, 'done(c.call("ward.stats")["budgets"])')
    assert [b["uid"] for b in out] == [NOBODY], out
    assert out[0]["conns"] == 1, out
    uids = [b["uid"] for b in stats(w)["budgets"]]
    assert 0 in uids, uids


def test_options_are_checked():
    for args in (["--max-user-conns", "0"], ["--max-user-conns", "1025"],
                 ["--max-user-buffer", "1M"], ["--max-user-fds", "-1"],
                 ["--max-user-ring", "12X"]):
        p = subprocess.run([wardtest.WARDD] + args, capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert args[0] in p.stderr, (args, p.stderr)
    p = subprocess.run([wardtest.WARDD, "--help"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    for opt in ("--max-user-conns", "--max-user-buffer", "--max-user-fds",
                "--max-user-ring"):
        assert opt in p.stdout, p.stdout


if __name__ == "__main__":
    wardtest.run(globals())
