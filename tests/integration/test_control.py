#!/usr/bin/python3
"""Issue 13 item 3: the control channel to a payload (instance.call).

A Python payload listens at $WARD_CONTROL_SOCKET and answers echo, add,
sleep (answered later, out of order), fail (its own error), never, garbage,
huge (a 10 MiB reply), die, accepts (how many connections it took) and
notify (a notification, then an answer). wardd connects on the first call,
retrying while the payload starts; many calls from several clients share
one connection; a payload that never answers, sends garbage or too much,
or dies, gets timeout, bad_response or unavailable while wardd serves the
rest; a symlink in place of the socket does not make wardd connect
elsewhere; a client that leaves mid-call, a ward.reexec mid-call, and a
non-owner are all handled. wardctl call and libward's ward_control_serve
(tests/control_payload.c) are tried too.
"""
import json
import os
import socket
import subprocess
import sys
import time

import msgpack

import test_fds
import wardtest
from wardtest import TIMEOUT, Client, Ward, WardError, as_nobody, retry, \
    uniq, wait_dead

W = None
C = None
PY = "/usr/bin/python3"

PAYLOAD_SRC = r'''
import heapq, os, select, socket, sys, time
import msgpack

path = os.environ["WARD_CONTROL_SOCKET"]
mode = sys.argv[1]
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))	# the first call waits for this
if mode == "symlink":			# the socket is a link to elsewhere
    os.symlink(sys.argv[3], path)
if mode in ("symlink", "silent"):
    while True:
        time.sleep(60)
if mode == "deaf":			# takes the connection, reads nothing
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(path)
    l.listen(1)
    c, _ = l.accept()
    while True:
        time.sleep(60)
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(path)
l.listen(64)
conns = {}
timers = []
accepts = 0

def reply(s, msgid, err, res):
    try:
        s.sendall(msgpack.packb([1, msgid, err, res], use_bin_type=True))
    except OSError:
        pass

def handle(s, m):
    global accepts
    _, msgid, method, params = m
    if method == "echo":
        reply(s, msgid, None, params)
    elif method == "add":
        reply(s, msgid, None, sum(params))
    elif method == "sleep":
        heapq.heappush(timers, (time.monotonic() + params[0] / 1000.0,
                                msgid, s, params))
    elif method == "fail":
        reply(s, msgid, {"message": "it failed", "n": 7}, None)
    elif method == "never":
        pass
    elif method == "garbage":
        s.sendall(b"\xc1\xc1 this is not msgpack")
    elif method == "huge":
        try:
            s.sendall(msgpack.packb([1, msgid, None, "x" * (10 << 20)]))
        except OSError:
            pass
    elif method == "die":
        os._exit(3)
    elif method == "accepts":
        reply(s, msgid, None, accepts)
    elif method == "notify":
        s.sendall(msgpack.packb([2, "hello", []]))
        reply(s, msgid, None, "after")
    else:
        reply(s, msgid, "no method " + method, None)

while True:
    now = time.monotonic()
    while timers and timers[0][0] <= now:
        _, msgid, s, params = heapq.heappop(timers)
        if s in conns:
            reply(s, msgid, None, params)
    wait = max(0, timers[0][0] - now) if timers else None
    r, _, _ = select.select([l] + list(conns), [], [], wait)
    for s in r:
        if s is l:
            c, _ = l.accept()
            accepts += 1
            conns[c] = msgpack.Unpacker(raw=False)
            continue
        try:
            data = s.recv(1 << 16)
        except OSError:     # wardd dropped it with our reply unread: RST
            data = b""
        if not data:
            del conns[s]
            s.close()
            continue
        conns[s].feed(data)
        for m in conns[s]:
            handle(s, m)
'''


def setup_module():
    global W, C
    W = Ward().start()
    C = W.client()
    W.script = os.path.join(W.dir, "ctlpayload.py")
    with open(W.script, "w") as f:
        f.write(PAYLOAD_SRC)
    os.chmod(W.script, 0o644)
    return W


def teardown_module(w):
    if w is not None:
        w.stop()


def start(mode="serve", *args, control=True, **kw):
    name = uniq("ctl")
    spec = {"name": name, "argv": [PY, W.script, mode] + [str(a) for a in args]}
    if control:
        spec["control"] = True
    spec.update(kw)
    C.call("instance.run", spec)
    return name


