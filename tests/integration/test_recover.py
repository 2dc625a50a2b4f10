#!/usr/bin/python3
"""Crash recovery without an fd store: wardd keeps STATE_DIR/state; a wardd
started after one was killed outright (SIGKILL) re-adopts the instances
still running, gives each one that died meanwhile an exit record
(SUPERVISOR_LOST, exit_status_lost), and keeps counting ids. A corrupt
state or a symlink in its place means a clean start."""
import os
import signal
import textwrap

import msgpack

import wardtest
from wardtest import Ward, payload, retry, wait_dead, proc_state


def ward_with_program(name):
    """A wardd whose config declares program name (payload hang, always
    restarted), once it runs; and a client."""
    w = Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "10-p.conf"), "w") as f:
        f.write(textwrap.dedent("""
            [program:%s]
            command = %s hang
            startsecs = 0
            autorestart = true
            """ % (name, wardtest.PAYLOAD)))
    w.extra += ["--config-dir", conf]
    w.start()
    c = w.client()
    retry(lambda: c.call("instance.status", {"name": name})["state"]
          == "running", what="%s to run" % name)
    return w, c


def state_file(w):
    return os.path.join(w.state, "state")


def snapshot_has(w, n_running):
    """STATE_DIR/state as written, if it holds n_running running instances
    (state 1, RUNNING), else None."""
    try:
        with open(state_file(w), "rb") as f:
            st = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
    except (FileNotFoundError, ValueError):
        return None
    # nil: room kept for an instance removed while the state was written
    running = [i for i in st.get("instances", []) if i and i.get("state") == 1]
    return st if len(running) == n_running else None


def crash(w):
    """SIGKILL wardd; its payloads live on (reparented)."""
    w.proc.kill()
    w.proc.wait()


def held(pid):
    """pid is suspended: stopped (SIGSTOP), or frozen in its cgroup
    (test_suspend.py)."""
    if proc_state(pid) == "T":
        return True
    with open("/proc/%d/cgroup" % pid) as f:
        cg = [l[3:].strip() for l in f if l.startswith("0::")][0]
    with open("/proc/self/mountinfo") as f:
        mnt = [l.split()[4] for l in f if " - cgroup2 " in l][0]
    with open(mnt + cg + "/cgroup.events") as f:
        return "frozen 1" in f.read()


def by_name(c):
    return {st["name"]: st for st in c.call("instance.list")}


def pipelined(c, method, params_list):
    """Requests sent back to back on one connection (256 outstanding at
    most); their results, each checked."""
    out, pending = [], []
    for p in params_list:
        pending.append(c.request(method, p))
        if len(pending) >= 256:
            out.append(c.response(pending.pop(0)))
    out.extend(c.response(m) for m in pending)
    for err, _ in out:
        assert err is None, err
    return [r for _, r in out]


