#!/usr/bin/python3
"""Issue 9, findings 4 (metrics half), 9, 13 and 14, each attacked as uid
nobody (65534) through setpriv, as a hostile local user would:

- 4: a payload with 65,000 mappings and rss_mapping set must not stall the
  loop while wardd reads its /proc/PID/smaps (ward.hello stays fast);
- 9: a declared program's name is reserved: nobody cannot squat it, and a
  name squatted before the program was declared is reported, then taken by
  the program once it is free;
- 13: every error reply is clean UTF-8 and says something; an invalid UTF-8
  name is invalid_argument, not not_found;
- 14: fds passed to an instance's NOTIFY_SOCKET are closed on receipt,
  whatever the sender (systemd-notify's barrier returns at once) and
  wardd's fd table does not grow.

wardd runs as root; tests that need to switch to nobody skip without root.
"""
import os
import subprocess
import textwrap
import time

import msgpack

import wardtest
from wardtest import TIMEOUT, Ward, as_nobody, retry, uniq, wait_dead


def need_root():
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root to act as nobody through setpriv")


def write_conf(w, name, text):
    with open(os.path.join(w.conf, name), "w") as f:
        f.write(textwrap.dedent(text))


def setup_module():
    w = Ward(args=["--metrics-interval", "100"])
    # Declared from the start: web loads (not started), broken does not.
    w.conf = os.path.join(w.dir, "conf")
    os.mkdir(w.conf)
    write_conf(w, "10-start.conf", """
        [program:web]
        command = %s hang
        autostart = false
        [program:broken]
        command = %s hang
        startsecs = soon
        """ % (wardtest.PAYLOAD, wardtest.PAYLOAD))
    w.extra += ["--config-dir", w.conf]
    w.start()
    w.root = w.client()
    w.shared_out()		# files that payloads running as nobody write
    return w


# ---- finding 4: /proc/PID/smaps of a payload with 65,000 mappings -------

MAPS = 65000


def test_smaps_of_65000_mappings_does_not_stall(w):
    need_root()
    name = uniq("maps")
    touched = (MAPS + 63) // 64		# payload.c's mmap step
    want_kb = touched * os.sysconf("SC_PAGESIZE") // 1024
    # nobody's payload maps 65,000 pages one mapping each, says READY=1 and
    # hangs; nobody then times ward.hello over 4 s of 100 ms ticks, and
    # waits for the mapping's Rss, which needs the whole smaps read.
    out = as_nobody(w, r'''
import time
name = %r
c.call("instance.run", {"name": name, "argv": %r,
                        "rss_mapping": "wardtest-maps"})
wardtest.retry(lambda: c.call("instance.status", {"name": name})
               ["payload_state"] == "ready", what="65,000 mappings")
worst, n, t_end = 0.0, 0, time.monotonic() + 4
while time.monotonic() < t_end:
    t0 = time.monotonic()
    c.call("ward.hello")
    worst = max(worst, time.monotonic() - t0)
    n += 1
    time.sleep(0.005)
st = wardtest.retry(lambda: (lambda s: s if s["metrics"]["rss_mapping_kb"]
                             >= %d else None)(
    c.call("instance.status", {"name": name})), what="rss_mapping_kb")
done({"worst_ms": worst * 1000, "hellos": n, "metrics": st["metrics"],
      "state": st["state"]})
''' % (name, wardtest.payload("mmap", MAPS, "notify", "READY=1", "hang"),
       want_kb), timeout=TIMEOUT * 3)
    print("# worst ward.hello latency with %d mappings: %.1f ms over %d "
          "calls" % (MAPS, out["worst_ms"], out["hellos"]), flush=True)
    assert out["state"] == "running", out
    assert out["metrics"]["rss_mapping_kb"] == want_kb, out
    # The target is 50 ms. Reading it all in one go took 380 ms on a quiet
    # machine and 1,363 ms with this one loaded (11 s on the machine of the
    # issue); sliced, 8-36 ms, and 600 ms at worst under ASan with five
    # fuzzers running beside it. So 250 ms, or 1,000 in a sanitizer build
    # (which the old code misses by far: it was that slow unsanitized).
    bound = 1000 if os.environ.get("WARD_SAN_CFLAGS") else 250
    assert out["worst_ms"] < bound, out
    w.root.call("instance.kill", {"name": name})
    wait_dead(w.root, name)