def call(name, method, params=None, c=None, **kw):
    p = {"name": name, "method": method}
    if params is not None:
        p["params"] = params
    p.update(kw)
    return (c or C).call("instance.call", p)


def call_error(name, method, params=None, c=None, **kw):
    try:
        r = call(name, method, params, c, **kw)
    except WardError as e:
        return e
    raise AssertionError("instance.call %s succeeded: %r" % (method, r))


def stop(name):
    C.call("instance.kill", {"name": name, "signal": "KILL"})
    wait_dead(C, name)
    C.call("instance.remove", {"name": name})


def control_fds():
    return [e["fd"] for e in C.call("ward.fds") if e["owner"] == "control"]


def responses(c, ids):
    """{msgid: (error, result)} for each of ids, in whatever order they
    come (calls answered later by the payload overtake others)."""
    out = {}
    while len(out) < len(ids):
        msg = c._next()
        assert msg is not None, "wardd closed the connection"
        if msg[0] == 1:
            out[msg[1]] = (msg[2], msg[3])
    assert set(out) == set(ids), (out, ids)
    return out


def alive():
    assert C.call("ward.hello")["pid"] == W.proc.pid
    assert W.proc.poll() is None


def test_call_echo_add():
    name = start("serve")
    assert call(name, "echo", [1, "a", {"k": 2}], timeout_ms=10000) == \
        [1, "a", {"k": 2}]
    assert call(name, "add", [2, 3, 4]) == 9
    # Not an array: sent as a one-element array; none: [].
    assert call(name, "echo", {"x": 1}) == [{"x": 1}]
    assert call(name, "echo") == []
    # The environment names the socket in the runtime dir.
    st = C.call("instance.status", {"name": name})
    assert st["control"] is True, st
    path = os.path.join(W.state, "instances", str(st["id"]), "control")
    assert os.path.exists(path)
    # The payload's own error: call_failed, its message, its object as data.
    err, _ = C.response(C.request("instance.call",
                                  {"name": name, "method": "fail"}))
    assert err["code"] == "call_failed", err
    assert err["message"] == "it failed", err
    assert err["data"] == {"message": "it failed", "n": 7}, err
    # A notification from the payload is ignored; the answer still comes.
    assert call(name, "notify") == "after"
    fds = control_fds()
    assert len(fds) == 1, fds
    assert wardtest.wardd_fds(W)[fds[0]].startswith("socket:"), fds
    stop(name)
    assert control_fds() == []


def test_first_call_waits_for_listener():
    t0 = time.monotonic()
    name = start("serve", 1.0)
    assert call(name, "echo", ["early"], timeout_ms=20000) == ["early"]
    assert time.monotonic() - t0 >= 0.9
    # Within the call's timeout only: a payload that never listens.
    quiet = start("silent")
    e = call_error(quiet, "echo", timeout_ms=300)
    assert e.code == "timeout", e
    stop(name)
    stop(quiet)


def test_many_calls_one_connection():
    before = len(control_fds())
    name = start("serve")
    clients = [W.client() for _ in range(5)]
    pending = []
    for k in range(50):
        c = clients[k % 5]
        if k % 3 == 0:
            msgid = c.request("instance.call", {"name": name, "method": "sleep",
                                                "params": [50 - k, k]})
            pending.append((c, msgid, [50 - k, k]))
        else:
            msgid = c.request("instance.call", {"name": name, "method": "echo",
                                                "params": [k]})
            pending.append((c, msgid, [k]))
    for c in clients:
        got = responses(c, [m for cc, m, _ in pending if cc is c])
        for cc, msgid, want in pending:
            if cc is c:
                assert got[msgid] == (None, want), (got[msgid], want)
    assert call(name, "accepts") == 1
    assert len(control_fds()) == before + 1
    # Every fd wardd holds is listed by its owner (test_fds.py's check),
    # the control connection's included.
    W.root = C
    test_fds.check_no_leak(W)
    stop(name)


def test_timeout_while_others_answered():
    stuck = start("serve")
    other = start("serve")
    assert call(stuck, "echo", [0]) == [0]
    c = W.client()
    t0 = time.monotonic()
    msgid = c.request("instance.call", {"name": stuck, "method": "never",
                                        "timeout_ms": 1500})
    # Meanwhile the loop serves the others.
    for k in range(20):
        assert call(other, "add", [k, 1]) == k + 1
    assert call(stuck, "echo", ["same conn"]) == ["same conn"]
    assert time.monotonic() - t0 < 1.5
    err, _ = c.response(msgid)
    assert err["code"] == "timeout", err
    assert time.monotonic() - t0 >= 1.4
    stop(stuck)
    stop(other)


