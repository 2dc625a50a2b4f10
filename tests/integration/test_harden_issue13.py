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
"""
import http.client
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


if __name__ == "__main__":
    wardtest.run(globals())