# ---- finding 13: error hygiene -------------------------------------------

# Sent as nobody on a raw connection: msgpack str (not bin) for bytes too,
# so names and keys arrive as invalid UTF-8 text; replies are read raw and
# every message is decoded strictly.
HYGIENE = r'''
import socket
import msgpack
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(os.environ["WARD_SOCK"])
u = msgpack.Unpacker(raw=True, strict_map_key=False)
argv = [x.encode() for x in %r]
cases = [
    ("instance.status", {"name": b"\xff\xfeweb"}),
    ("instance.status", {"name": b"a\x00b"}),
    ("instance.status", {"name": b""}),
    ("instance.status", {"name": b"x" * 65}),
    ("instance.kill", {"name": b"\xc3"}),
    ("instance.status", {"name": b"nosuch"}),
    (b"\xff\xfeward.hello", {}),
    ("instance.status", {b"a" + "\u00e9".encode() * 40: 1}),
    ("instance.create", {"name": b"\xe2\x82", "argv": argv}),
    ("instance.create", {"name": b"ok-name", "argv": [b"\xff"]}),
    ("instance.create", {"name": b"ok-name", "argv": argv,
                         "env": {b"K\xff": b"v"}}),
    ("instance.create", {"name": b"ok-name", "argv": argv,
                         "cwd": b"/\xff/x"}),
    ("instance.create", {"name": b"ok-name", "argv": argv,
                         "rss_mapping": b"\xf0\x9f"}),
    ("instance.create", {"name": b"ok-name", "argv": argv,
                         "exit_codes": {b"\xff": b"X"}}),
    ("instance.create", {"name": b"ok-name", "argv": [b"/no/such\xff"]}),
    ("instance.history", {"name": b"a\x00"}),
    ("instance.list", {"state": b"\xff"}),
]
out = []
for k, (method, params) in enumerate(cases):
    s.sendall(msgpack.packb([0, k, method, [params]], use_bin_type=False))
    while True:
        try:
            m = next(u)
            break
        except StopIteration:
            data = s.recv(65536)
            assert data, "wardd closed the connection"
            u.feed(data)
    assert m[0] == 1 and m[1] == k, m
    err = m[2]
    assert isinstance(err, dict) and set(err) == {b"code", b"message"}, m
    try:
        msg = err[b"message"].decode("utf-8")
    except UnicodeDecodeError:
        msg = "NOT UTF-8: %%r" %% err[b"message"]
    out.append([err[b"code"].decode(), msg])
done(out)
'''


def test_error_replies_are_clean_and_say_why(w):
    need_root()
    out = as_nobody(w, HYGIENE % (wardtest.payload("hang"),))
    codes = [c for c, _ in out]
    for code, msg in out:
        print("# %s: %s" % (code, msg), flush=True)
    want = ["invalid_argument"] * 5 + ["not_found", "no_such_method"] + \
        ["invalid_argument"] * 10
    assert codes == want, out
    for code, msg in out:
        assert not msg.startswith("NOT UTF-8"), (code, msg)
        assert len(msg) >= 10 and msg.isprintable(), (code, msg)
    # An invalid name is a bad argument that says what a name must be.
    assert "UTF-8" in out[0][1] and "'name'" in out[0][1], out[0]
    assert out[5][1] == "no instance named 'nosuch'", out[5]
    # Bad bytes quoted back come as U+FFFD, even cut mid-character.
    assert out[6][1] == "no method '\ufffd\ufffdward.hello'", out[6]
    assert out[7][1].startswith("instance.status: unknown key 'a\u00e9"), \
        out[7]


# ---- finding 9: declared program names are reserved --------------------

def ctl(w, *a):
    """wardctl (as root) on w's socket."""
    return subprocess.run([wardtest.WARDCTL, "--socket", w.sock] +
                          [str(x) for x in a], capture_output=True,
                          text=True, timeout=TIMEOUT)


