#!/usr/bin/env python3
"""Issue 14: the status page of wardd --http-listen, in headless Chromium.

The page is loaded in Debian's chromium through chromedriver (selenium);
a known instance must appear, then die with a reason it wrote on fd 3,
and the page must show both from its DOM without a reload (server-sent
events). The reason carries markup that must be shown as text. A
screenshot is kept in $builddir/tests/artifacts/statuspage.png.

Without a browser: the event stream's bounds (a client that never reads
is dropped, and wardd's fds and memory stay bounded; the 9th stream is
refused while /metrics is still served; a first table bigger than the
cap goes out whole; a re-exec ends the streams and the next one carries
on) and who may read output tails (nobody without --http-auth; with it,
only who gives its credentials, also in Chromium, who also sees what a
payload wrote on fd 3 as text).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get("WARD_SRCDIR", "."), "tests",
                                "lib"))
import wardtest                                        # noqa: E402
from wardtest import Skip, retry, TIMEOUT              # noqa: E402

INJECT = '<img src=x onerror="window.pwned=1"><b id="inj">boom</b>'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PageWard(wardtest.Ward):
    def __init__(self, extra=()):
        self.port = free_port()
        super().__init__(["--http-listen", "127.0.0.1:%d" % self.port,
                          "--metrics-interval", "100"] + list(extra))

    def start(self):
        super().start()
        self.root = self.client()
        return self


def setup_module():
    return PageWard().start()


def teardown_module(w):
    w.stop()


def http(w, path, headers=(), port=None):
    """One request, the whole answer read: (status code, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port or w.port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
        path, "".join(h + "\r\n" for h in headers))).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return int(lines[0].split()[1]), lines[1:], body.decode(errors="replace")


def run(w, name, script, capture=True):
    r = w.root.call("instance.run", {
        "name": name, "argv": ["/bin/sh", "-c", script],
        "capture_output": capture})
    return r["id"]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stream_fds(w):
    return sum(1 for e in w.root.call("ward.fds")
               if e["owner"] == "http: event stream")