def test_sliced_state_write_with_removals():
    """Issue 12: STATE_DIR/state is written a slice of instances per loop
    turn, never all at once; instances removed while it is written leave
    nil in their place, which a recovery skips without a word."""
    with Ward() as w:
        c = w.client()
        pipelined(c, "instance.create", [
            {"name": "sl%d" % k, "argv": ["/bin/true"]} for k in range(2000)])
        retry(lambda: not c.call("ward.stats")["snapshot"]["pending"],
              what="the state written")
        before = c.call("ward.stats")["snapshot"]
        # Removed in a burst: the write they start spans many loop turns,
        # and removals land in it.
        pipelined(c, "instance.remove", [{"name": "sl%d" % k}
                                         for k in range(0, 2000, 4)])
        retry(lambda: not c.call("ward.stats")["snapshot"]["pending"],
              what="the state written again")
        after = c.call("ward.stats")["snapshot"]
        writes = after["writes"] - before["writes"]
        assert writes >= 1, (before, after)
        # Each write of 1,500+ instances took 1500 / 64 turns at least.
        assert after["slices"] - before["slices"] >= writes * (1500 // 64), \
            (before, after)
        crash(w)
        w.restart()
        c = w.client()
        names = {st["name"] for st in c.call("instance.list")}
        assert names == {"sl%d" % k for k in range(2000) if k % 4}, \
            len(names)
        assert "cannot be read back" not in w.read_log()


def test_readopt_and_report_deaths():
    w, c = ward_with_program("decl")
    try:
        trig = os.path.join(w.dir, "trig")
        os.makedirs(trig)
        ids = {}
        for k in range(48):	# with "decl" and "early": 50
            if k % 2:
                argv = payload("wait-file", "%s/go%d" % (trig, k), "exit", 7)
            elif k % 4 == 0:
                argv = payload("notify", "READY=1", "hang")
            else:
                argv = payload("hang")
            r = c.call("instance.run", {"name": "r%d" % k, "argv": argv})
            ids["r%d" % k] = r["id"]
            if k % 8 == 2:
                c.call("instance.suspend", {"name": "r%d" % k})
        r = c.call("instance.run", {"name": "early", "argv": payload("exit", 3)})
        wait_dead(c, "early")
        before = by_name(c)
        # Written since early's death (which made the state pending): a
        # state with 49 running was on disk before early even existed.
        retry(lambda: not c.call("ward.stats")["snapshot"]["pending"] and
              snapshot_has(w, 49), what="the state on disk")
        crash(w)

        w.restart()
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {})
        after = by_name(c)
        assert set(after) == set(before), set(after) ^ set(before)
        for name, st in before.items():
            a = after[name]
            for k in ("id", "state", "pid", "suspended"):
                assert a[k] == st[k], (name, k, a[k], st[k])
        # The declared program still runs it, adopted.
        d = c.call("instance.status", {"name": "decl"})
        assert d["program"]["state"] == "running", d["program"]
        hist = c.call("instance.history", {"name": "early"})
        assert [h["exit_code"] for h in hist] == [3], hist
        # Three adopted ones exit 7: seen through PIDFD_INFO_EXIT.
        for k in (1, 3, 5):
            open("%s/go%d" % (trig, k), "w").close()
        died = {}
        while len(died) < 3:
            e = sub.event(lambda e: e["type"] == "died")
            assert e["name"] not in died, ("died twice", e)
            died[e["name"]] = e
        assert set(died) == {"r1", "r3", "r5"}, died
        for e in died.values():
            ex = e["exit"]
            assert ex["exit_code"] == 7, ex
            assert ex["exit_status_lost"] is False, ex
            assert ex["death_reason"] == "UNKNOWN", ex
        for k in (1, 3, 5):
            st = c.call("instance.status", {"name": "r%d" % k})
            assert st["state"] == "dead" and st["exit_code"] == 7, st
            assert [h["exit_code"] for h in c.call(
                "instance.history", {"name": "r%d" % k})] == [7]
        # No second report of them.
        c.call("instance.kill", {"name": "r0"})
        e = sub.event(lambda e: e["type"] == "died")
        assert e["name"] == "r0", e
        assert e["exit"]["exit_signal"] == signal.SIGKILL, e
        # (4) ids go on from where they were.
        r = c.call("instance.run", {"argv": payload("exit", 0)})
        assert r["id"] > max(st["id"] for st in after.values()), r
    finally:
        w.stop()


def test_deaths_while_down():
    w, c = ward_with_program("again")
    try:
        pids = {}
        for k in range(4):
            r = c.call("instance.run", {"name": "d%d" % k,
                                        "argv": payload("hang")})
            pids["d%d" % k] = r["pid"]
        pids["again"] = c.call("instance.status", {"name": "again"})["pid"]
        retry(lambda: snapshot_has(w, 5), what="the state on disk")
        crash(w)
        for name in ("d0", "d2", "again"):
            os.kill(pids[name], signal.SIGKILL)
        # Reaped by their new parent, not zombies: a zombie would still be
        # adopted and its status read (field 52 of /proc/PID/stat).
        retry(lambda: all(proc_state(pids[n]) is None
                          for n in ("d0", "d2", "again")),
              what="the payloads to die and be reaped")

        w.restart()
        c = w.client()
        for name in ("d0", "d2"):
            st = c.call("instance.status", {"name": name})
            assert st["state"] == "dead", st
            assert st["death_reason"] == "SUPERVISOR_LOST", st
            assert st["exit_status_lost"] is True, st
            assert st["exit_code"] is None and st["exit_signal"] is None, st
            hist = c.call("instance.history", {"name": name})
            assert len(hist) == 1 and hist[0]["exit_status_lost"], hist
            assert hist[0]["death_reason"] == "SUPERVISOR_LOST", hist
        for name in ("d1", "d3"):
            st = c.call("instance.status", {"name": name})
            assert st["state"] == "running" and st["pid"] == pids[name], st
        # The program's restart policy saw the death: it runs again.
        st = retry(lambda: (lambda s: s if s["state"] == "running" and
                            s["pid"] != pids["again"] else None)(
            c.call("instance.status", {"name": "again"})),
            what="again to restart")
        hist = c.call("instance.history", {"name": "again"})
        assert [h["death_reason"] for h in hist] == ["SUPERVISOR_LOST"], hist
        # A restarted instance is wardd's child again: a normal death.
        c.call("instance.kill", {"name": "again"})
        e = retry(lambda: [h for h in c.call(
            "instance.history", {"name": "again"}) if h["death_reason"] ==
            "KILLED"], what="the restarted one's death")
        assert e[0]["exit_status_lost"] is False, e
    finally:
        w.stop()


