#!/usr/bin/python3
"""Every input from outside is hostile: bad input gets a clear error and
nothing is lost: the daemon, its instances and every other client carry on.

One wardd serves the whole file. Before the hostile tests it gets a
long-running instance and a second, "bystander" client; every test ends with
alive(), which proves wardd still answers on a new connection, the bystander
still gets answers and the instance still runs, unchanged.
"""
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

import msgpack

import wardtest
from wardtest import TIMEOUT, Client, Ward, retry

MIB = 1024 * 1024
TOO_LARGE = "too_large"
PROTOCOL = "protocol_error"
INVALID = "invalid_argument"


def setup_module():
    # A short metrics period gives the EMFILE test a clock to wait on.
    # test_connection_cap_total fills 1024 with 128 per uid: non-admins
    # get 64 by default (test_budgets.py checks that), 128 here.
    w = Ward(args=["--metrics-interval", "200",
                   "--max-user-conns", "128"]).start()
    w.main = w.client()
    w.bystander = w.client()
    r = w.main.call("instance.run", {"name": "steady",
                                     "argv": wardtest.payload("hang")})
    assert r["state"] == "running" and r["pid"] > 0, r
    w.inst = r
    w.pid = w.proc.pid
    return w


# ---- helpers ----------------------------------------------------------

def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def conn(w, timeout=TIMEOUT):
    """A raw connection that is not in w.clients: the test closes it."""
    return Client(w.sock, timeout=timeout)


def send_quiet(c, data):
    """Send what wardd will take; it may close the stream part way."""
    try:
        c.sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_until_closed(c, timeout=TIMEOUT):
    """Every message wardd sends until it closes the connection."""
    msgs = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("wardd did not close the connection; got %r"
                                 % (msgs,))
        try:
            m = c._next(left)
        except ConnectionResetError:
            # Closed with our unread request bytes in its queue: a reset
            # after everything it sent has been read.
            return msgs
        except socket.timeout:
            raise AssertionError("wardd did not close the connection; got %r"
                                 % (msgs,))
        if m is None:
            return msgs
        msgs.append(m)


