#!/usr/bin/python3
"""Issue 11: wardd re-executes itself (ward.reexec) and nothing is lost.

55 instances of every kind run through 100 re-execs in a row: captured
output written without pause into log files (numbered lines: none may be
lost or doubled), failure pipes, notify pipes, NOTIFY_SOCKETs, suspended
ones, declared programs running and in backoff, and a few that die while
the re-execs go on. After each re-exec the same wardd pid answers with the
same ids, names, pids and states; a client subscribed before the first
re-exec hears every death exactly once, with the reason its pipes decide;
history holds them all; wardd's fd count and memory stay flat.
"""
import os
import signal
import subprocess

import wardtest
from wardtest import Ward, WardError, payload, retry, uniq, wait_dead

P = wardtest.PAYLOAD
REEXECS = int(os.environ.get("WARD_TEST_REEXECS", "100"))
LINES = 200000


def ward_with_programs():
    w = Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "progs.conf"), "w") as f:
        f.write(wardtest.programs_conf(5, run="prun", back="pback"))
    w.extra += ["--config-dir", conf]
    return w.start()


def snapshot(c):
    """What must not change across a re-exec, per instance id."""
    out = {}
    for st in c.call("instance.list"):
        prog = st.get("program") or {}
        out[st["id"]] = (st["name"], st.get("pid"), st["state"],
                         st.get("payload_state"), st.get("suspended"),
                         st.get("status_text"), prog.get("state"),
                         prog.get("restarts"))
    return out


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def reexec(w, c, n):
    """One re-exec, and wait until the new image answers (its count)."""
    assert c.call("ward.reexec") == {"ok": True}
    retry(lambda: c.call("ward.stats")["reexecs"] == n,
          what="re-exec %d to finish" % n)


