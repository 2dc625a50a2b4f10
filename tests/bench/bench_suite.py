#!/usr/bin/python3
"""bench_suite.py: issue 12's figures, each beside a limit measured in the
same run by tests/bench/limits.c, and their ratio. Not a test: it prints
one table and exits 0 (1 if something it drives fails).

    tests/bench/bench_suite.py [-n 1000] [-n 10000] [-k SAMPLES]
        [-s SECONDS] [--limits PATH] [--cgroups] WARDD

For each N: start N (sequential instance.run), ward.hello round trips idle
and with N running, instance.list of N (time, bytes), memory and fds per
instance, death -> died event latency, wardd's CPU with 1 s metrics, the
longest ward.hello round trip (loop stall), kill N -> all died events;
then, once, captured output against cat. An N past what wardd's open-file
limit lets it run is cut to what it can run (the table says how many ran).
Works against an older wardd: a missing ward.stats key gives a "-".
"""
import argparse
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("WARD_BUILDDIR",
                      os.path.abspath(os.path.join(HERE, "..", "..")))

import msgpack  # noqa: E402

import wardtest  # noqa: E402

SLEEP = "/usr/bin/sleep" if os.path.exists("/usr/bin/sleep") else "/bin/sleep"
BLOCK_BYTES = 256 << 20		# the block writer's output
LINE_BYTES = 16 << 20		# the line writer's (one write(2) per 80 bytes)
FDS_PER_INSTANCE = 3		# before ward.stats said `capacity`
FD_SPARE = 200			# fds left to wardd besides its instances' own
SPARE_INSTANCES = 4		# room for the exiters and output writers

LIMITS = None			# the limits binary (--limits)
VERBOSE = False			# -v: each step's time on stderr
T0 = time.monotonic()
_last = [time.monotonic()]


def step(what):
    """With -v, how long the step just ended took."""
    t = time.monotonic()
    if VERBOSE:
        print("  %6.1f s  %s" % (t - _last[0], what), file=sys.stderr,
              flush=True)
    d, _last[0] = t - _last[0], t
    return d


