#!/usr/bin/python3
"""Issue 13, item 10: ward.metrics and wardd --metrics-listen.

ward.metrics returns the OpenMetrics text (or Prometheus' 0.0.4 text with
format "text", which `promtool check metrics` must pass without a word);
its families hold a few instances with their labels, deaths counted by
reason, and only what the caller may see. GET /metrics serves the same on
wardd's loop with fixed bounds: 404, 405, 400 and 431 for the wrong
requests, 503 past 16 connections, a slowloris client neither blocking a
scrape nor ward.hello and closed by its deadline; the listener is listed
by ward.fds and survives ward.reexec. Last, a real Prometheus server
scrapes wardd and its HTTP API must return the samples (skipped only when
the prometheus binary is absent).
"""
import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import wardtest
from wardtest import Skip, Ward, as_nobody, payload, retry, uniq, wait_dead

# What Prometheus 2.42 sends (scrape/scrape.go, acceptHeader).
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
               "application/openmetrics-text;version=0.0.1;q=0.75,"
               "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setup_module():
    port = free_port()
    w = Ward(args=["--metrics-listen", "127.0.0.1:%d" % port,
                   "--metrics-interval", "100"])
    w.port = port
    w.start()
    w.root = w.client()
    return w


def get(w, path="/metrics", method="GET", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=10)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, dict(r.getheaders()), body


def raw(w, data, timeout=10):
    """Send data on a new connection; all wardd answers until it closes."""
    s = socket.create_connection(("127.0.0.1", w.port), timeout=timeout)
    s.sendall(data)
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:	# after the answer: input unread
            break
        if not b:
            break
        out += b
    s.close()
    return out.decode(errors="replace")


def families(text, om=True):
    """{family: {"type", "unit", "samples": [(name, labels, value)]}},
    checking the exposition's shape as OpenMetrics requires: each family's
    samples right after its metadata and nowhere else, counters' samples
    named _total, a unit the name's suffix, # EOF last."""
    lines = text.split("\n")
    if om:
        assert lines[-2:] == ["# EOF", ""], lines[-3:]
        lines = lines[:-2]
    else:
        assert "# EOF" not in text and "# UNIT" not in text
        lines = lines[:-1]
    fams, cur, done = {}, None, set()
    sample = re.compile(r'^([a-z_]+)(\{(.*)\})? (\S+)$')
    for line in lines:
        if line.startswith("# "):
            kw, name, rest = line[2:].split(" ", 2)
            fam = name[:-6] if not om and name.endswith("_total") else name
            if fam != cur:
                assert fam not in done, "family %s split" % fam
                if cur is not None:
                    done.add(cur)
                cur = fam
                fams[fam] = {"samples": [], "type": None, "unit": None}
            fams[fam][kw.lower()] = rest
            continue
        m = sample.match(line)
        assert m, "bad sample line %r" % line
        name = m.group(1)
        assert cur is not None and fams[cur]["type"] is not None
        want = cur + "_total" if fams[cur]["type"] == "counter" else cur
        assert name == want, "%s in family %s" % (name, cur)
        labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"',
                                 m.group(3) or ""))
        fams[cur]["samples"].append((name, labels, float(m.group(4))))
    for fam, f in fams.items():
        if f["unit"]:
            assert fam.endswith("_" + f["unit"]), fam
    return fams


def samples(fams, fam, **match):
    return [(lab, v) for _, lab, v in fams[fam]["samples"]
            if all(lab.get(k) == str(x) for k, x in match.items())]