def browser(artifacts):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise Skip("chromium and chromedriver are not installed (Debian's "
                   "chromium and chromium-driver packages)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise Skip("python3-selenium is not installed")
    profile = tempfile.mkdtemp(prefix="ward-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1200,700",
              "--user-data-dir=" + profile):
        opts.add_argument(a)
    svc = Service(executable_path=driver,
                  log_path=os.path.join(artifacts, "chromedriver.log"))
    d = webdriver.Chrome(service=svc, options=opts)
    d.set_page_load_timeout(TIMEOUT)
    d.ward_profile = profile
    return d


def artifacts_dir():
    d = os.path.join(wardtest.BUILDDIR, "tests", "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def cell(d, name, col):
    """The text of column col in name's row; None while there is no row."""
    from selenium.webdriver.common.by import By
    rows = d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
    for tr in rows:
        if tr.get_attribute("data-name") == name:
            return tr.find_element(By.CSS_SELECTOR, "td." + col).text
    return None


def die_on(go, text):
    """A payload that prints a line, waits for the file go, then says text
    on fd 3 and exits 3."""
    return ("echo hello from the payload; while [ ! -e %s ]; do sleep 0.05; "
            "done; printf '%%s' '%s' >&3; exit 3" % (go, text))


def test_page_shows_an_instance_live_in_chromium(w):
    """Load the page, see a running instance, make it die with a reason on
    fd 3, and see the row change without a reload. Without --http-auth the
    reason's NAME is shown (what /metrics counts deaths by), not the text
    the payload wrote after it, nor its output."""
    art = artifacts_dir()
    go = os.path.join(w.dir, "go-live")
    name = wardtest.uniq("page")
    run(w, name, die_on(go, "PAGE_REASON|" + INJECT))
    d = browser(art)
    try:
        wait = waiter(d)
        d.get("http://127.0.0.1:%d/" % w.port)
        wait.until(lambda d: cell(d, name, "state") == "running",
                   "the row of %s, running" % name)
        assert d.find_element("id", "conn").text == "live"
        open(go, "w").close()
        wait.until(lambda d: cell(d, name, "state") == "dead",
                   "the row of %s, dead" % name)
        assert cell(d, name, "death") == "PAGE_REASON"
        assert "boom" not in d.page_source	# never sent
        # Output tails are off without --http-auth: the page says so.
        button(d, name).click()
        wait.until(lambda d: "403" in d.find_element("id", "log").text,
                   "the refused tail")
        assert "hello from the payload" not in d.page_source
        d.save_screenshot(os.path.join(art, "statuspage.png"))
        # Removed: the row goes.
        w.root.call("instance.remove", {"name": name})
        wait.until(lambda d: cell(d, name, "state") is None, "the row to go")
    finally:
        quit(d)
    assert os.path.getsize(os.path.join(art, "statuspage.png")) > 1000
    assert "boom" not in http(w, "/instances.json")[2]


def test_credentials_show_output_and_markup_stays_text(w):
    """--http-auth: every path but /metrics asks for USER:PASSWORD. Who
    gives them (in Chromium, as a user would) sees what the payload wrote
    on fd 3, as text even when it is markup (no element made from it, no
    handler run), and the tail of its output."""
    auth = os.path.join(w.dir, "http-auth")
    fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"admin:s3cret\n")
    os.close(fd)
    p = subprocess.run([wardtest.WARDD, "--socket", auth + ".sock",
                        "--state-dir", auth + ".d", "--http-listen",
                        str(free_port()), "--http-auth", auth],
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 2 and b"chmod 600" in p.stderr, p
    os.chmod(auth, 0o600)
    a = PageWard(["--http-auth", auth]).start()
    try:
        go = os.path.join(a.dir, "go")
        iid = run(a, "tailed", die_on(go, INJECT))
        good = "Authorization: Basic " + base64.b64encode(
            b"admin:s3cret").decode()
        bad = "Authorization: Basic " + base64.b64encode(
            b"admin:s3creT").decode()
        for path in ("/", "/events", "/instances.json", "/log?id=%d" % iid):
            status, head, body = http(a, path)
            assert status == 401 and any(
                h.startswith("WWW-Authenticate: Basic") for h in head), (
                path, status)
            assert http(a, path, [bad])[0] == 401, path
        assert http(a, "/metrics")[0] == 200	# scrapers need no password
        retry(lambda: "hello from the payload" in http(
            a, "/log?id=%d" % iid, [good])[2], what="the tail")
        d = browser(artifacts_dir())
        try:
            wait = waiter(d)
            d.get("http://admin:s3cret@127.0.0.1:%d/" % a.port)
            wait.until(lambda d: cell(d, "tailed", "state") == "running",
                       "the row")
            button(d, "tailed").click()
            wait.until(lambda d: "hello from the payload" in d.find_element(
                "id", "log").text, "the tail in the page")
            open(go, "w").close()
            wait.until(lambda d: cell(d, "tailed", "state") == "dead",
                       "the row, dead")
            death = cell(d, "tailed", "death")
            assert INJECT in death, death
            assert d.find_elements("id", "inj") == []
            assert d.find_elements("css selector", "#instances img") == []
            assert d.execute_script("return window.pwned === undefined")
            d.save_screenshot(os.path.join(artifacts_dir(),
                                           "statuspage-auth.png"))
        finally:
            quit(d)
    finally:
        a.stop()


def waiter(d):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(d, TIMEOUT, poll_frequency=0.05)


def button(d, name):
    return d.find_element("css selector",
                          'tr[data-name="%s"] td.output button' % name)


def quit(d):
    d.quit()
    shutil.rmtree(d.ward_profile, ignore_errors=True)


def test_a_reader_that_never_reads_is_dropped(w):
    """A stream whose reader reads nothing costs wardd a bounded buffer: once
    it is full the stream is dropped, while one that reads stays."""
    before = stream_fds(w)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", w.port))
    stuck.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    reader = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    reader.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    reader.setblocking(False)
    got = [0]

    def drain():
        try:
            while True:
                b = reader.recv(65536)
                if not b:
                    raise AssertionError("the reading stream was dropped")
                got[0] += len(b)
        except BlockingIOError:
            pass
    retry(lambda: stream_fds(w) == before + 2, what="two streams")
    # Rows every 100 ms for each of 30 running instances (metrics), with a
    # long status each: the stuck stream's 256 KiB fill within seconds.
    ids = [run(w, wardtest.uniq("busy"), "exec sleep 600", capture=False)
           for _ in range(30)]
    rss0 = rss_kb(w.proc.pid)

    def dropped():
        drain()
        return stream_fds(w) == before + 1
    retry(dropped, timeout=60, what="the stuck stream to be dropped")
    # What it was sent ends with the close: read it all, then EOF.
    stuck.settimeout(10)
    total = 0
    while True:
        b = stuck.recv(65536)
        if not b:
            break
        total += len(b)
    assert total > 0
    drain()
    assert got[0] > total / 4, (got[0], total)
    reader.close()
    stuck.close()
    # Bounded: the stream's 256 KiB and its socket, nothing per event
    # (under ASan, whose quarantine keeps what was freed, RSS says nothing).
    with open("/proc/%d/maps" % w.proc.pid) as f:
        asan = "libasan" in f.read()
    assert asan or rss_kb(w.proc.pid) - rss0 < 16 * 1024, (
        rss0, rss_kb(w.proc.pid))
    for i in ids:
        w.root.call("instance.kill", {"id": i, "signal": "KILL"})


def test_first_table_may_be_bigger_than_the_cap(w):
    """With more rows than a stream's 256 KiB hold, the first table still
    goes out whole (one message is taken while nothing else waits)."""
    a = PageWard().start()
    try:
        c = a.client()
        pending = [c.request("instance.create", {
            "name": "big-%04d-%s" % (k, "x" * 40), "argv": ["/bin/true"]})
            for k in range(1200)]
        for m in pending:
            c.response(m)
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\nevent: rows\ndata: " not in data or not data.split(
                b"\nevent: rows\ndata: ", 1)[1].count(b"\n\n"):
            b = s.recv(65536)
            assert b, "the stream closed before its first table"
            data += b
        rows = json.loads(data.split(b"\nevent: rows\ndata: ", 1)[1].split(
            b"\n\n", 1)[0])
        assert len(rows) == 1200 and len(data) > 256 * 1024, len(data)
        assert stream_fds(a) == 1
        s.close()
    finally:
        a.stop()


def read_event(s, buf, kind):
    """The data of the next event of that kind on stream socket s."""
    mark = ("event: %s\ndata: " % kind).encode()
    while mark not in buf[0] or b"\n\n" not in buf[0].split(mark, 1)[1]:
        b = s.recv(65536)
        if not b:
            raise EOFError
        buf[0] += b
    head, rest = buf[0].split(mark, 1)
    data, buf[0] = rest.split(b"\n\n", 1)
    return json.loads(data)


def test_stream_ends_at_a_reexec_and_comes_back(w):
    """A re-exec closes the streams (their fds are not carried; the page's
    EventSource reconnects) and the listener serves the next one, which
    sees the instances wardd carried, and their changes."""
    name = wardtest.uniq("carried")
    iid = run(w, name, "exec sleep 600", capture=False)
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = [b""]
    assert any(r["name"] == name for r in read_event(s, buf, "rows"))
    n = w.root.call("ward.stats")["reexecs"]
    assert w.root.call("ward.reexec") == {"ok": True}
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    s.close()
    retry(lambda: w.root.call("ward.stats")["reexecs"] == n + 1,
          what="the re-exec")
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = [b""]
    rows = read_event(s, buf, "rows")
    assert [r["state"] for r in rows if r["id"] == iid] == ["running"], rows
    w.root.call("instance.kill", {"id": iid, "signal": "KILL"})
    while True:
        r = read_event(s, buf, "row")
        if r["id"] == iid and r["state"] == "dead":
            break
    assert r["death_reason"] == "KILLED", r
    s.close()
    retry(lambda: wardtest.fds_settled(w, w.root), what="fds to settle")


def test_ninth_stream_is_refused_metrics_still_served(w):
    """At most 8 streams: the 9th is answered 503, and the other slots of
    the listener still serve /metrics."""
    retry(lambda: stream_fds(w) == 0, what="no stream left")
    held = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 200 OK")
        held.append(s)
    retry(lambda: stream_fds(w) == 8, what="8 streams")
    status, head, _ = http(w, "/events")
    assert status == 503, status
    assert http(w, "/metrics")[0] == 200
    for s in held:
        s.close()
    retry(lambda: stream_fds(w) == 0, what="the streams to close")
    retry(lambda: wardtest.fds_settled(w, w.root), what="fds to settle")


if __name__ == "__main__":
    wardtest.run(globals())