def test_hundred_reexecs_lose_nothing():
    w = ward_with_programs()
    try:
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["died"]})
        trig = os.path.join(w.dir, "trig")
        os.makedirs(trig)
        made = {}		# name -> (kind, id)

        def run(kind, k, params):
            name = uniq(kind)
            r = c.call("instance.run", dict(params, name=name))
            made[name] = (kind, r["id"])
            return name

        for k in range(10):
            log = os.path.join(w.dir, "out%d.log" % k)
            run("out", k, {"argv": payload("lines", LINES, "wait-file",
                os.path.join(trig, "out%d" % k), "exit", 0),
                "stdout_logfile": log})
        for k in range(10):
            run("fail", k, {"argv": payload("fail", "CRASHED|boom %d" % k,
                "wait-file", os.path.join(trig, "fail%d" % k), "exit", 3)})
        for k in range(10):
            run("note", k, {"argv": payload("notify", "READY=1", "notify",
                "STATUS=note %d" % k, "hang"), "detect_hangup": True,
                "hangup_timeout_ms": 600000})
        for k in range(5):
            run("sd", k, {"argv": payload("sdnotify", "READY=1",
                "wait-file", os.path.join(trig, "sd%d" % k), "sdnotify",
                "STATUS=late %d" % k, "hang"), "notify": "systemd"})
        for k in range(10):
            name = run("susp", k, {"argv": payload("hang")})
            c.call("instance.suspend", {"name": name})
        for k in range(5):
            run("mid", k, {"argv": payload("wait-file",
                os.path.join(trig, "mid"), "exit", 5)})
        # Programs: running ones ready, the others in their long backoff.
        for k in range(5):
            retry(lambda: c.call("instance.status", {"name": "pback%d" % k})
                  ["program"]["state"] == "backoff", what="pback backoff")
            retry(lambda: c.call("instance.status", {"name": "prun%d" % k})
                  ["program"]["state"] == "running", what="prun running")
        for name, (kind, _) in made.items():
            if kind in ("note", "sd"):
                retry(lambda: c.call("instance.status", {"name": name})
                      ["payload_state"] == "ready", what=name + " ready")
        for k in range(10):
            name = [n for n, (kd, _) in made.items() if kd == "note"][k]
            retry(lambda: c.call("instance.status", {"name": name})
                  ["status_text"] != "", what=name + " status")

        pid = w.proc.pid
        before = snapshot(c)
        assert len(before) == 60, len(before)
        fds = rss = None
        mid_dead = set()
        for n in range(1, REEXECS + 1):
            reexec(w, c, n)
            assert w.proc.pid == pid and w.proc.poll() is None
            now = snapshot(c)
            if n == REEXECS // 2:
                # Deaths while re-execs go on: the next ones see them.
                open(os.path.join(trig, "mid"), "w").close()
                for name, (kind, iid) in made.items():
                    if kind == "mid":
                        wait_dead(c, name)
                        mid_dead.add(iid)
                before = snapshot(c)
                now = before
            assert now == before, "re-exec %d changed: %s" % (n, {
                k: (before.get(k), now.get(k)) for k in set(before) | set(now)
                if before.get(k) != now.get(k)})
            if n == REEXECS // 2 + 1:	# the mid ones' fds are gone
                fds, rss = fd_count(pid), rss_kb(pid)
        # Flat: the same fds, and memory within a small margin.
        assert fd_count(pid) == fds, (fd_count(pid), fds)
        assert rss_kb(pid) <= rss + 2048, (rss_kb(pid), rss)

        # The NOTIFY_SOCKETs still listen; the pipes still carry.
        for k in range(5):
            open(os.path.join(trig, "sd%d" % k), "w").close()
        for name, (kind, _) in made.items():
            if kind == "sd":
                retry(lambda: c.call("instance.status", {"name": name})
                      ["status_text"].startswith("late"), what=name)
        for k in range(10):
            open(os.path.join(trig, "out%d" % k), "w").close()
            open(os.path.join(trig, "fail%d" % k), "w").close()
        for name, (kind, _) in made.items():
            if kind in ("note", "susp", "sd"):
                c.call("instance.kill", {"name": name, "signal": "KILL"})
        want = {iid: kind for _, (kind, iid) in made.items()}
        deaths = {}
        while len(deaths) < len(want):
            ev = sub.event(lambda e: e["type"] == "died")
            iid = ev["id"]
            if iid not in want:
                continue		# a program's instance
            assert iid not in deaths, "death of %d reported twice" % iid
            deaths[iid] = ev["exit"]
        for iid, ex in deaths.items():
            kind = want[iid]
            if kind == "fail":
                assert ex["death_reason"] == "CRASHED", ex
                assert ex["failure_info"].startswith("boom"), ex
                assert ex["exit_code"] == 3, ex
            elif kind == "out":
                assert ex["exit_code"] == 0, ex
            elif kind == "mid":
                assert ex["exit_code"] == 5, ex
            else:
                assert ex["exit_signal"] == 9, ex
        # No line lost or doubled, in order, across all the re-execs.
        for k in range(10):
            with open(os.path.join(w.dir, "out%d.log" % k)) as f:
                got = f.read().split("\n")
            assert got[-1] == "", got[-1]
            got = got[:-1]
            assert len(got) == LINES, (k, len(got))
            bad = [(j, x) for j, x in enumerate(got) if x != str(j + 1)]
            assert not bad, (k, bad[:5])
        hist = {r["id"] for r in c.call("instance.history", {"limit": 1000})}
        assert mid_dead <= hist, mid_dead - hist
        # Programs kept their place: the backoff ones are still waiting.
        for k in range(5):
            st = c.call("instance.status", {"name": "pback%d" % k})
            assert st["program"]["state"] == "backoff", st["program"]
    finally:
        w.stop()


def test_refused_binary_leaves_wardd_running():
    """A missing binary, one that is not wardd, and one that reads an older
    state: each is refused with an error, and the same wardd answers on."""
    with Ward() as w:
        c = w.client()
        r = c.call("instance.run", {"name": uniq("keep"),
                                    "argv": payload("hang")})
        old = os.path.join(w.dir, "old-wardd")	# reads version 0 only
        with open(old, "w") as f:
            f.write("#!/bin/sh\necho 0\n")
        os.chmod(old, 0o755)
        for exe, words in (("/nonexistent/wardd", "cannot run"),
                           ("/bin/false", "not a wardd"),
                           (P, "not a wardd"),
                           (old, "reads wardd states up to version 0"),
                           ("relative/wardd", "absolute path")):
            try:
                c.call("ward.reexec", {"exe": exe})
                raise AssertionError("%s was not refused" % exe)
            except WardError as e:
                assert e.code == "invalid_argument", e
                assert words in str(e), e
        assert c.call("ward.stats")["reexecs"] == 0
        st = c.call("instance.status", {"id": r["id"]})
        assert st["state"] == "running" and st["pid"] == r["pid"], st