def test_families_labels_and_deaths(w):
    c = w.root
    deaths = families(c.call("ward.metrics"))["ward_deaths"]["samples"]
    before = {lab["reason"]: v for _, lab, v in deaths}
    running = uniq("om.run@a:b-")
    r = c.call("instance.run", {"name": running, "argv": payload("hang")})
    failing = []
    for _ in range(2):
        n = uniq("om-fail")
        c.call("instance.run", {"name": n, "argv": payload(
            "fail", "OM_TEST_REASON|boom", "exit", "1")})
        failing.append(n)
    waiting = uniq("om-new")
    made = c.call("instance.create", {"name": waiting, "argv": payload("hang")})
    for n in failing:
        wait_dead(c, n)
    # Sampled at least once (100 ms metrics): its RSS is there.
    retry(lambda: c.call("instance.status", {"id": r["id"]})["metrics"]
          ["rss_kb"], what="a metrics sample")
    fams = families(c.call("ward.metrics"))
    assert fams.keys() == families(c.call(
        "ward.metrics", {"format": "openmetrics"})).keys()
    for fam, typ, unit in [
            ("ward_instances", "gauge", None),
            ("ward_deaths", "counter", None),
            ("ward_program_restarts", "counter", None),
            ("ward_instance_runs", "counter", None),
            ("ward_instance_cpu_seconds", "counter", "seconds"),
            ("ward_instance_rss_bytes", "gauge", "bytes"),
            ("ward_instance_max_rss_bytes", "gauge", "bytes"),
            ("ward_instance_uptime_seconds", "gauge", "seconds"),
            ("ward_connections", "gauge", None),
            ("ward_connections_accepted", "counter", None),
            ("ward_requests", "counter", None),
            ("ward_event_subscribers_dropped", "counter", None),
            ("ward_dropped_datagrams", "counter", None)]:
        assert fams[fam]["type"] == typ, fam
        assert fams[fam]["unit"] == unit, fam
        assert fams[fam]["help"], fam
    st = {lab["state"]: v for lab, v in samples(fams, "ward_instances")}
    assert st["running"] >= 1 and st["dead"] >= 2 and st["not_started"] >= 1
    after = {lab["reason"]: v for _, lab, v in fams["ward_deaths"]["samples"]}
    assert after["OM_TEST_REASON"] == before.get("OM_TEST_REASON", 0) + 2
    lab, v = samples(fams, "ward_instance_rss_bytes", name=running)[0]
    assert lab == {"id": str(r["id"]), "name": running, "program": "",
                   "owner": str(os.getuid())}, lab
    assert v > 0
    assert samples(fams, "ward_instance_max_rss_bytes", name=running)[0][1] >= v
    assert samples(fams, "ward_instance_runs", name=running)[0][1] == 1
    assert samples(fams, "ward_instance_runs", id=made["id"])[0][1] == 0
    assert len(samples(fams, "ward_instance_cpu_seconds", name=running)) == 2
    assert samples(fams, "ward_instance_uptime_seconds", name=running)[0][1] > 0
    assert samples(fams, "ward_requests")[0][1] >= 5
    # The 0.0.4 text: the same samples, counters' TYPE on the _total name.
    t = families(c.call("ward.metrics", {"format": "text"}), om=False)
    assert t["ward_deaths"]["type"] == "counter"
    assert "# TYPE ward_deaths_total counter" in c.call(
        "ward.metrics", {"format": "text"})
    try:
        c.call("ward.metrics", {"format": "json"})
        raise AssertionError("format json accepted")
    except wardtest.WardError as e:
        assert e.code == "invalid_argument"
    c.call("instance.kill", {"id": r["id"]})
    wait_dead(c, running)


def test_promtool_check_metrics(w):
    if shutil.which("promtool") is None:
        raise Skip("promtool is not installed (Debian's prometheus package)")
    text = w.root.call("ward.metrics", {"format": "text"})
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0 and out.strip() == "", out
    # What a scraper without OpenMetrics gets over HTTP: the same check.
    status, _, body = get(w)
    p = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0 and out.strip() == "", out


def test_nobody_sees_only_its_own(w):
    mine = uniq("om-root")
    w.root.call("instance.create", {"name": mine, "argv": ["/bin/true"]})
    theirs = uniq("om-nobody")
    out = as_nobody(w, '''
c.call("instance.create", {"name": %r, "argv": ["/bin/true"]})
done(c.call("ward.metrics"))
''' % theirs)
    assert 'name="%s"' % theirs in out
    assert 'name="%s"' % mine not in out
    assert "ward_program_restarts" in out and "# EOF" in out
    assert 'name="%s"' % mine in w.root.call("ward.metrics")
    assert 'name="%s"' % theirs in w.root.call("ward.metrics")


def test_wardctl_metrics(w):
    """wardctl metrics prints ward_metrics()'s text (libward) as it is."""
    def ctl(*args):
        p = subprocess.run([wardtest.WARDCTL, "--socket", w.sock, "metrics"] +
                           list(args), capture_output=True,
                           timeout=wardtest.TIMEOUT)
        assert p.returncode == 0, p.stderr
        return p.stdout.decode()
    om, text = ctl(), ctl("--text")
    assert families(om).keys() == families(text, om=False).keys()
    assert "# TYPE ward_deaths counter" in om
    assert "# TYPE ward_deaths_total counter" in text
    p = subprocess.run([wardtest.WARDCTL, "--socket", w.sock, "metrics",
                        "--json-please"], capture_output=True)
    assert p.returncode != 0