def expect_ward_error(c, code, timeout=TIMEOUT):
    """wardd sends exactly one ward.error with code, then closes."""
    msgs = read_until_closed(c, timeout)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m[0] == 2 and m[1] == "ward.error", m
    assert isinstance(m[2], list) and len(m[2]) == 1, m
    err = m[2][0]
    assert set(err) == {"code", "message"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err
    return err


def hostile(w, data, code):
    """Send data on a fresh connection: ward.error code, then closed."""
    c = conn(w)
    try:
        send_quiet(c, data)
        return expect_ward_error(c, code)
    finally:
        c.close()


def raw_response(c, data, msgid):
    """Send hand-made bytes holding one request; return (error, result)."""
    c.send_raw(data)
    return c.response(msgid)


def stats(w):
    return w.bystander.call("ward.stats")


def alive(w):
    """wardd, the bystander and the instance all carry on."""
    assert w.proc.poll() is None, "wardd exited: %s" % w.proc.returncode
    c = conn(w)
    try:
        h = c.call("ward.hello")
        assert h["server"] == "wardd" and h["pid"] == w.pid, h
    finally:
        c.close()
    h = w.bystander.call("ward.hello")
    assert h["pid"] == w.pid, h
    st = w.bystander.call("instance.status", {"id": w.inst["id"]})
    assert st["state"] == "running", st
    assert st["pid"] == w.inst["pid"], st
    os.kill(st["pid"], 0)   # the very process, still there
    # Failed requests leave nothing behind: only the one instance exists.
    s = stats(w)
    assert s["instances"] == 1 and s["running"] == 1, s


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime, stime


def nested_request(depth, msgid):
    """A ward.hello request whose deepest path has depth containers."""
    x = 1
    for _ in range(depth - 3):     # request array, params array, map
        x = [x]
    return pack([0, msgid, "ward.hello", [{"x": x}]])


def bare_nest(depth):
    x = 1
    for _ in range(depth):
        x = [x]
    return pack(x)


# ---- the tests --------------------------------------------------------

def test_setup_is_sane(w):
    h = w.main.call("ward.hello")
    assert h["admin"] is True and h["uid"] == 0, h
    alive(w)


def test_issue_1013_array32_huge(w):
    """dd ff ff ff ff asks a naive unpacker for ~96 GB: refused at once."""
    before = stats(w)["rss_kb"]
    assert before > 0
    for _ in range(10):
        err = hostile(w, b"\xdd\xff\xff\xff\xff", TOO_LARGE)
    assert "1 MiB" in err["message"] or "large" in err["message"] or \
        str(0xffffffff) in err["message"], err
    after = stats(w)["rss_kb"]
    assert after < before + 8 * 1024, (before, after)
    alive(w)


def test_huge_length_headers(w):
    before = stats(w)["rss_kb"]
    for hdr in (b"\xdb\xff\xff\xff\xff",      # str32
                b"\xc6\xff\xff\xff\xff",      # bin32
                b"\xdf\xff\xff\xff\xff",      # map32
                b"\xc9\xff\xff\xff\xff\x01",  # ext32
                b"\xdd\x00\x10\x00\x01"):     # array32, 1 Mi + 1 elements
        hostile(w, hdr, TOO_LARGE)
    # The same headers inside an otherwise good request.
    for inner in (b"\xdb\x7f\xff\xff\xff", b"\xc6\x00\x20\x00\x00",
                  b"\xdf\x00\x80\x00\x00", b"\xdd\x00\x10\x00\x01"):
        data = b"\x94\x00\x01" + pack("ward.hello") + b"\x91\x81" + \
            pack("x") + inner
        hostile(w, data, TOO_LARGE)
    after = stats(w)["rss_kb"]
    assert after < before + 8 * 1024, (before, after)
    alive(w)


def test_request_over_1mib(w):
    # One 1.5 MiB string argument: its header alone is over the limit.
    big = pack([0, 1, "instance.create",
                [{"argv": [wardtest.PAYLOAD, "x" * (3 * MIB // 2)]}]])
    hostile(w, big, TOO_LARGE)
    # Many strings, each fine, adding up to 1.2 MiB.
    many = pack([0, 1, "instance.create",
                 [{"argv": [wardtest.PAYLOAD] + ["y" * 1000] * 1200}]])
    assert len(many) > MIB
    hostile(w, many, TOO_LARGE)
    # 1000 strings of 70 KB: 70 MB in one request.
    huge = pack([0, 1, "instance.create",
                 [{"argv": [wardtest.PAYLOAD] + ["z" * 70000] * 1000}]])
    hostile(w, huge, TOO_LARGE)
    # More than 65536 objects in well under 1 MiB.
    objs = pack([0, 1, "ward.hello", [{"x": [None] * 70000}]])
    assert len(objs) < MIB
    hostile(w, objs, TOO_LARGE)
    alive(w)


def test_nesting_limit(w):
    c = conn(w)
    try:
        # 16 deep passes the codec; the params are wrong, nothing more.
        err, res = raw_response(c, nested_request(16, 5), 5)
        assert res is None and err["code"] == INVALID, err
        assert "'x'" in err["message"], err
        # The connection stays open and usable.
        assert c.call("ward.hello")["server"] == "wardd"
        # 17 deep is refused before anything is unpacked.
        send_quiet(c, nested_request(17, 6))
        e = expect_ward_error(c, TOO_LARGE)
        assert "16" in e["message"], e
    finally:
        c.close()
    hostile(w, bare_nest(17), TOO_LARGE)
    hostile(w, bare_nest(40), TOO_LARGE)
    alive(w)


def test_invalid_type_byte(w):
    e = hostile(w, b"\xc1", PROTOCOL)
    assert "0xc1" in e["message"], e
    # Inside a request, after good bytes.
    hostile(w, b"\x94\x00\x01" + pack("ward.hello") + b"\x91\xc1", PROTOCOL)
    # A request that already got its answer does not save the stream.
    c = conn(w)
    try:
        assert c.call("ward.hello")["server"] == "wardd"
        send_quiet(c, b"\xc1")
        expect_ward_error(c, PROTOCOL)
    finally:
        c.close()
    alive(w)


def test_not_rpc(w):
    for obj in (42, {"a": 1}, "ward.hello", None, [1, 2],
                [9, 1, "ward.hello", []],      # unknown message type
                [0, 1, "ward.hello"],          # request without params
                [0, 1, "ward.hello", [], 5],   # request with extra
                ["0", 1, "ward.hello", []],    # type not an integer
                [-1, 1, "ward.hello", []],
                [0, -1, "ward.hello", []],     # negative msgid
                [0, 2 ** 32, "ward.hello", []],  # msgid over uint32
                [0, "1", "ward.hello", []],    # msgid a string
                [[[1]]]):
        hostile(w, pack(obj), PROTOCOL)
    alive(w)


def test_bad_envelope_fields(w):
    """Wrong method or params types: an error response, stream kept."""
    c = conn(w)
    try:
        for msgid, obj, what in (
                (11, [0, 11, "ward.hello", {"a": 1}], "params"),
                (12, [0, 12, "ward.hello", "x"], "params"),
                (13, [0, 13, "ward.hello", [{}, {}]], "params"),
                (14, [0, 14, 42, []], "method"),
                (15, [0, 15, None, []], "method"),
                (16, [0, 16, ["ward.hello"], []], "method"),
                (17, [0, 17, "ward.hello", [5]], "params")):
            err, res = raw_response(c, pack(obj), msgid)
            assert res is None, res
            assert err["code"] == INVALID, (obj, err)
            assert what in err["message"], (obj, err)
        # The largest msgid is answered with that msgid.
        err, res = raw_response(c, pack([0, 2 ** 32 - 1, "ward.hello", []]),
                                2 ** 32 - 1)
        assert err is None and res["server"] == "wardd"
        assert c.call("ward.hello")["server"] == "wardd"
    finally:
        c.close()
    alive(w)


def test_bad_arguments(w):
    c = conn(w)
    try:
        before = stats(w)["created"]
        e = c.error("no.such.method")
        assert e["code"] == "no_such_method", e
        assert "no.such.method" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "colour": "blue"})
        assert e["code"] == INVALID and "colour" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.PAYLOAD})
        assert e["code"] == INVALID and "argv" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "hangup_timeout_ms": "100"})
        assert e["code"] == INVALID and "hangup_timeout_ms" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "hangup_timeout_ms": -5})
        assert e["code"] == INVALID and "hangup_timeout_ms" in e["message"], e
        e = c.error("instance.create", {"argv": []})
        assert e["code"] == INVALID and "argv" in e["message"], e
        e = c.error("instance.create", {})
        assert e["code"] == INVALID and "argv" in e["message"], e
        e = c.error("instance.create", {"argv": [wardtest.PAYLOAD, 5]})
        assert e["code"] == INVALID and "argv" in e["message"], e
        e = c.error("instance.create", {"argv": ["ward-no-such-program-x"]})
        assert e["code"] == INVALID, e
        assert "not found in PATH" in e["message"], e
        assert "ward-no-such-program-x" in e["message"], e
        e = c.error("instance.create", {"argv": ["/nonexistent/prog"]})
        assert e["code"] == INVALID and "/nonexistent/prog" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "name": "12345"})
        assert e["code"] == INVALID and "digits" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "name": "bad name/x"})
        assert e["code"] == INVALID and "name" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "name": "n" * 65})
        assert e["code"] == INVALID and "name" in e["message"], e
        e = c.error("instance.create", {"argv": [wardtest.PAYLOAD, "a\0b"]})
        assert e["code"] == INVALID and "NUL" in e["message"], e
        # One string over the 64 KiB per-string limit (request < 1 MiB).
        e = c.error("instance.create", {"argv": [wardtest.PAYLOAD,
                                                 "s" * 70000]})
        assert e["code"] == INVALID and "65536" in e["message"], e
        # Too many argv elements for an instance, though the request fits.
        e = c.error("instance.create",
                    {"argv": [wardtest.PAYLOAD] + ["a"] * 5000})
        assert e["code"] == TOO_LARGE and "argv" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "env": {"A=B": "c"}})
        assert e["code"] == INVALID and "env" in e["message"], e
        e = c.error("instance.create", {"argv": wardtest.payload("hang"),
                                        "cwd": "/nonexistent-dir"})
        assert e["code"] == INVALID and "cwd" in e["message"], e
        e = c.error("instance.status", {"id": "1"})
        assert e["code"] == INVALID and "'id'" in e["message"], e
        e = c.error("instance.status", {"id": 999999})
        assert e["code"] == "not_found", e
        e = c.error("instance.kill", {"id": w.inst["id"], "signal": "NOPE"})
        assert e["code"] == INVALID and "signal" in e["message"], e
        e = c.error("instance.kill", {"id": w.inst["id"], "signal": 100000})
        assert e["code"] == INVALID and "signal" in e["message"], e
        e = c.error("ward.hello", {"verbose": True})
        assert e["code"] == INVALID and "verbose" in e["message"], e
        e = c.error("instance.list", {"state": "sleeping"})
        assert e["code"] == INVALID and "state" in e["message"], e
        # A key given twice, hand-packed (no msgpack library writes that).
        argv = pack(wardtest.payload("hang"))
        data = b"\x94\x00\xcc\x63" + pack("instance.create") + b"\x91\x82" + \
            pack("argv") + argv + pack("argv") + argv
        err, res = raw_response(c, data, 0x63)
        assert err["code"] == INVALID and "twice" in err["message"], err
        # A map key that is not a string.
        err, res = raw_response(c, pack([0, 0x64, "instance.list",
                                         [{1: "x"}]]), 0x64)
        assert err["code"] == INVALID and "key" in err["message"], err
        # None of that created anything, and the connection still works.
        assert stats(w)["created"] == before
        assert c.call("ward.hello")["server"] == "wardd"
    finally:
        c.close()
    alive(w)


