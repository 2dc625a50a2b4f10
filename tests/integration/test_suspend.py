#!/usr/bin/python3
"""Issue 13, item 2: instance.suspend freezes the whole tree (cgroup.freeze,
answered once cgroup.events says "frozen 1"), daemons that left the process
group included, and stops the instance's clocks: the hangup deadline and the
watchdog resume with the time they had left. Without a cgroup, SIGSTOP to
the group as before. Resume refuses an instance that is not suspended. A
suspension survives ward.reexec: still frozen, clocks still paused.

Timings are measured with time.monotonic and asserted with wide margins
only: a suspended instance must outlive its deadline by far, and die after
resume no sooner than the time it had left and well before a whole new
deadline."""
import os
import time

import msgpack

import wardtest
from wardtest import Ward, payload, proc_state, retry, uniq, wait_dead

SH = "/bin/sh"
MARGIN = 0.8		# s: what a loaded machine may add to a timer


def setup_module():
    w = Ward().start()
    w.cgroups_in_use()
    return w


def need_cgroups(w):
    if not w.cgroups:
        raise wardtest.Skip("wardd cannot make cgroups here")


def writer(w, hang=None):
    """argv of a payload whose grandchild leaves the process group (setsid)
    and appends a line to a file every 10 ms, writing its pid first; the
    main process hangs (or runs hang). (argv, counter file, pid file)"""
    out = os.path.join(w.dir, uniq("count"))
    pidf = out + ".pid"
    loop = ('echo $$ > %s.tmp && mv %s.tmp %s; '
            'while :; do echo x >> %s; sleep 0.01; done' %
            (pidf, pidf, pidf, out))
    script = "setsid %s -c '%s' & exec %s" % (
        SH, loop, " ".join(hang or payload("hang")))
    return [SH, "-c", script], out, pidf


def size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def grows(path):
    """Whether path grows within a bounded wait."""
    s0 = size(path)
    retry(lambda: size(path) > s0, what="%s to grow" % path)
    return True


def stays(path, window=0.5, checks=10):
    """Whether path's size holds still over a bounded window, looked at
    checks times (a poll that compares, not a sleep that trusts)."""
    s0 = size(path)
    end = time.monotonic() + window
    for _ in range(checks):
        time.sleep(window / checks)
        if size(path) != s0:
            return False
    assert time.monotonic() >= end - 0.01
    return True


def frozen(st):
    with open(os.path.join(st["cgroup"], "cgroup.events")) as f:
        return "frozen 1" in f.read().split("\n")


def pgrp(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[2])


def start_writer(w, c, **kw):
    argv, out, pidf = writer(w, kw.pop("hang", None))
    name = uniq("frz")
    r = c.call("instance.run", dict(name=name, argv=argv, **kw))
    wardtest.wait_file(pidf)
    gc = int(open(pidf).read())
    assert pgrp(gc) != r["pid"], "the grandchild is in the payload's group"
    grows(out)
    return name, r, out, gc


def test_freeze_stops_grandchild_outside_group(w):
    """The reply comes once the tree is frozen: from then on the grandchild
    that left the process group writes nothing; after resume it writes."""
    need_cgroups(w)
    c = w.client()
    c.call("events.subscribe", {"types": ["payload"]})
    name, r, out, gc = start_writer(w, c)
    res = c.call("instance.suspend", {"name": name})
    assert res == {"ok": True, "frozen": True}, res
    st = c.call("instance.status", {"name": name})
    assert st["suspended"] is True and frozen(st), st
    assert stays(out), "the grandchild wrote while frozen"
    # Whether this answer had to wait for cgroup.events (it usually does:
    # the freezer settles after the write): said, not asserted.
    print("# the answer waited for frozen 1: %s" % (
        "freezing; the answer waits" in w.read_log()), flush=True)
    ev = c.event(lambda e: e["type"] == "payload" and e["name"] == name)
    assert ev["suspended"] is True, ev
    assert c.call("instance.resume", {"name": name}) == {"ok": True}
    ev = c.event(lambda e: e["type"] == "payload" and e["name"] == name)
    assert ev["suspended"] is False, ev
    st = c.call("instance.status", {"name": name})
    assert st["suspended"] is False and not frozen(st), st
    assert grows(out)
    # A suspended instance still stops: thawed, it hears SIGTERM.
    c.call("instance.suspend", {"name": name})
    c.call("instance.stop", {"name": name, "timeout_ms": 10000})
    assert wait_dead(c, name)["exit_signal"] == 15
    retry(lambda: wardtest.gone(gc), what="the grandchild to be killed")