def test_garbage_and_huge_replies():
    name = start("serve")
    for method in ("garbage", "huge"):
        e = call_error(name, method)
        assert e.code == "bad_response", (method, e)
        alive()
        # The connection was dropped; the next call makes a new one.
        assert call(name, "echo", [method]) == [method]
    assert call(name, "accepts") == 3
    stop(name)


def test_payload_that_does_not_read():
    """Requests pile up for a payload that never reads: bounded (busy)."""
    name = start("deaf")
    big = ["x" * (900 << 10)]
    codes = []
    for _ in range(40):
        codes.append(call_error(name, "echo", big, timeout_ms=30).code)
        if codes[-1] == "busy":
            break
    assert codes[-1] == "busy" and set(codes) == {"timeout", "busy"}, codes
    assert len(codes) <= 10, codes
    alive()
    stop(name)


def test_payload_dies_with_calls_pending():
    before = len(control_fds())
    name = start("serve")
    c = W.client()
    ids = [c.request("instance.call", {"name": name, "method": "sleep",
                                       "params": [10000]}) for _ in range(5)]
    die = c.request("instance.call", {"name": name, "method": "die"})
    for msgid in ids + [die]:
        err, _ = c.response(msgid)
        assert err["code"] == "unavailable", err
    wait_dead(C, name)
    e = call_error(name, "echo")
    assert e.code == "unavailable" and "not running" in e.message, e
    assert len(control_fds()) == before
    C.call("instance.remove", {"name": name})


def test_no_control_and_bad_arguments():
    name = start("serve", control=False)
    assert C.call("instance.status", {"name": name})["control"] is False
    e = call_error(name, "echo")
    assert e.code == "unavailable" and "control: true" in e.message, e
    stop(name)
    name = start("serve")
    for params in ({"name": name}, {"name": name, "method": ""},
                   {"name": name, "method": "echo", "timeout_ms": 0},
                   {"name": name, "method": "echo", "timeout_ms": 60001}):
        err = C.error("instance.call", params)
        assert err["code"] == "invalid_argument", (params, err)
    err = C.error("instance.call", {"name": "no-such", "method": "echo"})
    assert err["code"] == "not_found", err
    stop(name)


def test_other_user():
    mine = start("serve")
    r = as_nobody(W, 'done(attempt("instance.call", {"name": %r, '
                  '"method": "echo"}))' % mine)
    assert r.get("code") == "not_found", r
    # A user's own payload: theirs to call (and root's to call too).
    own = uniq("ctlu")
    r = as_nobody(W, 'c.call("instance.run", {"name": %r, "argv": [%r, %r, '
                  '"serve"], "control": True})\n'
                  'done(attempt("instance.call", {"name": %r, "method": '
                  '"add", "params": [40, 2], "timeout_ms": 10000}))'
                  % (own, PY, W.script, own))
    assert r == {"ok": 42}, r
    assert call(own, "echo", ["root"]) == ["root"]
    stop(own)
    # A payload run as another uid: its socket and listener are that uid's.
    theirs = start("serve", user="65534:65534")
    assert call(theirs, "echo", ["nobody"]) == ["nobody"]
    stop(mine)
    stop(theirs)


def planted(name):
    """The path of name's control socket, once its payload has put a
    symlink there."""
    st = C.call("instance.status", {"name": name})
    path = os.path.join(W.state, "instances", str(st["id"]), "control")
    retry(lambda: os.path.islink(path), what="the payload's symlink")
    return path


def refused(name, l, why):
    """A call on name is unavailable for why, and l got no connection."""
    e = call_error(name, "echo", timeout_ms=2000)
    assert e.code == "unavailable" and why in e.message, e
    try:
        l.accept()
        raise AssertionError("wardd connected elsewhere (%s)" % why)
    except BlockingIOError:
        pass