def test_nobody_may_not_reexec():
    with Ward() as w:
        out = wardtest.as_nobody(w, "r = attempt('ward.reexec')\ndone(r)")
        assert out["code"] == "permission_denied", out


def test_wardctl_and_sigusr2():
    """wardctl reexec, and SIGUSR2, do the same."""
    with Ward() as w:
        c = w.client()
        r = subprocess.run([wardtest.WARDCTL, "--socket", w.sock, "reexec"],
                           capture_output=True, text=True,
                           timeout=wardtest.TIMEOUT)
        assert r.returncode == 0, r.stderr
        retry(lambda: c.call("ward.stats")["reexecs"] == 1)
        w.proc.send_signal(signal.SIGUSR2)
        retry(lambda: c.call("ward.stats")["reexecs"] == 2)
        assert c.call("ward.hello")["pid"] == w.proc.pid


def test_follow_and_half_sent_request_survive():
    """A follower keeps receiving a stream's new output across a re-exec,
    and a request half sent before it is answered after it, whole."""
    import msgpack
    with Ward() as w:
        c = w.client()
        go = os.path.join(w.dir, "go")
        name = uniq("follow")
        c.call("instance.run", {"name": name, "capture_output": True,
               "argv": payload("echo", "before", "wait-file", go, "echo",
                               "after", "hang")})
        retry(lambda: c.call("instance.log", {"name": name})["data"] ==
              "before\n", what="the first line")
        f = w.client()
        assert f.call("instance.log", {"name": name, "follow": True})[
            "data"] == "before\n"
        half = w.client()
        half.msgid += 1
        data = msgpack.packb([0, half.msgid, "instance.status",
                              [{"name": name}]], use_bin_type=True)
        half.send_raw(data[:7])
        reexec(w, c, 1)
        half.send_raw(data[7:])
        err, st = half.response(half.msgid)
        assert err is None and st["name"] == name, (err, st)
        open(go, "w").close()
        got = ""
        while "after\n" not in got:
            msg = f.notification(wardtest.TIMEOUT)
            assert msg is not None and msg[1] == "ward.log", msg
            got += msg[2][0]["data"]
        assert got == "after\n", got


def test_shutdown_during_the_check_wins():
    """A SIGTERM while the new binary's check runs: the shutdown goes on
    (the re-exec is refused), the new image never starts."""
    w = Ward()
    w.start()
    try:
        c = w.client()
        name = uniq("stubborn")
        c.call("instance.run", {"name": name, "argv":
               payload("ignore-term", "notify", "READY=1", "hang")})
        # SIGTERM is ignored from here on: the shutdown waits for it.
        retry(lambda: c.call("instance.status", {"name": name})
              ["payload_state"] == "ready", what="the payload ready")
        gate = os.path.join(w.dir, "gate")
        os.mkfifo(gate)
        slow = os.path.join(w.dir, "slow-wardd")
        with open(slow, "w") as f:	# the check waits for the test
            f.write("#!/bin/sh\nread go < %s\nexec %s \"$@\"\n" %
                    (gate, wardtest.WARDD))
        os.chmod(slow, 0o755)
        mid = c.request("ward.reexec", {"exe": slow})
        retry(lambda: "checking it" in w.read_log(), what="the check")
        w.proc.send_signal(signal.SIGTERM)
        retry(lambda: "got SIGTERM" in w.read_log(), what="the SIGTERM")
        with open(gate, "w") as g:	# the check goes on
            g.write("go\n")
        err, res = c.response(mid)
        assert err is not None and err["code"] == "invalid_state", (err, res)
        assert w.proc.wait(timeout=wardtest.TIMEOUT) == 0
        assert "re-exec paused" not in w.read_log()
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