def test_resume_refuses_what_is_not_suspended(w):
    c = w.client()
    name = uniq("run")
    c.call("instance.run", {"name": name, "argv": payload("hang")})
    e = c.error("instance.resume", {"name": name})
    assert e["code"] == "invalid_state" and "not suspended" in e["message"], e
    c.call("instance.suspend", {"name": name})
    e = c.error("instance.suspend", {"name": name})
    assert e["code"] == "invalid_state" and "already" in e["message"], e
    c.call("instance.kill", {"name": name})
    wait_dead(c, name)
    e = c.error("instance.resume", {"name": name})
    assert e["code"] == "invalid_state" and "not running" in e["message"], e
    e = c.error("instance.suspend", {"name": name})
    assert e["code"] == "invalid_state", e


def reexec(w, c, name):
    """ward.reexec; the same client goes on."""
    n = c.call("ward.stats")["reexecs"] + 1
    assert c.call("ward.reexec") == {"ok": True}
    retry(lambda: c.call("ward.stats")["reexecs"] == n,
          what="the re-exec to finish")
    return c


def crash(w, c, name):
    """SIGKILL wardd once STATE_DIR/state says name is suspended, and start
    another on the same state: a new client."""
    retry(lambda: snapshot_suspended(w, name), what="the state written")
    w.proc.kill()
    w.proc.wait()
    w.restart()
    return w.client()


def clock_paused(w, c, reason, deadline, meanwhile=None, **spec):
    """Suspend an instance some way into a deadline, hold it suspended for
    longer than the whole deadline, resume it: it must die of reason after
    resume, no sooner than the time it had left (measured: at least
    deadline - (suspend answered - run asked)) and sooner than a whole new
    deadline would give. meanwhile (reexec, crash) happens to wardd while
    it is suspended."""
    argv, out, pidf = writer(w)
    name = uniq(reason.lower())
    t_run = time.monotonic()
    r = c.call("instance.run", dict(name=name, argv=argv, **spec))
    t_ran = time.monotonic()
    wardtest.wait_file(pidf)
    # About 60 % in: then a whole new deadline is far from what is left.
    retry(lambda: time.monotonic() - t_ran >= 0.6 * deadline,
          what="the deadline to be well under way")
    t_sus = time.monotonic()
    res = c.call("instance.suspend", {"name": name})
    t_susd = time.monotonic()
    st = c.call("instance.status", {"name": name})
    assert st["state"] == "running", ("died before the suspend", st)
    if w.cgroups:
        assert res["frozen"] is True and frozen(st), (res, st)
    left_min = deadline - (t_susd - t_run)	# the timer ran at most that
    left_max = deadline - (t_sus - t_ran)	# ... and at least this
    assert left_min > 0.2, ("suspended too late to tell", left_min)
    if meanwhile is not None:
        c = meanwhile(w, c, name)
        st = c.call("instance.status", {"name": name})
        assert st["suspended"] is True and st["pid"] == r["pid"], st
        if st["cgroup"] is not None:	# a crash forgets it (its name)
            assert frozen(st), st
        if w.cgroups:
            assert stays(out, 0.3, 6), "it runs again after %s" % (
                meanwhile.__name__)
    # Held suspended for longer than the whole deadline: never killed.
    hold_until = t_susd + deadline + MARGIN
    while time.monotonic() < hold_until:
        st = c.call("instance.status", {"name": name})
        assert st["state"] == "running" and st["suspended"], (
            "killed while suspended", st)
        time.sleep(0.05)
    t_res = time.monotonic()
    c.call("instance.resume", {"name": name})
    if w.cgroups:
        assert grows(out), "not thawed"
    st = wait_dead(c, name)
    t_dead = time.monotonic()
    assert st["death_reason"] == reason, st
    after = t_dead - t_res
    # Not at once (it had time left), and not a whole new deadline.
    assert after >= left_min - 0.05, ("died too soon after resume", after,
                                      left_min)
    assert after <= left_max + MARGIN, ("the clock restarted from zero?",
                                        after, left_max)
    assert after < deadline, (after, deadline)
    return after, left_min, left_max


