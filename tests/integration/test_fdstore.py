#!/usr/bin/python3
"""Issue 11: a wardd killed with SIGKILL comes back through systemd's fd
store with every instance as it was.

systemd's side is tests/lib/fdstore.py, an emulation of its fd store
exactly as systemd implements it (FDSTORE=1, FDNAME=, FDSTOREREMOVE=1,
LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID on the next start, stored fds newest
first after the socket unit's). 50 instances of every kind run: captured
output written without pause into log files and rings (numbered lines),
failure pipes, notify pipes, NOTIFY_SOCKETs, suspended ones, declared
programs running and in backoff. wardd is killed outright; some payloads
die while no wardd runs; the new wardd has the same ids, pids and states,
every death (those during the outage too) is reported once with the
reason its pipes decide, no output line is lost or doubled, and history
is complete.
"""
import os
import signal
import socket

import fdstore
import wardtest
from wardtest import Client, WardError, payload, retry, uniq, wait_dead

P = wardtest.PAYLOAD
LINES = 100000


class Service:
    """wardd as a socket-activated service with an fd store."""

    def __init__(self):
        self.w = wardtest.Ward()
        self.conf = os.path.join(self.w.dir, "conf")
        os.makedirs(self.conf)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.w.sock)
        os.chmod(self.w.sock, 0o666)
        self.listener.listen(128)
        self.store = fdstore.FdStore(os.path.join(self.w.dir, "notify"))
        self.proc = None

    def start(self):
        self.log = open(self.w.logpath, "ab")
        self.proc = self.store.popen(
            [wardtest.WARDD, "--socket", self.w.sock, "--state-dir",
             self.w.state, "--config-dir", self.conf, "--log-level",
             "debug", "--log-target", "stderr"],
            listeners=[("ward.socket", self.listener.fileno())],
            stdout=self.log, stderr=self.log)
        self.w.proc = self.proc
        self.w.wait_ready()
        return self

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.w.proc = self.proc
        self.w.stop()
        self.store.close()
        self.listener.close()


def caught_up(c, store):
    """Wait until wardd has written a state after everything so far."""
    retry(lambda: (lambda st: not st["snapshot"]["pending"] and
                   st["fd_store"]["writes"] > 0)(c.call("ward.stats")),
          what="a state in the fd store with everything so far")


def snapshot(c):
    out = {}
    for st in c.call("instance.list"):
        prog = st.get("program") or {}
        out[st["id"]] = (st["name"], st.get("pid"), st["state"],
                         st.get("payload_state"), st.get("suspended"),
                         st.get("status_text"), prog.get("state"))
    return out


