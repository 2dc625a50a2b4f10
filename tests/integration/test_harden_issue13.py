#!/usr/bin/python3
"""Issue 13's features attacked by a local non-admin (uid 65534 through
setpriv) and by hostile payloads; each test is an attack that worked before
its fix.

- ward.metrics' deaths by reason: a payload names its own death reason, so
  a non-admin whose payloads died with 256 made-up names filled the table
  of reasons counted apart, and every later reason, an admin's instance's
  WATCHDOG or OUT_OF_MEMORY included, was only "_other" from then on (and
  the table is carried across a re-exec). Part of the table is now kept
  for the deaths of admins' instances.
- wardd --metrics-listen: 16 sockets that connect and say nothing took
  every slot, so scrapes were answered 503 for as long as any local user
  kept opening them again (each is closed 5 s after its connect). The
  oldest that has not sent its whole head now gives its slot to a new
  connection.
- instance.call: the payload's replies were queued for the caller however
  much it had left unread: a non-admin whose own payloads answered 64
  pending calls each with nearly 1 MiB, on a connection it did not read,
  made wardd hold 64 MiB per instance, past its whole buffer budget. A
  reply that finds the caller over its buffer budget (or its connection
  over its output cap) is now answered resource_exhausted instead.
"""
import http.client
import os
import socket

import wardtest
from wardtest import Ward, as_nobody, nobody_popen, retry

W = None
C = None


def setup_module():
    global W, C
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    W = Ward(args=["--metrics-listen", "127.0.0.1:%d" % port])
    W.port = port
    W.start()
    C = W.client()
    return W


def deaths(c):
    """ward.metrics' ward_deaths_total samples: {reason: count}."""
    out = {}
    for line in c.call("ward.metrics", {"format": "text"}).splitlines():
        if line.startswith("ward_deaths_total{reason=\""):
            reason = line.split('"')[1]
            out[reason] = int(float(line.rsplit(" ", 1)[1]))
    return out


def test_nonadmin_reasons_cannot_crowd_out_admins():
    out = as_nobody(W, r'''
names = []
for k in range(300):
    r = attempt("instance.run", {"name": "crowd%d" % k, "argv":
        ["/bin/sh", "-c", "printf NOBODY_%d >&3" % k]})
    if "ok" in r:
        names.append("crowd%d" % k)
def all_dead():
    return all(c.call("instance.status", {"name": n})["state"] in
               ("dead", "failed") for n in names)
wardtest.retry(all_dead, what="the crowd to die")
done({"ran": len(names)})
''', timeout=120)
    assert out["ran"] == 300, out
    seen = deaths(C)
    assert sum(1 for r in seen if r.startswith("NOBODY_")) > 0, seen
    C.call("instance.run", {"name": "rootvictim", "argv":
           ["/bin/sh", "-c", "printf ROOT_ALARM >&3"]})
    wardtest.wait_dead(C, "rootvictim")
    seen = retry(lambda: (lambda d: d if "ROOT_ALARM" in d else None)(
        deaths(C)), what="ROOT_ALARM counted apart")
    assert seen["ROOT_ALARM"] == 1, seen



def scrapes_held():
    return sum(1 for e in C.call("ward.fds")
               if e["owner"] == "http: metrics scrape")


def test_idle_sockets_cannot_keep_scrapes_out():
    p = nobody_popen(W, r'''
import socket
held = [socket.create_connection(("127.0.0.1", %d)) for _ in range(16)]
done({"held": len(held)})
sys.stdin.read()
''' % W.port)
    try:
        assert p.stdout.readline()
        retry(lambda: scrapes_held() == 16, what="16 idle scrapes held")
        conn = http.client.HTTPConnection("127.0.0.1", W.port, timeout=10)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        assert r.status == 200 and "ward_instances" in body, (r.status, body)
    finally:
        p.stdin.close()
        p.wait(wardtest.TIMEOUT)


HOARD_SRC = r"""
import os, socket, msgpack
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(os.environ["WARD_CONTROL_SOCKET"])
l.listen(8)
s, _ = l.accept()
u = msgpack.Unpacker(raw=False)
held = []
while True:
    data = s.recv(1 << 16)
    if not data:
        break
    u.feed(data)
    for m in u:
        if m[2] == "hoard":
            held.append(m[1])
            continue
        if m[2] == "go":	# every call pending: all answered at once
            for msgid in held:
                s.sendall(msgpack.packb([1, msgid, None, "x" * 1000000]))
        s.sendall(msgpack.packb([1, m[1], None, len(held)]))
"""


def wardd_rss_mib():
    with open("/proc/%d/status" % W.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


def test_unread_call_replies_stay_within_budget():
    script = os.path.join(W.dir, "hoard.py")
    with open(script, "w") as f:
        f.write(HOARD_SRC)
    os.chmod(script, 0o644)
    names = ["hoard%d" % k for k in range(3)]
    before = wardd_rss_mib()
    p = nobody_popen(W, r"""
for n in %r:
    c.call("instance.run", {"name": n, "argv": ["/usr/bin/python3", %r],
        "control": True})
    wardtest.retry(lambda: "ok" in attempt("instance.call", {"name": n,
        "method": "count"}), what="the payload listening")
for n in %r:
    for k in range(60):
        c.request("instance.call", {"name": n, "method": "hoard",
                                    "timeout_ms": 60000})
done({"sent": True})
sys.stdin.read()		# holds its connection, reads nothing
""" % (names, script, names))
    try:
        assert p.stdout.readline()
        # Every call is read by wardd (none is answered yet)...
        for n in names:
            retry(lambda: C.call("instance.call", {"name": n, "method":
                  "count"}) == 60, what="%s's 60 calls pending" % n)
        # ...then answered: root's "go" once its payload sent them all.
        for n in names:
            assert C.call("instance.call", {"name": n, "method": "go",
                          "timeout_ms": 30000}) == 60
        # What the unread answers hold is charged to nobody's buffer
        # budget (a buffer's capacity may be twice what it holds)...
        st = C.call("ward.stats")
        limit = st["limits"]["max_user_buffer"]
        held = [b["buffer_bytes"] for b in st["budgets"] if b["uid"] == 65534]
        assert held and held[0] <= 2 * limit + (2 << 20), (held, limit)
        # ...and nothing else grew (ASan's quarantine keeps freed replies:
        # its RSS says nothing).
        with open("/proc/%d/maps" % W.proc.pid) as f:
            asan = "libasan" in f.read()
        grown = wardd_rss_mib() - before
        assert asan or grown < 128, "wardd grew by %d MiB" % grown
    finally:
        p.stdin.close()
        p.wait(wardtest.TIMEOUT)
        for n in names:
            try:
                C.call("instance.kill", {"name": n, "signal": "KILL"})
                wardtest.wait_dead(C, n)
                C.call("instance.remove", {"name": n})
            except wardtest.WardError:
                pass


if __name__ == "__main__":
    wardtest.run(globals())