def test_clean_exit_removes_state():
    w = Ward().start()
    try:
        c = w.client()
        c.call("instance.run", {"argv": payload("hang")})
        retry(lambda: snapshot_has(w, 1), what="the state on disk")
        # A clean exit that stopped every instance: nothing to recover.
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=wardtest.TIMEOUT) == 0
        assert not os.path.exists(state_file(w)), os.listdir(w.state)
    finally:
        w.stop()


def test_not_the_same_process():
    """A pid whose start time differs from the saved one is another
    process (the pid was reused), and a state of another boot names no
    process: recorded dead, and the process is left alone."""
    w = Ward().start()
    pids = []
    try:
        c = w.client()
        for name in ("reused", "reboot", "same"):
            pids.append(c.call("instance.run", {
                "name": name, "argv": payload("hang")})["pid"])
        st = retry(lambda: snapshot_has(w, 3), what="the state on disk")
        crash(w)
        for i in st["instances"]:
            if i["spec"]["name"] == "reused":
                i["start_time"] += 1
        with open(state_file(w), "wb") as f:
            f.write(msgpack.packb(st))
        w.restart()
        c = w.client()
        lost = c.call("instance.status", {"name": "reused"})
        assert lost["death_reason"] == "SUPERVISOR_LOST", lost
        assert c.call("instance.status", {"name": "same"})["state"] == \
            "running"
        assert proc_state(pids[0]) not in (None, "Z"), "it was signalled"
        st = retry(lambda: snapshot_has(w, 2), what="the state rewritten")
        crash(w)
        st["boot_id"] = "another-boot"
        with open(state_file(w), "wb") as f:
            f.write(msgpack.packb(st))
        w.restart()
        c = w.client()
        for name in ("reboot", "same"):
            st = c.call("instance.status", {"name": name})
            assert st["death_reason"] == "SUPERVISOR_LOST", st
    finally:
        w.stop()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def crashed_with_state():
    """A wardd killed outright after it wrote a state with one instance."""
    w = Ward().start()
    c = w.client()
    c.call("instance.run", {"name": "x", "argv": payload("exit", 0)})
    retry(lambda: snapshot_has(w, 0) and snapshot_has(w, 0)["instances"],
          what="the state on disk")
    crash(w)
    return w


def restarted_afresh(w):
    """Restart w's wardd; it must have started with no instance."""
    w.restart()
    c = w.client()
    assert c.call("instance.list") == [], c.call("instance.list")
    return c


def test_corrupt_state_starts_afresh():
    w = crashed_with_state()
    try:
        with open(state_file(w), "r+b") as f:
            f.truncate(7)
        c = restarted_afresh(w)
        assert os.path.exists(os.path.join(w.state, "state.bad"))
        assert "renamed to state.bad" in w.read_log()
        # It is written anew (the bad one stays for a person).
        c.call("instance.run", {"name": "y", "argv": payload("hang")})
        retry(lambda: snapshot_has(w, 1), what="a new state on disk")
    finally:
        w.stop()


def test_hostile_state_values():
    """Well-formed msgpack, nonsense inside: read as far as it makes sense,
    never a crash."""
    w = crashed_with_state()
    try:
        with open(state_file(w), "wb") as f:
            f.write(msgpack.packb({
                "ward_state": 1, "stats": [1, 2],
                "instances": [1, "x", {"id": "bad"}, {"id": 5, "spec": 7},
                              {"id": 6, "spec": {"name": 9, "argv": []}},
                              {"id": 7, "state": 1, "pid": -1,
                               "spec": {"name": "z", "argv": ["/bin/true"]},
                               "start_time": "x", "exit": [1]}],
                "programs": [None, {"conf": {"name": "p"}}]}))
        w.restart()
        c = w.client()
        for st in c.call("instance.list"):
            # Whatever was read back, a running one without a process
            # has been recorded dead.
            assert st["state"] != "running", st
    finally:
        w.stop()