def test_hangup_clock_paused(w):
    c = w.client()
    after, lo, hi = clock_paused(w, c, "HANGUP", 2.0, detect_hangup=True,
                                 hangup_timeout_ms=2000)
    print("# hangup: died %.3f s after resume; %.3f-%.3f s were left" %
          (after, lo, hi), flush=True)


def test_watchdog_clock_paused(w):
    c = w.client()
    after, lo, hi = clock_paused(w, c, "WATCHDOG", 2.0, watchdog_ms=2000)
    print("# watchdog: died %.3f s after resume; %.3f-%.3f s were left" %
          (after, lo, hi), flush=True)


def test_suspension_survives_reexec(w):
    """Still frozen after ward.reexec, the clock still paused (the time it
    had left comes back with it), and resume thaws it."""
    c = w.client()
    after, lo, hi = clock_paused(w, c, "HANGUP", 2.0, meanwhile=reexec,
                                 detect_hangup=True, hangup_timeout_ms=2000)
    print("# after re-exec: died %.3f s after resume; %.3f-%.3f s were left"
          % (after, lo, hi), flush=True)


def snapshot_suspended(w, name):
    """Whether STATE_DIR/state, as written, has name suspended."""
    try:
        with open(os.path.join(w.state, "state"), "rb") as f:
            st = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
    except (FileNotFoundError, ValueError):
        return False
    return any(i and i.get("suspended") and i["spec"]["name"] == name
               for i in st.get("instances", []))


def test_suspension_survives_crash(w):
    """wardd killed outright while an instance is frozen: the next wardd
    reads it back suspended, its tree still frozen (an earlier wardd's
    cgroup), its hangup clock still paused; resume thaws that cgroup and the
    clock goes on with the time it had left."""
    w2 = Ward().start()
    w2.cgroups = w.cgroups
    try:
        after, lo, hi = clock_paused(w2, w2.client(), "HANGUP", 2.0,
                                     meanwhile=crash, detect_hangup=True,
                                     hangup_timeout_ms=2000)
    finally:
        # Its grandchild's cgroup was the dead wardd's: no cgroup.kill.
        for f in os.listdir(w2.dir):
            if f.endswith(".pid"):
                gc = int(open(os.path.join(w2.dir, f)).read())
                if not wardtest.gone(gc):
                    os.kill(gc, 9)
        w2.stop()
    print("# after a crash: died %.3f s after resume; %.3f-%.3f s were left"
          % (after, lo, hi), flush=True)


def test_without_cgroups_group_is_stopped():
    """--no-cgroups: SIGSTOP to the process group, answered at once with
    frozen false; resume continues it; the clocks pause all the same."""
    with Ward(["--no-cgroups"]) as w2:
        c = w2.client()
        name = uniq("stop")
        r = c.call("instance.run", {"name": name, "argv": payload("hang"),
                                    "watchdog_ms": 60000})
        assert c.call("instance.suspend", {"name": name}) == {
            "ok": True, "frozen": False}
        retry(lambda: proc_state(r["pid"]) == "T", what="stopped")
        assert c.call("instance.status", {"name": name})["suspended"]
        c.call("instance.resume", {"name": name})
        retry(lambda: proc_state(r["pid"]) in ("S", "R"), what="continued")
        c.call("instance.kill", {"name": name})
        wait_dead(c, name)


if __name__ == "__main__":
    wardtest.run(globals())