def test_method_bin_and_client_notifications(w):
    c = conn(w)
    try:
        h = c.call("ward.hello", method_bin=True)
        assert h["server"] == "wardd", h
        l = c.call("instance.list", {}, method_bin=True)
        assert [i["id"] for i in l] == [w.inst["id"]], l
        # Notifications and responses from a client are ignored...
        c.send_raw(pack([2, "foo", []]))
        c.send_raw(pack([2, "ward.shutdown", []]))
        c.send_raw(pack([1, 77, None, None]))
        # ... and the next request on the same connection is answered,
        # with nothing sent before it.
        msgid = c.request("ward.hello")
        m = c._next()
        assert m[0] == 1 and m[1] == msgid and m[2] is None, m
        assert not c.notifications, c.notifications
    finally:
        c.close()
    alive(w)


def test_one_byte_writes(w):
    c = conn(w)
    try:
        data = pack([0, 41, "instance.status", [{"id": w.inst["id"]}]])
        for k, b in enumerate(data):
            c.send_raw(bytes([b]))
            if k % 4 == 0:
                # Let wardd see the partial message between bytes.
                w.bystander.call("ward.hello")
        msg = c._next()
        assert msg[0] == 1 and msg[1] == 41 and msg[2] is None, msg
        assert msg[3]["id"] == w.inst["id"], msg
    finally:
        c.close()
    alive(w)