def limits_start(*args, stdin=None):
    """Start one limits mode; limits_end() reads its figures."""
    p = subprocess.Popen([LIMITS] + [str(a) for a in args], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdin.write(stdin or "")
    p.stdin.close()
    return p


def limits_end(p):
    """The "key value" lines of a limits run as {key: float}."""
    out = p.stdout.read()
    if p.wait() != 0:
        raise RuntimeError("limits failed (%d)" % p.returncode)
    return {k: float(v) for k, v in (ln.split() for ln in out.splitlines())}


def limits(*args, stdin=None):
    return limits_end(limits_start(*args, stdin=stdin))


class Table:
    def __init__(self):
        self.rows = []

    def add(self, what, ward, limit, unit="", fmt="%.2f"):
        """ratio = wardd / limit: above 1 wardd is slower or bigger, except
        for throughput rows (MiB/s), where below 1 it is slower."""
        def f(v):
            return "-" if v is None else (fmt % v) + unit
        ratio = "-" if ward is None or not limit else "%.2fx" % (ward / limit)
        self.rows.append((what, f(ward), f(limit), ratio))

    def note(self, what):
        self.rows.append((what, None, None, None))

    def print(self):
        hdr = ("what", "wardd", "limit", "ratio")
        w = [max(len(r[k]) for r in self.rows + [hdr] if r[1] is not None)
             for k in range(3)]
        print("%-*s  %*s  %*s  %s" % (w[0], hdr[0], w[1], hdr[1], w[2],
                                      hdr[2], hdr[3]))
        for r in self.rows:
            if r[1] is None:
                print(r[0])
            else:
                print("%-*s  %*s  %*s  %s" % (w[0], r[0], w[1], r[1], w[2],
                                              r[2], r[3]))


# ---- what /proc says about wardd

def rollup_kb(pid):
    """Rss and Pss of /proc/PID/smaps_rollup, KiB."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k] = int(v.split()[0])
    return out


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_ms(pid):
    """CPU time of pid in ms: schedstat's nanoseconds on the CPU where the
    kernel has them (stat's utime+stime come in 10 ms ticks)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0]) / 1e6
    except (FileNotFoundError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def data_bytes(v):
    """The bytes of the data in a decoded reply: strings and binaries by
    their length, numbers by their decimal digits, booleans as 1, nil as 0;
    arrays and maps by their values (map keys are names, not data)."""
    if isinstance(v, dict):
        return sum(data_bytes(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return sum(data_bytes(x) for x in v)
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, bytes):
        return len(v)
    if isinstance(v, bool):
        return 1
    if v is None:
        return 0
    return len(str(v))


class Raw:
    """One request, one reply, on a bare socket: the bytes on the wire are
    what this client counts and times."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.msgid = 0

    def close(self):
        self.sock.close()

    def call(self, method, params=None):
        """(result, reply bytes, seconds to the reply's last byte). The
        reply is parsed only once the socket has been quiet for QUIET s
        (a wait not counted), so the parse is not timed."""
        self.msgid += 1
        self.sock.sendall(msgpack.packb(
            [0, self.msgid, method, [] if params is None else [params]]))
        t0 = time.perf_counter()
        u = msgpack.Unpacker(raw=False, strict_map_key=False,
                             max_buffer_size=1 << 30)
        n = 0
        while True:
            d = self.sock.recv(1 << 20)
            t = time.perf_counter()
            if not d:
                raise ConnectionError("EOF from wardd")
            u.feed(d)
            n += len(d)
            if select.select([self.sock], [], [], self.QUIET)[0]:
                continue
            try:
                m = u.unpack()
            except msgpack.OutOfData:
                continue
            assert m[0] == 1 and m[1] == self.msgid and m[2] is None, m
            return m[3], n, t - t0

    QUIET = 0.02


# ---- one wardd, one N

def start_ward(wardd, cgroups):
    wardtest.WARDD = wardd
    args = ["--metrics-interval", "1000", "--log-level", "warning"]
    if not cgroups:
        args.append("--no-cgroups")
    w = wardtest.Ward(args=args)
    w.start()
    return w


def capacity(c, pid_fds_idle):
    """How many instances wardd can run: ward.stats `capacity` where it
    has it, else its open-file limit over 3 fds each."""
    cap = c.call("ward.stats").get("capacity")
    if isinstance(cap, dict) and cap.get("instances"):
        return int(cap["instances"]), "ward.stats capacity, %s fds each" % (
            cap.get("fds_per_instance"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return ((hard - pid_fds_idle - FD_SPARE) // FDS_PER_INSTANCE,
            "RLIMIT_NOFILE %d / %d fds each" % (hard, FDS_PER_INSTANCE))


def hello_bytes(sock):
    """The packed ward.hello request and its reply's length."""
    req = msgpack.packb([0, 1, "ward.hello", []])
    r = Raw(sock)
    _, n, _ = r.call("ward.hello")
    r.close()
    return req, n


def rtt(sock, req, reply, m, secs=0):
    args = ["rtt", sock, req.hex(), reply, m] + ([secs] if secs else [])
    return limits(*args)


def echo(req, reply, m, secs=0):
    return limits(*(["echo", m, len(req), reply] + ([secs] if secs else [])))


def open_writer(fifo, timeout=wardtest.TIMEOUT):
    """The FIFO's write end once its reader (an exiter) has opened it:
    polled every 0.5 ms (wardtest.retry's backoff would cost each sample
    tens of ms of wall time), at most timeout s."""
    end = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:			# ENXIO: no reader yet
            if time.monotonic() > end:
                raise AssertionError("the exiter never opened %s" % fifo)
            time.sleep(0.0005)


def death_latency(c, sub, dirpath, k):
    """k exiters run by wardd, each storing its CLOCK_MONOTONIC exit
    instant; the time from it to its died event reaching this client
    (Python's receive of the event included), us."""
    fifo = os.path.join(dirpath, "go")
    out = os.path.join(dirpath, "at")
    os.mkfifo(fifo)
    lat = []
    for _ in range(k):
        if os.path.exists(out):
            os.unlink(out)
        r = c.call("instance.run", {"argv": [LIMITS, "exiter", fifo, out]})

        fd = open_writer(fifo)
        os.write(fd, b"g")
        sub.event(lambda e: e["type"] == "died" and e["id"] == r["id"])
        t = time.monotonic_ns()
        os.close(fd)
        with open(out, "rb") as f:
            at = int.from_bytes(f.read(8), sys.byteorder)
        lat.append((t - at) / 1e3)
        c.call("instance.remove", {"id": r["id"]})
    os.unlink(fifo)
    os.unlink(out)
    lat.sort()
    return lat[len(lat) // 2], lat[-(-len(lat) * 99 // 100) - 1]


def kill_all(c, sub, ids, batch=64):
    """instance.kill (SIGKILL) to every one, sent batch at a time (the
    subscriber reading its events between batches: wardd drops one 1 MiB
    behind); seconds until every died event arrived."""
    want = set(ids)

    def drain(block):
        while want:
            if not block and not sub.notifications and \
                    not select.select([sub.sock], [], [], 0)[0]:
                return
            want.discard(sub.event(lambda e: e["type"] == "died")["id"])
    t = time.perf_counter()
    for j in range(0, len(ids), batch):
        msgids = [c.request("instance.kill", {"id": i})
                  for i in ids[j:j + batch]]
        for m in msgids:
            err, _ = c.response(m)
            assert err is None, err
        drain(False)
    drain(True)
    return time.perf_counter() - t


def part(tab, wardd, n, k, args, tmp, pace):
    """Everything that depends on N, into tab, with k death samples.
    Returns wardd still running (idle), for the output part. pace: {n:
    seconds per instance, k: per death sample} of the steps that grow with
    them, filled by the first part, read by the next ones for --budget."""
    w = start_ward(wardd, args.cgroups)
    try:
        pid = w.proc.pid
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["died"]})
        fds0, mem0 = nfds(pid), rollup_kb(pid)
        cap, how = capacity(c, fds0)
        ran = min(n, cap - SPARE_INSTANCES)
        if ran < n:
            tab.note("N = %d: wardd can run %d (%s): %d run" % (
                n, cap, how, ran))
            if ran < 100:
                tab.note("  skipped: too few to measure")
                return w
        n = ran
        left = args.budget - (time.monotonic() - T0)
        # What grows with n and k, the windows, and a quarter for spawns
        # slowing down as the process table grows.
        est = pace and 1.25 * (pace["n"] * n + pace["k"] * k +
                               2 * args.s + 5)
        if args.budget and est and est > left:
            tab.note("N = %d: skipped: about %.0f s at this run's pace, "
                     "%.0f s left of --budget %d" % (n, est, left,
                                                     args.budget))
            return w
        tab.note("N = %d" % n)

        lim = limits("spawn", n, k)
        cost_n = lim["spawn_s"] + lim["killreap_s"]
        cost_k = step("limits spawn %d, %d wake-ups, kill+reap" % (n, k)) \
            - cost_n
        req, hello_len = hello_bytes(w.sock)
        idle = rtt(w.sock, req, hello_len, args.m)
        idle_echo = echo(req, hello_len, args.m)
        step("round trips, idle")

        t = time.perf_counter()
        ids = [c.call("instance.run", {"argv": [SLEEP, "1000"]})["id"]
               for _ in range(n)]
        start = time.perf_counter() - t
        cost_n += step("start %d" % n)
        fds1, mem1 = nfds(pid), rollup_kb(pid)
        busy = rtt(w.sock, req, hello_len, args.m)
        busy_echo = echo(req, hello_len, args.m)
        step("round trips, %d running" % n)

        raw = Raw(w.sock)
        times = []
        for _ in range(args.lists):
            lst, nbytes, dt = raw.call("instance.list")
            times.append(dt)
        # The compact form (issue 12), where wardd has it: the same data.
        ctimes, cbytes = [], None
        for _ in range(args.lists):
            try:
                _, cbytes, dt = raw.call("instance.list", {"compact": True})
            except AssertionError:
                cbytes = None	# an older wardd: invalid_argument
                break
            ctimes.append(dt)
        raw.close()
        assert len(lst) == n, len(lst)
        lt = statistics.median(times)
        dbytes = data_bytes(lst)
        list_echo = echo(msgpack.packb([0, 1, "instance.list", []]), nbytes,
                         args.lists)
        cost_n += step("instance.list")

        d50, d99 = death_latency(c, sub, tmp, k)
        cost_k += step("%d deaths" % k)

        # wardd's CPU, idle, beside the bare sampler on the same pids and
        # the echo's longest round trip, all three in the same seconds;
        # then wardd's longest round trip, alone.
        pids = " ".join(str(e["pid"]) for e in lst)
        cpu0 = cpu_ms(pid)
        samp = limits_start("sampler", args.s, stdin=pids)
        ech = limits_start("echo", 0, len(req), hello_len, args.s)
        sampler, stall_echo = limits_end(samp), limits_end(ech)
        cpu = cpu_ms(pid) - cpu0
        step("CPU window")
        stall = rtt(w.sock, req, hello_len, 0, args.s)
        step("stall window")

        killed = kill_all(c, sub, ids)
        for m in [c.request("instance.remove", {"id": i}) for i in ids]:
            c.response(m)
        cost_n += step("kill %d, remove" % n)
        if not pace:
            pace.update(n=cost_n / n, k=cost_k / k)

        tab.add("start %d (instance.run, one at a time)" % n, start,
                lim["spawn_s"], " s", "%.3f")
        for what, a, b in (("idle", idle, idle_echo),
                           ("%d running" % n, busy, busy_echo)):
            tab.add("ward.hello round trip p50, %s" % what, a["rtt_p50_us"],
                    b["rtt_p50_us"], " us", "%.1f")
            tab.add("ward.hello round trip p99, %s" % what, a["rtt_p99_us"],
                    b["rtt_p99_us"], " us", "%.1f")
        tab.add("instance.list of %d: time to last byte (p50)" % n, lt * 1e3,
                list_echo["rtt_p50_us"] / 1e3, " ms", "%.3f")
        tab.add("instance.list of %d: reply bytes vs data" % n, nbytes,
                dbytes, " B", "%d")
        if cbytes is not None:
            tab.add("instance.list {compact} of %d: time (p50)" % n,
                    statistics.median(ctimes) * 1e3,
                    echo(msgpack.packb([0, 1, "instance.list", []]), cbytes,
                         args.lists)["rtt_p50_us"] / 1e3, " ms", "%.3f")
            tab.add("instance.list {compact} of %d: bytes vs data" % n,
                    cbytes, dbytes, " B", "%d")
        for what in ("Rss", "Pss"):
            tab.add("wardd %s per running instance" % what,
                    (mem1[what] - mem0[what]) / n, 1.5, " KiB")
        tab.add("wardd fds per running instance", (fds1 - fds0) / n,
                2, "", "%.2f")
        tab.add("death -> died event p50 of %d, %d running" % (k, n), d50,
                lim["wake_p50_us"], " us", "%.0f")
        tab.add("death -> died event p99 of %d, %d running" % (k, n), d99,
                lim["wake_p99_us"], " us", "%.0f")
        tab.add("kill %d -> all died events" % n, killed,
                lim["killreap_s"], " s", "%.3f")
        tab.add("wardd CPU, %d idle, 1 s metrics, %d s" % (n, args.s), cpu,
                sampler["sampler_cpu_ms"], " ms", "%.1f")
        tab.add("longest ward.hello round trip, %d running, %d s" % (
                n, args.s), stall["rtt_max_us"] / 1e3,
                stall_echo["rtt_max_us"] / 1e3, " ms", "%.2f")
        return w
    except BaseException:
        w.stop()
        raise


def output_run(c, f, tmp, form, nbytes, logfile, follow):
    """A writer of nbytes in form, captured (with a log file and/or an
    instance.log follower on connection f): seconds from its start to its
    died event, all of it in the file (and at the follower). The follower
    reads 1 MiB at a time and unpacks in bulk: wardd drops a follower 1 MiB
    behind."""
    spec = {"argv": [LIMITS, "write", form, str(nbytes)],
            "capture_output": True}
    log = os.path.join(tmp, "out.log")
    if logfile:
        spec.update(stdout_logfile=log, logfile_maxbytes=64 << 20,
                    logfile_backups=100)
    r = c.call("instance.create", spec)
    f.call("events.subscribe", {"ids": [r["id"]], "types": ["died"]})
    if follow:
        f.call("instance.log", {"id": r["id"], "follow": True})
    got, died, overflow = 0, False, False
    u = f.unpacker
    t = time.perf_counter()
    c.call("instance.start", {"id": r["id"]})
    while not died or (follow and got < nbytes and not overflow):
        d = f.sock.recv(1 << 20)
        if not d:
            break			# closed: a follower that overflowed
        u.feed(d)
        for m in u:
            if m[0] == 2 and m[1] == "ward.log":
                p = m[2][0]
                overflow = overflow or bool(p.get("overflow"))
                got += len(p.get("data", ""))	# ASCII: chars are bytes
            elif m[0] == 2 and m[1] == "ward.event" and \
                    m[2][0]["type"] == "died":
                died = True
    if logfile:
        def whole():
            return sum(os.path.getsize(os.path.join(tmp, x))
                       for x in os.listdir(tmp)
                       if x.startswith("out.log")) == nbytes
        wardtest.retry(whole, what="the log file to hold it all")
    dt = time.perf_counter() - t
    for x in os.listdir(tmp):
        if x.startswith("out.log"):
            os.unlink(os.path.join(tmp, x))
    c.call("instance.remove", {"id": r["id"]})
    lost = follow and (overflow or got < nbytes)
    return nbytes / dt / (1 << 20), got if lost else None


def output_part(tab, w, tmp, reps):
    """Each form reps times, cat and wardd in turn; the best of each (on a
    shared machine, other work only ever slows a run down)."""
    c = w.client()
    for what, form, nb, logfile, follow in (
            ("64 KiB blocks, ring only", "blocks", BLOCK_BYTES, False, False),
            ("64 KiB blocks, log file", "blocks", BLOCK_BYTES, True, False),
            ("80-byte lines, log file", "lines", LINE_BYTES, True, False),
            ("64 KiB blocks, log file + follower", "blocks", BLOCK_BYTES,
             True, True)):
        cat, mib, lost = 0, 0, None
        for _ in range(reps):
            cat = max(cat, limits("cat", form, nb, os.path.join(
                tmp, "cat.out"))["cat_mib_s"])
            os.unlink(os.path.join(tmp, "cat.out"))
            f = w.client()
            m, gone = output_run(c, f, tmp, form, nb, logfile, follow)
            f.close()
            w.clients.remove(f)
            mib = max(mib, m)
            lost = gone if lost is None else lost
        step("output, %s" % what)
        tab.add("captured output, %s" % what, mib, cat, " MiB/s", "%.0f")
        if lost is not None:
            tab.note("  the follower fell 1 MiB behind and was dropped after "
                     "%.1f of %d MiB (first such run)" % (
                         lost / 1048576, nb >> 20))


def main():
    global LIMITS, VERBOSE
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, action="append",
                    help="instances (repeat for more sizes; default 1000)")
    ap.add_argument("-k", type=int, default=1000,
                    help="death samples (and pidfd wake-ups)")
    ap.add_argument("--k-big", type=int, default=300,
                    help="the same past the first N")
    ap.add_argument("--budget", type=int, default=0,
                    help="seconds: skip a later N that would not fit")
    ap.add_argument("-m", type=int, default=5000, help="round trips")
    ap.add_argument("-s", type=int, default=10,
                    help="seconds of the CPU and stall windows")
    ap.add_argument("--lists", type=int, default=11,
                    help="instance.list calls (the median is shown)")
    ap.add_argument("--limits", default=os.path.join(
        os.environ["WARD_BUILDDIR"], "tests", "bench", "limits"))
    ap.add_argument("--cgroups", action="store_true",
                    help="a cgroup per instance (default --no-cgroups)")
    ap.add_argument("--reps", type=int, default=3,
                    help="runs of each output form (the best is shown)")
    ap.add_argument("-v", action="store_true", help="step times on stderr")
    ap.add_argument("wardd", nargs="?", default=wardtest.WARDD)
    args = ap.parse_args()
    LIMITS = os.path.abspath(args.limits)
    VERBOSE = args.v
    ns = args.n or [1000]

    tab = Table()
    tmp = tempfile.mkdtemp(prefix="ward-suite-")
    pace = {}
    try:
        for j, n in enumerate(ns):
            w = part(tab, os.path.abspath(args.wardd), n,
                     args.k if j == 0 else min(args.k, args.k_big), args,
                     tmp, pace)
            try:
                if j == 0:
                    output_part(tab, w, tmp, args.reps)
            finally:
                w.stop()
    finally:
        for x in os.listdir(tmp):
            os.unlink(os.path.join(tmp, x))
        os.rmdir(tmp)

    print("wardd suite: %s, %s %s, %d CPUs, load %.1f, %.0f s" % (
        args.wardd, os.uname().sysname, os.uname().release, os.cpu_count(),
        os.getloadavg()[0], time.monotonic() - T0))
    tab.print()
    print("""limits (tests/bench/limits.c, this run; ratio = wardd / limit):
  start: posix_spawn + pidfd_open of N `sleep 1000` in a loop
  round trips: the same C client (limits rtt) against wardd and against a
    forked child echoing a reply of ward.hello's size through a socketpair
  instance.list time: that echo with a reply of the list's size
  instance.list bytes: the data (strings' bytes, numbers' digits, booleans
    1, nil 0; map keys not counted)
  Rss/Pss and fds: the issue's targets (1.5 KiB, 2 fds), not measured
  death -> event: an exiter stores its CLOCK_MONOTONIC instant and exits;
    wardd: until its died event is decoded by this Python client; limit:
    until epoll_wait returns on its pidfd, N sleeping children in the set
  kill N: SIGKILL through N pidfds, each reaped as its pidfd is readable
  CPU: a C loop reading /proc/PID/stat (what wardd reads) of the same N pids once a
    second for the same seconds, at the same time (getrusage); wardd's
    from /proc/PID/schedstat
  longest round trip: the echo above, for the same seconds, during the CPU
    window (wardd's own is timed alone, after it)
  captured output: `limits write FORM | cat > file`, the same writer wardd
    runs; the best of --reps (3) runs each, in turn; below 1 is slower""")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