def test_http_negotiates_and_refuses_the_rest(w):
    status, h, body = get(w, headers={"Accept": PROM_ACCEPT})
    assert status == 200 and h["Content-Type"] == OM_TYPE, h
    assert h["Connection"] == "close" and int(h["Content-Length"]) == len(body)
    families(body)
    status, h, body = get(w)
    assert status == 200 and h["Content-Type"] == TEXT_TYPE, h
    families(body, om=False)
    status, h, _ = get(w, headers={
        "Accept": "application/openmetrics-text;q=0,text/plain"})
    assert h["Content-Type"] == TEXT_TYPE
    # Parameter names are case-insensitive; "xq=" is no q parameter.
    status, h, _ = get(w, headers={
        "Accept": "application/openmetrics-text; Q=0,text/plain"})
    assert h["Content-Type"] == TEXT_TYPE, h
    status, h, _ = get(w, headers={
        "Accept": "application/openmetrics-text;xq=0,text/plain"})
    assert h["Content-Type"] == OM_TYPE, h
    status, h, body = get(w, "/metrics?x=1", method="HEAD")
    assert status == 200 and body == "" and int(h["Content-Length"]) > 0
    assert get(w, "/nothing")[0] == 404	# "/": the status page
    assert get(w, "/metricsx")[0] == 404
    status, h, _ = get(w, method="POST")
    assert status == 405 and h["Allow"] == "GET, HEAD"
    assert get(w, method="DELETE")[0] == 405
    for junk in [b"junk\r\n\r\n", b"GET /metrics\r\n\r\n",
                 b"GET /metrics HTTP/2.0\r\n\r\n",
                 b"GET  /metrics HTTP/1.1\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n",
                 b"G(T /metrics HTTP/1.1\r\n\r\n"]:
        assert raw(w, junk).startswith("HTTP/1.1 400 "), junk
    # Random heads: each gets an answer (or a close), wardd carries on.
    rnd = random.Random(13)
    for _ in range(200):
        junk = bytes(rnd.choice(b"GET /metrics HTTP/1.1:\r\n \x00\x7f\xffab")
                     for _ in range(rnd.randrange(1, 120))) + b"\r\n\r\n"
        out = raw(w, junk)
        assert re.match(r"HTTP/1\.1 [2-5]\d\d ", out), (junk, out)
    assert w.root.call("ward.hello")["server"] == "wardd"
    big = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    assert raw(w, big).startswith("HTTP/1.1 431 ")
    # Bare LFs end a head too, and HTTP/1.0 is served.
    out = raw(w, b"GET /metrics HTTP/1.0\n\n")
    assert out.startswith("HTTP/1.1 200 ") and "ward_instances" in out