def test_several_requests_in_one_write(w):
    c = conn(w)
    try:
        data = pack([0, 1, "ward.hello", []]) + \
            pack([0, 2, "instance.status", [{"id": w.inst["id"]}]]) + \
            pack([0, 3, "no.such.method", []]) + \
            pack([0, 4, "instance.list", []])
        c.send_raw(data)
        got = [c._next() for _ in range(4)]
        assert [m[1] for m in got] == [1, 2, 3, 4], got
        assert got[0][3]["server"] == "wardd"
        assert got[1][3]["id"] == w.inst["id"]
        assert got[2][2]["code"] == "no_such_method"
        assert len(got[3][3]) == 1
        # The last message and half of the next in one write, then the rest.
        a = pack([0, 5, "ward.hello", []])
        b = pack([0, 6, "ward.hello", []])
        c.send_raw(a + b[:3])
        assert c._next()[1] == 5
        c.send_raw(b[3:])
        assert c._next()[1] == 6
    finally:
        c.close()
    alive(w)


def test_half_message_then_disconnect(w):
    retry(lambda: stats(w)["clients"] == 2, what="only the two clients")
    before = stats(w)["rss_kb"]
    for data in (pack([0, 1, "ward.hello", []])[:5],
                 b"\xdd\x00\x0f\xff\xff",        # 1M elements promised
                 b"\xdb\x00\x0f\xff\xff" + b"a" * 1000,
                 b"\x94"):
        c = conn(w)
        c.send_raw(data)
        # It is a valid beginning: wardd keeps waiting for the rest.
        retry(lambda: stats(w)["clients"] == 3, what="the half client")
        assert w.bystander.call("ward.hello")["pid"] == w.pid
        assert stats(w)["clients"] == 3     # still held, not dropped
        c.close()
        retry(lambda: stats(w)["clients"] == 2, what="the half client gone")
    assert stats(w)["rss_kb"] < before + 8 * 1024
    alive(w)