def test_symlink_state_not_followed():
    w = crashed_with_state()
    try:
        real = os.path.join(w.dir, "elsewhere")
        os.rename(state_file(w), real)
        with open(real, "rb") as f:
            kept = f.read()
        os.symlink(real, state_file(w))
        c = restarted_afresh(w)
        assert os.path.islink(os.path.join(w.state, "state.bad"))
        c.call("instance.run", {"name": "y", "argv": payload("hang")})
        retry(lambda: snapshot_has(w, 1), what="a new state on disk")
        assert not os.path.islink(state_file(w))
        with open(real, "rb") as f:
            assert f.read() == kept, "the link's target was written"
    finally:
        w.stop()



def test_clean_restart_with_leave_running():
    """ward.shutdown {kill_instances: false}, then a new wardd: 50
    instances of every kind that can outlive wardd (nothing captured) come
    back with the same ids, pids and states, suspended ones still
    suspended, programs still in their backoff; later deaths are reported
    once, with the exit status; history is whole."""
    w = Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "p.conf"), "w") as f:
        f.write(wardtest.programs_conf(5, back="back"))
    w.extra += ["--config-dir", conf]
    w.start()
    try:
        c = w.client()
        trig = os.path.join(w.dir, "trig")
        os.makedirs(trig)
        kinds = {}
        for k in range(45):
            name = "c%d" % k
            if k < 15:
                argv = payload("hang")
            elif k < 30:
                argv = payload("wait-file", "%s/go%d" % (trig, k), "exit", 7)
            elif k < 40:
                argv = payload("hang")
            else:
                argv = payload("notify", "READY=1", "hang")
            c.call("instance.run", {"name": name, "argv": argv})
            if 30 <= k < 40:
                c.call("instance.suspend", {"name": name})
            kinds[name] = k
        for k in range(5):
            retry(lambda: c.call("instance.status", {"name": "back%d" % k})
                  ["program"]["state"] == "backoff", what="backoff")
        dead = c.call("instance.run", {"name": "gone", "argv":
                      payload("exit", 4)})
        wait_dead(c, "gone")
        # READY=1 written (fd 4 is lost at a leave-running shutdown: a
        # write after it would be a SIGPIPE, a death of the test's making).
        retry(lambda: all(c.call("instance.status", {"name": "c%d" % k})
                          ["payload_state"] == "ready" for k in range(40, 45)),
              what="c40..c44 ready")
        before = by_name(c)
        assert len(before) == 51, len(before)
        c.call("ward.shutdown", {"kill_instances": False})
        assert w.proc.wait(timeout=wardtest.TIMEOUT) == 0

        w.restart()
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["died"]})
        after = by_name(c)
        assert set(after) == set(before), set(after) ^ set(before)
        for name, st in before.items():
            for k in ("id", "state", "pid", "suspended"):
                assert after[name][k] == st[k], (name, k, after[name][k],
                                                 st[k])
        for k in range(30, 40):
            assert held(before["c%d" % k]["pid"]), k
        for k in range(5):
            st = c.call("instance.status", {"name": "back%d" % k})
            assert st["program"]["state"] == "backoff", st["program"]
        assert [h["id"] for h in c.call("instance.history",
                {"name": "gone"})] == [dead["id"]]
        for k in range(15, 30):
            open("%s/go%d" % (trig, k), "w").close()
        for k in list(range(15)) + list(range(30, 45)):
            c.call("instance.kill", {"name": "c%d" % k, "signal": "KILL"})
        died = {}
        while len(died) < 45:
            e = sub.event(lambda e: e["type"] == "died")
            if e["name"] not in kinds:
                continue
            assert e["name"] not in died, ("reported twice", e)
            died[e["name"]] = e["exit"]
        for name, ex in died.items():
            if 15 <= kinds[name] < 30:
                assert ex["exit_code"] == 7, ex
            else:
                assert ex["exit_signal"] == signal.SIGKILL, ex
            assert ex["exit_status_lost"] is False, ex
        hist = {h["name"] for h in c.call("instance.history",
                                          {"limit": 1000})}
        assert set(kinds) | {"gone"} <= hist
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