def test_symlink_not_followed():
    evil = os.path.join(W.dir, "evil.sock")
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(evil)
    l.listen(4)
    l.setblocking(False)
    name = start("symlink", 0, evil)
    planted(name)
    refused(name, l, "not a socket")
    # A socket of another user in its place (a hard link, or a bind by a
    # payload of another uid): refused by owner.
    theirs = start("symlink", 0, evil, user="65534:65534")
    path = planted(theirs)
    os.unlink(path)
    os.link(evil, path)
    refused(theirs, l, "uid 65534")
    l.close()
    stop(name)
    stop(theirs)


def test_client_leaves_mid_call():
    before = len(control_fds())
    name = start("serve")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(W.sock)
    s.sendall(msgpack.packb([0, 1, "instance.call", [{
        "name": name, "method": "sleep", "params": [200]}]]))
    # wardd has relayed it once the payload holds the connection.
    retry(lambda: len(control_fds()) == before + 1,
          what="the control connection")
    s.close()
    # Answered after the first one's late reply (same stream, in order).
    assert call(name, "sleep", [400]) == [400]
    alive()
    stop(name)


def test_reexec_mid_call():
    name = start("serve")
    c = W.client()
    assert call(name, "echo", [1]) == [1]
    msgid = c.request("instance.call", {"name": name, "method": "sleep",
                                        "params": [5000]})
    C.call("ward.reexec")
    err, _ = c.response(msgid)
    assert err["code"] == "unavailable" and "re-exec" in err["message"], err
    assert call(name, "echo", [2], timeout_ms=10000) == [2]
    assert call(name, "accepts") == 2
    stop(name)


def test_wardctl_call():
    name = start("serve")
    env = dict(os.environ, WARD_SOCKET=W.sock)
    p = subprocess.run([wardtest.WARDCTL, "call", name, "echo",
                        '[1, -2, 2.5, "\\u00e9\\ud83d\\ude00", {"a": [true, '
                        'false, null]}]'], env=env, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [1, -2, 2.5, "\u00e9\U0001F600",
                                    {"a": [True, False, None]}], p.stdout
    p = subprocess.run([wardtest.WARDCTL, "call", "--timeout", "300", name,
                        "never"], env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 1 and "did not answer" in p.stderr, (
        p.returncode, p.stderr)
    p = subprocess.run([wardtest.WARDCTL, "call", name, "echo", "[1,"],
                       env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 2 and "not JSON" in p.stderr, p.stderr
    stop(name)


def ctl(*a, sock=None):
    env = dict(os.environ, WARD_SOCKET=sock or W.sock)
    return subprocess.run([wardtest.WARDCTL] + [str(x) for x in a], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_ward_control_serve():
    """libward's payload side, started with wardctl run --control."""
    exe = os.path.join(wardtest.BUILDDIR, "tests", "control_payload")
    name = uniq("ctlc")
    p = ctl("run", name, "--control", "--", exe)
    assert p.returncode == 0, p.stderr
    # The first call waits for it to listen.
    p = ctl("call", name, "add", "[1, 2, 39]")
    assert p.returncode == 0 and json.loads(p.stdout) == 42, (p.stdout,
                                                             p.stderr)
    assert call(name, "echo", {"k": [1, "two"]}) == [{"k": [1, "two"]}]
    assert call(name, "nil") is None
    e = call_error(name, "fail")
    assert e.code == "call_failed" and e.message == "it failed", e
    e = call_error(name, "what")
    assert e.code == "call_failed" and e.message == "no method what", e
    # Several clients' calls at once, on its one connection.
    clients = [W.client() for _ in range(4)]
    ids = [(c, c.request("instance.call", {"name": name, "method": "add",
                                           "params": [k, 1000]}), k)
           for k in range(40) for c in [clients[k % 4]]]
    for c in clients:
        got = responses(c, [m for cc, m, _ in ids if cc is c])
        for cc, m, k in ids:
            if cc is c:
                assert got[m] == (None, k + 1000), got[m]
    stop(name)


def test_declared_program():
    """control = true in a [program:x] is the same key."""
    w = Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "ctl.conf"), "w") as f:
        f.write("[program:ctlprog]\ncommand = %s %s serve\ncontrol = true\n"
                "startsecs = 0\n" % (PY, W.script))
    w.extra += ["--config-dir", conf]
    w.start()
    try:
        c = w.client()
        retry(lambda: c.call("instance.status", {"name": "ctlprog"})
              ["state"] == "running", what="the program to run")
        assert call("ctlprog", "add", [20, 22], c=c) == 42
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