def create_as_nobody(w, name):
    return as_nobody(w, r'''
done(attempt("instance.create", {"name": %r, "argv": %r}))
''' % (name, wardtest.payload("hang")))


def test_declared_names_reserved_at_start(w):
    need_root()
    # web's own instance has the name: the usual answer.
    r = create_as_nobody(w, "web")
    assert r["code"] == "exists", r
    # broken did not load, but it is declared: its name is reserved too,
    # for everyone but the program; only admins learn where.
    r = create_as_nobody(w, "broken")
    assert r["code"] == "exists", r
    assert "belongs to a program declared in wardd's configuration" in \
        r["message"] and w.conf not in r["message"], r
    err = w.root.error("instance.create", {"name": "broken",
                                           "argv": wardtest.payload("hang")})
    assert err["code"] == "exists", err
    assert "10-start.conf:5" in err["message"], err
    assert not any(i["name"] == "broken" for i in
                   w.root.call("instance.list")), "broken was created"


def test_reread_reserves_without_update(w):
    need_root()
    write_conf(w, "20-later.conf", """
        [program:later]
        command = %s hang
        """ % wardtest.PAYLOAD)
    try:
        r = w.root.call("ward.reread")
        assert r["added"] == ["later"], r
        r = create_as_nobody(w, "later")
        assert r["code"] == "exists" and "belongs to a program" in \
            r["message"], r
    finally:
        os.unlink(os.path.join(w.conf, "20-later.conf"))
    # Undeclared again: free again.
    w.root.call("ward.reread")
    r = create_as_nobody(w, "later")
    assert "ok" in r and r["ok"]["name"] == "later", r
    as_nobody(w, 'done(attempt("instance.remove", {"name": "later"}))')


def test_squatted_name_reported_then_taken(w):
    """nobody takes a name before an admin declares it: update reports the
    holder (wardctl shows it), rereads keep saying so, and the program is
    created the moment nobody's instance is removed."""
    need_root()
    r = as_nobody(w, r'''
done(attempt("instance.run", {"name": "squat", "argv": %r}))
''' % (wardtest.payload("hang"),))
    assert "ok" in r, r
    squat_id = r["ok"]["id"]
    write_conf(w, "30-squat.conf", """
        [program:squat]
        command = %s hang
        """ % wardtest.PAYLOAD)
    try:
        p = ctl(w, "update")
        assert p.returncode == 0, p
        assert "squat: added" in p.stdout, p
        want = "30-squat.conf:2: [program:squat]: the name is held by " \
               "instance %d of uid 65534" % squat_id
        assert want in p.stderr, p
        st = w.root.call("instance.status", {"name": "squat"})
        assert st["id"] == squat_id and st["owner_uid"] == 65534, st
        assert "program" not in st, st
        # Never silent: every reread says it again, and the log has it.
        r = w.root.call("ward.reread")
        assert any(want in e for e in r["errors"]), r
        assert want in w.read_log(), "not logged"
        # nobody lets go of it: the program takes it, and starts.
        r = as_nobody(w, r'''
c.call("instance.kill", {"name": "squat"})
wardtest.wait_dead(c, "squat")
done(attempt("instance.remove", {"name": "squat"}))
''')
        assert r == {"ok": {"ok": True}}, r
        st = retry(lambda: (lambda l: l[0] if l and "program" in l[0] and
                            l[0]["state"] == "running" else None)(
            [i for i in w.root.call("instance.list") if i["name"] == "squat"]),
            what="the program to take its name")
        assert st["owner_uid"] == os.geteuid() and st["id"] != squat_id, st
        r = w.root.call("ward.reread")
        assert not any("squat" in e for e in r["errors"]), r
        r = create_as_nobody(w, "squat")
        assert r["code"] == "exists", r
    finally:
        os.unlink(os.path.join(w.conf, "30-squat.conf"))
        w.root.call("ward.update")
        retry(lambda: all(i["name"] != "squat" for i in
                          w.root.call("instance.list")), what="squat to go")


# ---- finding 14: fds passed to an instance's NOTIFY_SOCKET --------------