def test_disconnect_before_reading_response(w):
    retry(lambda: stats(w)["clients"] == 2, what="only the two clients")
    # One request, closed at once.
    c = conn(w)
    c.send_raw(pack([0, 1, "instance.list", []]))
    c.close()
    # Thousands, so that wardd has plenty to write to a vanished peer.
    c = conn(w)
    c.send_raw(b"".join(pack([0, k, "instance.list", []])
                        for k in range(1, 3001)))
    c.close()
    # Half-closed: wardd answers what was sent, then closes.
    c = conn(w)
    c.send_raw(pack([0, 9, "ward.hello", []]))
    c.sock.shutdown(socket.SHUT_WR)
    msgs = read_until_closed(c)
    assert len(msgs) == 1 and msgs[0][1] == 9 and msgs[0][2] is None, msgs
    c.close()
    retry(lambda: stats(w)["clients"] == 2, what="the clients to be gone")
    alive(w)


def test_pipeline_without_reading(w):
    """5000 requests sent before one reply is read: all answered, in order,
    while the other clients are served."""
    n = 5000
    c = conn(w, timeout=60)
    try:
        data = b"".join(pack([0, k, "instance.list", []])
                        for k in range(1, n + 1))
        sent = threading.Event()

        def send():
            c.sock.sendall(data)
            sent.set()
        t = threading.Thread(target=send, daemon=True)
        t.start()
        # The unread replies (> 1 MiB of them) do not hold up anyone else.
        for _ in range(20):
            assert w.bystander.call("ward.hello")["pid"] == w.pid
        st = w.bystander.call("instance.status", {"id": w.inst["id"]})
        assert st["state"] == "running"
        got = 0
        while got < n:
            m = c._next()
            assert m is not None, "closed after %d responses" % got
            got += 1
            assert m[0] == 1 and m[1] == got and m[2] is None, m
            assert [i["id"] for i in m[3]] == [w.inst["id"]], m
        t.join(TIMEOUT)
        assert sent.is_set()
        # Still a normal connection afterwards.
        assert c.call("ward.hello")["server"] == "wardd"
    finally:
        c.close()
    # Same with ward.hello, 5000 of them in one write.
    c = conn(w)
    try:
        c.send_raw(b"".join(pack([0, k, "ward.hello", []])
                            for k in range(1, n + 1)))
        for k in range(1, n + 1):
            m = c._next()
            assert m[1] == k and m[3]["server"] == "wardd", m
    finally:
        c.close()
    alive(w)


def wardd_fds(w):
    return len(os.listdir("/proc/%d/fd" % w.pid))


def send_with_fds(c, obj, fds):
    socket.send_fds(c.sock, [pack(obj)], fds)


def test_passed_fds_are_never_leaked(w):
    """fds passed with requests: kept only when a create names them;
    closed on every error path and with any other request."""
    before = wardd_fds(w)
    r, wr = os.pipe()
    try:
        c = conn(w)
        # With a request that takes none.
        send_with_fds(c, [0, 1, "ward.hello", []], [r, wr])
        err, res = c.response(1)
        assert err is None and res["server"] == "wardd", (err, res)
        # Named out of range, or at a reserved target.
        for i, params in enumerate([
                {"argv": ["true"], "stdout": 5},
                {"argv": ["true"], "fds": [{"fd": 0, "target": 3}]},
                {"argv": ["true"], "fds": [{"fd": 0, "target": 7},
                                           {"fd": 1, "target": 7}]},
                {"argv": ["true"], "fds": [{"fd": 0}]},
                {"argv": ["no-such-prog"], "stdout": 0}], 2):
            send_with_fds(c, [0, i, "instance.create", [params]], [r, wr])
            err, _ = c.response(i)
            assert err is not None and err["code"] == "invalid_argument", \
                (params, err)
        c.close()
        retry(lambda: wardd_fds(w) == before, what="wardd's fds back to %d"
              % before)
    finally:
        os.close(r)
        os.close(wr)
    alive(w)


def test_too_many_fds(w):
    """More fds than wardd takes with one request (64): MSG_CTRUNC is an
    error the client is told about, and none of them stays open."""
    before = wardd_fds(w)
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(70)]
    try:
        c = conn(w)
        try:
            send_with_fds(c, [0, 1, "ward.hello", []], fds)
            err = expect_ward_error(c, "too_large")
            assert "file descriptors" in err["message"], err
        finally:
            c.close()
    finally:
        for fd in fds:
            os.close(fd)
    retry(lambda: wardd_fds(w) == before, what="no fd kept")
    alive(w)