def test_slowloris_bounded(w):
    """16 connections that never finish their head hold every slot: the
    17th takes the oldest one's slot (closed at once: test_harden_issue13);
    ward.hello is answered meanwhile; once their 5 s deadline passes wardd
    closes them."""
    slow = []

    def hold():
        s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")	# no blank line
        slow.append(s)
    for _ in range(15):
        hold()
    t0 = time.monotonic()
    retry(lambda: sum(1 for e in w.root.call("ward.fds")
                      if e["owner"] == "http: metrics scrape") == 15,
          what="15 scrapes held")
    status, _, body = get(w)		# the 16th slot: served at once
    assert status == 200 and "ward_instances" in body
    hold()
    retry(lambda: sum(1 for e in w.root.call("ward.fds")
                      if e["owner"] == "http: metrics scrape") == 16,
          what="16 scrapes held")
    assert raw(w, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(
        "HTTP/1.1 200 ")
    # Every fd wardd holds is listed (test_fds.py's rule): the held ones too.
    retry(lambda: wardtest.fds_settled(w, w.root), what="fds to settle")
    listed = {e["fd"] for e in w.root.call("ward.fds")}
    unlisted = {fd: what for fd, what in wardtest.wardd_fds(w).items()
                if fd not in listed and what not in (
                    "anon_inode:[eventpoll]", "anon_inode:[eventfd]")}
    assert len(unlisted) <= 1, unlisted	# libsystemd's journal socket
    h0 = time.monotonic()
    w.root.call("ward.hello")
    assert time.monotonic() - h0 < 1.0
    for s in slow:
        assert s.recv(1) == b""		# closed by wardd, at its deadline
    waited = time.monotonic() - t0
    assert 3.0 < waited < 10.0, waited
    for s in slow:
        s.close()
    assert get(w)[0] == 200
    fams = families(w.root.call("ward.metrics"))
    out = {lab["outcome"]: v for lab, v in samples(fams, "ward_http_requests")}
    assert out["timeout"] >= 16


def test_listener_listed_and_kept_across_reexec(w):
    c = w.root
    fds = {e["fd"]: e["owner"] for e in c.call("ward.fds")}
    lst = [fd for fd, o in fds.items() if o == "http: metrics listener"]
    assert len(lst) == 1
    # The listener is wardd's only TCP listener, and /proc agrees.
    assert wardtest.wardd_fds(w)[lst[0]].startswith("socket:")
    deaths = families(c.call("ward.metrics"))["ward_deaths"]["samples"]
    n = c.call("ward.stats")["reexecs"]
    assert c.call("ward.reexec") == {"ok": True}
    retry(lambda: c.call("ward.stats")["reexecs"] == n + 1, what="re-exec")
    fds = {e["fd"]: e["owner"] for e in c.call("ward.fds")}
    assert fds.get(lst[0]) == "http: metrics listener", fds
    assert get(w, headers={"Accept": PROM_ACCEPT})[0] == 200
    # Deaths by reason are carried in the state.
    assert families(c.call("ward.metrics"))["ward_deaths"]["samples"] == deaths


def test_deaths_by_reason_survive_a_crash(w):
    """A wardd killed outright (no fd store) comes back with the deaths
    by reason it had counted: they are in STATE_DIR/state."""
    c = w.root
    c.call("instance.run", {"name": uniq("crashy"),
                            "argv": payload("fail", "BEFORE_THE_CRASH", "exit", 1)})
    retry(lambda: ("BEFORE_THE_CRASH" in c.call("ward.metrics") and
                   not c.call("ward.stats")["snapshot"]["pending"]),
          what="the death counted and the state written")
    deaths = families(c.call("ward.metrics"))["ward_deaths"]["samples"]
    w.proc.kill()
    w.proc.wait()
    w.restart()
    w.root = c = w.client()
    assert families(c.call("ward.metrics"))["ward_deaths"]["samples"] == deaths
    assert get(w, headers={"Accept": PROM_ACCEPT})[0] == 200


def test_listen_address_checked(w):
    """A bad ADDR:PORT is a bad option (status 2, before anything starts);
    one that cannot be bound a failure to start (status 1)."""
    for addr, rc, said in [("localhost:9101", 2, "numeric address"),
                           ("127.0.0.1", 2, "ADDR:PORT"),
                           ("127.0.0.1:0", 2, "1 to 65535"),
                           ("127.0.0.1:99999", 2, "1 to 65535"),
                           ("127.0.0.1:%d" % w.port, 1, "in use")]:
        d = os.path.join(w.dir, "bad-%d" % rc)
        p = subprocess.run([wardtest.WARDD, "--socket", d + ".sock",
                            "--state-dir", d, "--metrics-listen", addr],
                           capture_output=True, timeout=wardtest.TIMEOUT)
        err = (p.stdout + p.stderr).decode()
        assert p.returncode == rc and said in err, (addr, p.returncode, err)


def test_prometheus_scrapes_wardd(w):
    prom = shutil.which("prometheus")
    if prom is None:
        raise Skip("prometheus is not installed (Debian's prometheus package)")
    d = os.path.join(w.dir, "prom")
    os.makedirs(d)
    conf = os.path.join(d, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: ward\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % w.port)
    port = free_port()
    log = open(os.path.join(d, "log"), "wb")
    p = subprocess.Popen([prom, "--config.file=" + conf,
                          "--storage.tsdb.path=" + os.path.join(d, "data"),
                          "--web.listen-address=127.0.0.1:%d" % port],
                         stdout=log, stderr=log)
    name = uniq("om-prom")
    w.root.call("instance.create", {"name": name, "argv": ["/bin/true"]})

    def query(q):
        if p.poll() is not None:
            raise AssertionError("prometheus exited:\n" + open(
                os.path.join(d, "log")).read()[-3000:])
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (
            port, urllib.parse.quote(q))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                import json
                res = json.load(r)["data"]["result"]
        except OSError:
            return None
        return res or None

    try:
        up = retry(lambda: query('up{job="ward"}'), timeout=25,
                   what="prometheus to scrape wardd")
        assert up[0]["value"][1] == "1", up
        res = retry(lambda: query('ward_instance_runs_total{name="%s"}' % name),
                    timeout=10, what="a ward sample in prometheus")
        assert res[0]["metric"]["id"] and res[0]["value"][1] == "0", res
        # Prometheus asked for OpenMetrics and parsed it without an error.
        url = "http://127.0.0.1:%d/api/v1/targets" % port
        import json
        with urllib.request.urlopen(url, timeout=2) as r:
            t = json.load(r)["data"]["activeTargets"][0]
        assert t["health"] == "up" and t["lastError"] == "", t
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def teardown_module(w):
    w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