def fd_count(w):
    """wardd's open fds, once those it holds only for a while are closed
    (trash.c's directories, snapshot.c's state.tmp)."""
    retry(lambda: wardtest.fds_settled(w, w.root), what="wardd's fds to settle")
    return len(os.listdir("/proc/%d/fd" % w.proc.pid))


def test_systemd_notify_barrier_returns(w):
    """systemd-notify sends BARRIER=1 with an fd and waits (5 s at most)
    until the receiver closes it: from the instance's session and from a
    session of its own (a sender wardd does not believe), both return 0
    at once."""
    need_root()
    dropped = w.root.call("ward.stats")["channel"]["notify_dropped"]
    name = uniq("barrier")
    out = os.path.join(w.out, name + ".out")
    script = ('systemd-notify STATUS=inside; echo "inside $?" > %s; '
              'setsid -w systemd-notify STATUS=outside; '
              'echo "outside $?" >> %s' % (out, out))
    r = as_nobody(w, r'''
done(attempt("instance.run", {"name": %r, "notify": "systemd",
                              "argv": ["/bin/sh", "-c", %r]}))
''' % (name, script))
    assert "ok" in r, r
    st = wait_dead(w.root, name, timeout=TIMEOUT)
    with open(out) as f:
        lines = f.read().split("\n")
    assert lines[:2] == ["inside 0", "outside 0"], (lines, st)
    # Two barriers at 5 s each would take 10 s; closed at once, far less.
    assert st["uptime_ms"] < 4000, st
    assert st["status_text"] == "inside", st
    # STATUS=outside and its BARRIER=1: placed with no instance (the one
    # NOTIFY_SOCKET is shared, issue 12), dropped and counted.
    assert w.root.call("ward.stats")["channel"]["notify_dropped"] \
        >= dropped + 2
    assert st["sd_notify_dropped"] == 0, st
    assert st["exit_code"] == 0, st


def test_passed_fds_closed_on_receipt(w):
    """A payload sends 11 datagrams of 64 fds each, and a process outside
    its session (nobody too) 10 of 253 each: wardd's fd table is back to
    where it was while the instance still runs."""
    need_root()
    name = uniq("fds")
    go = os.path.join(w.out, name + ".go")
    end = os.path.join(w.out, name + ".end")
    steps = ["notify", "READY=1", "wait-file", go]
    for k in range(10):
        steps += ["sdnotifyfds", 64, "STATUS=a%d" % k]
    steps += ["sdnotifyfds", 64, "STATUS=done", "wait-file", end]
    r = as_nobody(w, r'''
done(attempt("instance.run", {"name": %r, "notify": "systemd",
                              "argv": %r}))
''' % (name, wardtest.payload(*steps)))
    assert "ok" in r, r
    retry(lambda: w.root.call("instance.status", {"name": name})
          ["payload_state"] == "ready", what="ready")
    base = fd_count(w)
    open(go, "w").close()
    st = retry(lambda: (lambda s: s if s["status_text"] == "done" else None)(
        w.root.call("instance.status", {"name": name})), what="STATUS=done")
    assert st["state"] == "running", st
    assert fd_count(w) == base, (fd_count(w), base)
    # From outside the session: dropped, and still closed.
    sock = os.path.join(w.state, "notify")
    dropped = w.root.call("ward.stats")["channel"]["notify_dropped"]
    r = as_nobody(w, r'''
import array, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
fds = array.array("i", [os.open("/dev/null", os.O_RDONLY) for _ in range(253)])
for k in range(10):
    s.sendmsg([b"STATUS=foreign"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     fds.tobytes())], 0, %r)
done({"sent": 10})
''' % sock)
    assert r == {"sent": 10}, r
    retry(lambda: w.root.call("ward.stats")["channel"]["notify_dropped"]
          >= dropped + 10, what="10 dropped")
    st = w.root.call("instance.status", {"name": name})
    assert st["status_text"] == "done", st
    assert fd_count(w) == base, (fd_count(w), base)
    open(end, "w").close()
    wait_dead(w.root, name)


if __name__ == "__main__":
    wardtest.run(globals())