def test_sigkill_with_fd_store_loses_nothing():
    s = Service()
    with open(os.path.join(s.conf, "p.conf"), "w") as f:
        f.write(wardtest.programs_conf(3, run="frun", back="fback"))
    s.start()
    try:
        c = s.w.client()
        trig = os.path.join(s.w.dir, "trig")
        os.makedirs(trig)
        made = {}

        def run(kind, params):
            name = uniq(kind)
            r = c.call("instance.run", dict(params, name=name))
            made[name] = (kind, r["id"])
            return name

        for k in range(10):
            run("out", {"argv": payload("lines", LINES, "wait-file",
                os.path.join(trig, "out%d" % k), "exit", 0),
                "stdout_logfile": os.path.join(s.w.dir, "out%d.log" % k)})
        for k in range(10):	# half die while no wardd runs
            run("fail", {"argv": payload("fail", "CRASHED|boom %d" % k,
                "wait-file", os.path.join(trig, "fail%d" % k), "exit", 3)})
        for k in range(10):
            run("note", {"argv": payload("notify", "READY=1", "notify",
                "STATUS=note %d" % k, "hang")})
        for k in range(5):
            run("sd", {"argv": payload("sdnotify", "READY=1", "wait-file",
                os.path.join(trig, "sd%d" % k), "sdnotify",
                "STATUS=late %d" % k, "hang"), "notify": "systemd"})
        for k in range(9):
            name = run("susp", {"argv": payload("hang")})
            c.call("instance.suspend", {"name": name})
        dead = run("dead", {"argv": payload("exit", 4)})
        wait_dead(c, dead)
        for k in range(3):
            retry(lambda: c.call("instance.status", {"name": "fback%d" % k})
                  ["program"]["state"] == "backoff", what="backoff")
        for name, (kind, _) in made.items():
            if kind in ("note", "sd"):
                retry(lambda: c.call("instance.status", {"name": name})
                      ["payload_state"] == "ready", what=name)
            if kind == "note":
                retry(lambda: c.call("instance.status", {"name": name})
                      ["status_text"] != "", what=name)
        caught_up(c, s.store)
        before = snapshot(c)
        hist = {r["id"] for r in c.call("instance.history", {"limit": 100})}
        assert made[dead][1] in hist
        names = s.store.names()
        assert "ward-state-a" in names and "ward-state-b" in names, names
        assert all(kv.get("FDPOLL") == "0" for kv in s.store.messages
                   if kv.get("FDSTORE") == "1"), "FDPOLL=0 missing"

        # Every line written (each "out" waits on its file now): the
        # rings hold the last ones, read after the last state was written.
        for k in range(10):
            log = os.path.join(s.w.dir, "out%d.log" % k)
            retry(lambda: os.path.getsize(log) >= len("".join(
                "%d\n" % j for j in range(1, LINES + 1))), what=log)
        s.kill()
        # While no wardd runs: five failure-pipe payloads die.
        for k in range(5):
            open(os.path.join(trig, "fail%d" % k), "w").close()
        fail_pids = {before[iid][1] for n, (kd, iid) in made.items()
                     if kd == "fail"}
        retry(lambda: sum(1 for p in fail_pids if wardtest.gone(p)) >= 5,
              what="five payloads to die during the outage")

        s.start()
        c = s.w.client()
        sub = s.w.client()
        sub.call("events.subscribe", {"types": ["died"]})
        now = snapshot(c)
        assert set(now) == set(before), set(now) ^ set(before)
        for iid, was in before.items():
            if now[iid] != was:
                # Only the outage's deaths may differ, and only as deaths.
                assert now[iid][2] == "dead" and was[2] == "running", \
                    (iid, was, now[iid])
        # The rings came back from their memfds, to the last line read.
        for name, (kind, _) in made.items():
            if kind == "out":
                tail = c.call("instance.log", {"name": name,
                              "stream": "stdout", "bytes": 64})["data"]
                assert tail.endswith("\n%d\n" % LINES), (name, tail)
        # The outage's deaths: classified from what their pipes held.
        lost = [n for n, (kd, _) in made.items() if kd == "fail"]
        for name in lost:
            st = c.call("instance.status", {"name": name})
            if st["state"] == "dead":
                assert st["death_reason"] == "CRASHED", st
                assert st["failure_info"].startswith("boom"), st
                assert st["exit_code"] == 3, st
        # The rest carry on: pipes, sockets, output.
        for k in range(5):
            open(os.path.join(trig, "sd%d" % k), "w").close()
        for name, (kind, _) in made.items():
            if kind == "sd":
                retry(lambda: c.call("instance.status", {"name": name})
                      ["status_text"].startswith("late"), what=name)
        for k in range(5, 10):
            open(os.path.join(trig, "fail%d" % k), "w").close()
        for k in range(10):
            open(os.path.join(trig, "out%d" % k), "w").close()
        for name, (kind, _) in made.items():
            if kind in ("note", "susp", "sd"):
                c.call("instance.kill", {"name": name, "signal": "KILL"})
        want = {iid: kind for _, (kind, iid) in made.items()
                if now[iid][2] == "running"}
        deaths = {}
        while len(deaths) < len(want):
            ev = sub.event(lambda e: e["type"] == "died")
            if ev["id"] not in want:
                continue
            assert ev["id"] not in deaths, "reported twice: %s" % ev
            deaths[ev["id"]] = ev["exit"]
        for iid, ex in deaths.items():
            kind = want[iid]
            if kind == "fail":
                assert ex["death_reason"] == "CRASHED", ex
                assert ex["exit_code"] == 3, ex
            elif kind == "out":
                assert ex["exit_code"] == 0, ex
            else:
                assert ex["exit_signal"] == 9, ex
        for k in range(10):
            with open(os.path.join(s.w.dir, "out%d.log" % k)) as f:
                got = f.read().split("\n")[:-1]
            assert len(got) == LINES, (k, len(got))
            bad = [(j, x) for j, x in enumerate(got) if x != str(j + 1)]
            assert not bad, (k, bad[:5])
        hist = {r["id"] for r in c.call("instance.history", {"limit": 1000})}
        assert {iid for _, (kd, iid) in made.items()} <= hist
        for k in range(3):
            st = c.call("instance.status", {"name": "fback%d" % k})
            assert st["program"]["state"] == "backoff", st["program"]
    finally:
        s.stop()


if __name__ == "__main__":
    wardtest.run(globals())