def nobody_hello(w):
    """ward.hello as uid nobody, from a child process."""
    code = ("import json, wardtest\n"
            "c = wardtest.Client(%r)\n"
            "print(json.dumps(c.call('ward.hello')))\n" % w.sock)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(wardtest.__file__))
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         sys.executable, "-c", code], env=env, capture_output=True,
        timeout=TIMEOUT, check=True)
    return json.loads(out.stdout)


def test_connection_cap_per_uid(w):
    retry(lambda: stats(w)["clients"] == 2, what="only the two clients")
    conns = []
    try:
        # main and bystander are root's too: 126 more make 128.
        for k in range(126):
            c = conn(w)
            conns.append(c)
            assert c.call("ward.hello")["uid"] == 0
        assert stats(w)["clients"] == 128
        # The 129th is told why and closed.
        extra = conn(w)
        try:
            e = expect_ward_error(extra, "busy")
            assert "too many" in e["message"], e
        finally:
            extra.close()
        # Existing ones are untouched.
        for c in (conns[0], conns[63], conns[-1], w.main, w.bystander):
            assert c.call("ward.hello")["server"] == "wardd"
        assert stats(w)["clients"] == 128
        # The cap is per uid: another user still gets in.
        h = nobody_hello(w)
        assert h["uid"] == 65534 and h["admin"] is False, h
        # Close some: a new root connection is accepted again.
        for c in conns[:5]:
            c.close()
        del conns[:5]

        def new_conn():
            c = conn(w)
            try:
                h = c.call("ward.hello")
            except (ConnectionError, AssertionError, OSError):
                c.close()
                return None
            conns.append(c)
            return h
        assert retry(new_conn, what="a connection after closing some")
    finally:
        for c in conns:
            c.close()
    retry(lambda: stats(w)["clients"] == 2, what="the clients to be gone")
    alive(w)


# Holds N connections to wardd as this process's uid, says "ready N" once
# each has answered ward.hello, and keeps them until its stdin closes.
HOLDER = r"""
import sys, wardtest
n = int(sys.argv[2])
cs = []
for _ in range(n):      # one at a time: never more than one in the backlog
    cs.append(wardtest.Client(sys.argv[1]))
    cs[-1].call("ward.hello")
print("ready", len(cs), flush=True)
sys.stdin.read()
"""


def test_connection_cap_total(w):
    """1024 connections in all, whoever holds them: 128 from root and 128
    from each of seven other uids fill it; an eighth uid is refused with
    the daemon-wide message, and gets in once one holder lets go."""
    retry(lambda: stats(w)["clients"] == 2, what="only the two clients")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(wardtest.__file__))
    holders = []
    conns = []
    try:
        conns = [conn(w) for _ in range(126)]
        for c in conns:
            c.call("ward.hello")
        for k in range(7):
            uid = 61000 + k
            p = subprocess.Popen(
                ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                 "--clear-groups", sys.executable, "-c", HOLDER, w.sock,
                 "128"], env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            holders.append(p)
            line = p.stdout.readline()	# one holder at a time, likewise
            assert line == "ready 128\n", (line, p.stderr.read())
        assert stats(w)["clients"] == 1024
        code = ("import json, wardtest\n"
                "c = wardtest.Client(%r)\n"
                "print(json.dumps(c.call('ward.hello')))\n" % w.sock)
        late = ["setpriv", "--reuid=61100", "--regid=61100", "--clear-groups",
                sys.executable, "-c", code]
        # Refused: one ward.error, then EOF (read without sending, so the
        # close is not a reset that loses it).
        listen = ("import json, socket, msgpack\n"
                  "s = socket.socket(socket.AF_UNIX)\n"
                  "s.settimeout(%r)\n"
                  "s.connect(%r)\n"
                  "data = b''\n"
                  "while True:\n"
                  "    d = s.recv(65536)\n"
                  "    if not d: break\n"
                  "    data += d\n"
                  "print(json.dumps(msgpack.unpackb(data)))\n" % (TIMEOUT, w.sock))
        out = subprocess.run(late[:-1] + [listen], env=env,
                             capture_output=True, text=True, timeout=TIMEOUT * 2)
        assert out.returncode == 0, out.stderr
        m = json.loads(out.stdout)
        assert m[0] == 2 and m[1] == "ward.error", m
        assert m[2][0]["code"] == "busy", m
        assert "too many clients" in m[2][0]["message"], m
        assert w.main.call("ward.hello")["server"] == "wardd"
        holders[0].stdin.close()
        holders[0].wait(timeout=TIMEOUT)

        def late_gets_in():
            r = subprocess.run(late, env=env, capture_output=True, text=True,
                               timeout=TIMEOUT)
            return r.returncode == 0 and '"uid": 61100' in r.stdout
        assert retry(late_gets_in, what="a connection once some are free")
    finally:
        for p in holders:
            if p.stdin and not p.stdin.closed:
                p.stdin.close()
            p.wait(timeout=TIMEOUT)
        for c in conns:
            c.close()
    retry(lambda: stats(w)["clients"] == 2, what="the clients to be gone")
    alive(w)


def test_emfile(w):
    """At its fd limit wardd drops newcomers instead of spinning, and
    accepts again once fds are free."""
    retry(lambda: stats(w)["clients"] == 2, what="only the two clients")
    pid = w.pid
    orig = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    nfds = len(os.listdir("/proc/%d/fd" % pid))
    # These clients are root's: besides the room, they may use the 32 fds
    # wardd keeps in reserve for admins (budget.c, BUDGET_FD_RESERVE), held
    # back only while it serves non-admins (test_budgets.py covers those).
    room = 10
    reserve = 32
    hz = os.sysconf("SC_CLK_TCK")
    conns = []
    try:
        # Only the soft limit: raising a hard limit back needs
        # CAP_SYS_RESOURCE, which a container may not grant.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (nfds + room, orig[1]))
        c0, w0 = cpu_ticks(pid), time.monotonic()
        for _ in range(60):
            conns.append(conn(w))   # connect succeeds: the backlog holds it
        # Holding all 60, wardd must idle. The window is three ticks of its
        # metrics timer (200 ms each) plus 50 round trips on the bystander;
        # a wardd spinning on accept would burn CPU for all of it.
        t0 = stats(w)["metrics_ticks"]
        for _ in range(50):
            assert w.bystander.call("ward.hello")["pid"] == pid
        retry(lambda: stats(w)["metrics_ticks"] >= t0 + 3,
              what="three metrics ticks")
        c1, w1 = cpu_ticks(pid), time.monotonic()
        cpu = (c1 - c0) / hz
        assert cpu < 0.5 * (w1 - w0), "wardd used %.2f s of CPU in %.2f s " \
            "at its fd limit" % (cpu, w1 - w0)
        # Each of the 60 was either accepted (and answers) or dropped.
        answered, dropped = [], []
        for k, c in enumerate(conns):
            try:
                c.send_raw(pack([0, 1, "ward.hello", []]))
                m = c._next(5)
            except (ConnectionResetError, BrokenPipeError):
                m = None
            except socket.timeout:
                raise AssertionError("connection %d is neither answered nor "
                                     "closed: wardd stopped accepting" % k)
            (answered if m is not None else dropped).append(c)
            if m is not None:
                assert m[1] == 1 and m[3]["server"] == "wardd", m
        assert 0 < len(answered) <= room + reserve, (len(answered), room)
        assert len(dropped) >= 60 - room - reserve, len(dropped)
        # A newcomer now is dropped too.
        late = conn(w)
        try:
            msgs = read_until_closed(late, 5)
        finally:
            late.close()
        assert msgs == [] or (len(msgs) == 1 and msgs[0][1] == "ward.error"
                              and msgs[0][2][0]["code"] == "busy"), msgs
        for c in answered:
            assert c.call("ward.hello")["server"] == "wardd"
        # Free the fds: new connections work again.
        for c in conns:
            c.close()
        conns = []

        def fresh():
            c = conn(w)
            try:
                return c.call("ward.hello")
            except (ConnectionError, OSError):
                return None
            finally:
                c.close()
        assert retry(fresh, what="a new connection after closing")
    finally:
        for c in conns:
            c.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, orig)
    retry(lambda: stats(w)["clients"] == 2, what="the clients to be gone")
    alive(w)


if __name__ == "__main__":
    wardtest.run(globals())
