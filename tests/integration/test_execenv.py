#!/usr/bin/python3
"""The execution environment and whole-tree stop.

instance.create's group, umask, rlimits, nice and oom_score_adj, each seen
from inside the payload (`payload report`), bad values refused, and what a
non-admin may not do. Then cgroups: each instance runs in its own cgroup2
directory, instance.stop reaches a daemon that left the instance's session,
the directory goes once it is empty, and with --no-cgroups wardd says so
once and a stop still reaches the process group.

A test acts as `nobody` through setpriv, as test_users.py does.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

import wardtest
from wardtest import TIMEOUT, Ward, WardError, gone, payload, proc_state, \
    read_report, retry, wait_dead, wait_file
from wardtest import uniq

NOBODY = 65534
NOGROUP = 65534
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))

PRELUDE = wardtest.UID_PRELUDE


def setup_module():
    w = Ward().start()
    w.c = w.client()
    w.shared_out()		# reports of payloads running as nobody too
    w.cgroups_in_use()
    return w



def as_nobody(w, body, groups=("--init-groups",)):
    """Run body as uid nobody; return the JSON it passed to done()."""
    p = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup"] + list(groups) +
        [sys.executable, "-c", PRELUDE + body],
        env=dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=w.sock),
        capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, "nobody script failed (%d):\n%s" % (
        p.returncode, p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode().splitlines()[-1])


def report_of(w, **kw):
    """Run `payload report` with the given create keys; its report."""
    path = os.path.join(w.out, uniq("rep"))
    r = w.c.call("instance.run", dict(argv=payload("report", path), **kw))
    st = wait_dead(w.c, r["id"])
    assert st["death_reason"] == "SHUTDOWN", st
    return read_report(path)


def refused(w, code, **kw):
    """instance.create with these keys fails with code; the message."""
    err = w.c.error("instance.create", dict(argv=payload("exit", 0), **kw))
    assert err["code"] == code, (kw, err)
    return err["message"]


def has_cap_sys_resource(pid):
    """CAP_SYS_RESOURCE (24) in pid's effective set: lowering oom_score_adj
    and raising hard limits need it (containers often drop it)."""
    with open("/proc/%d/status" % pid) as f:
        eff = [l.split()[1] for l in f if l.startswith("CapEff:")][0]
    return bool(int(eff, 16) & (1 << 24))


def read_pid(path):
    wait_file(path)
    return int(open(path).read())


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---- group ----------------------------------------------------------------

def test_group_sets_the_gid(w):
    rep = report_of(w, group=4242)
    assert rep["uid"] == "0" and rep["gid"] == "4242", rep
    rep = report_of(w, group="4243")
    assert rep["gid"] == "4243", rep
    # With user, group replaces the gid user implies.
    rep = report_of(w, user="65534", group=4242)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == "4242", rep
    rep = report_of(w, user="65534:4243", group=4242)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == "4242", rep


def test_group_refused(w):
    for bad in ("wheel", "", "-1", -1, 4294967295, "4294967295", True, 1.5,
                "12a"):
        msg = refused(w, "invalid_argument", group=bad)
        assert "'group'" in msg and "gid" in msg, (bad, msg)


def test_nobody_group_only_its_own(w):
    path = os.path.join(w.out, uniq("nobgrp"))
    out = as_nobody(w, "done([attempt('instance.run', %r), "
                       "attempt('instance.create', %r)])" % (
                           {"argv": payload("report", path), "group": 4242},
                           {"argv": payload("exit", 0), "group": 4243}),
                    groups=("--groups=%d,4242" % NOGROUP,))
    assert "ok" in out[0], out
    wait_dead(w.c, out[0]["ok"]["id"])
    rep = read_report(path)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == "4242", rep
    assert out[1].get("code") == "permission_denied", out
    assert "4243" in out[1]["message"], out


# ---- umask ----------------------------------------------------------------

def test_umask(w):
    assert report_of(w, umask="027")["umask"] == "0027"
    assert report_of(w, umask=0o077)["umask"] == "0077"
    assert report_of(w, umask="0")["umask"] == "0000"
    # Without it, wardd's own (ours: wardd inherited it from this process).
    mask = os.umask(0)
    os.umask(mask)
    assert report_of(w)["umask"] == "%04o" % mask


def test_umask_refused(w):
    for bad in ("8", "0778", "01000", "", "abc", "0o27", 512, -1, True):
        msg = refused(w, "invalid_argument", umask=bad)
        assert "'umask'" in msg, (bad, msg)


# ---- rlimits --------------------------------------------------------------

def test_rlimits(w):
    rep = report_of(w, rlimits={"nofile": "256:512", "core": "infinity",
                                "nproc": 1000, "stack": "8388608:infinity",
                                "msgqueue": "0", "cpu": "100:infinity"})
    assert rep["rlimit_nofile"] == "256:512", rep
    assert rep["rlimit_core"] == "infinity:infinity", rep
    assert rep["rlimit_nproc"] == "1000:1000", rep
    assert rep["rlimit_stack"] == "8388608:infinity", rep
    assert rep["rlimit_msgqueue"] == "0:0", rep
    assert rep["rlimit_cpu"] == "100:infinity", rep
    # Without rlimits.nofile the child gets wardd's original limit back
    # (wardd raised its own): the explicit one above won over that.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fmt = lambda v: "infinity" if v == resource.RLIM_INFINITY else str(v)
    assert report_of(w)["rlimit_nofile"] == "%s:%s" % (fmt(soft), fmt(hard))


def test_rlimits_refused(w):
    cases = [({"files": 10}, "limit names"),
             ({"NOFILE": 10}, "limit names"),
             ({"nofile": "10:5"}, "soft limit"),
             ({"nofile": "-1"}, "'rlimits.nofile'"),
             ({"nofile": -1}, "'rlimits.nofile'"),
             ({"nofile": "1:2:3"}, "'rlimits.nofile'"),
             ({"nofile": "inf"}, "'rlimits.nofile'"),
             ({"nofile": ""}, "'rlimits.nofile'"),
             ({"nofile": True}, "'rlimits.nofile'"),
             ({"core": "99999999999999999999999"}, "'rlimits.core'"),
             ({1: 10}, "limit names")]
    for rl, what in cases:
        msg = refused(w, "invalid_argument", rlimits=rl)
        assert what in msg, (rl, msg)
    assert refused(w, "invalid_argument", rlimits=["nofile", 10])


# ---- nice and oom_score_adj -----------------------------------------------

def test_nice(w):
    assert report_of(w, nice=7)["nice"] == "7"
    assert report_of(w, nice=-3)["nice"] == "-3"
    assert report_of(w, nice=0)["nice"] == "0"
    for bad in (20, -21, 1000, "5", 1.0):
        msg = refused(w, "invalid_argument", nice=bad)
        assert "'nice'" in msg, (bad, msg)


def test_oom_score_adj(w):
    assert report_of(w, oom_score_adj=500)["oom_score_adj"] == "500"
    if has_cap_sys_resource(w.proc.pid):
        assert report_of(w, oom_score_adj=-200)["oom_score_adj"] == "-200"
    else:
        # Root without CAP_SYS_RESOURCE: the kernel says no, and the spawn
        # failure names the step.
        err = w.c.error("instance.run", {"argv": payload("exit", 0),
                                         "oom_score_adj": -200})
        assert err["code"] == "spawn_failed", err
        assert "oom_score_adj" in err["message"], err
    with open("/proc/%d/oom_score_adj" % w.proc.pid) as f:
        own = f.read().strip()
    assert report_of(w)["oom_score_adj"] == own
    for bad in (1001, -1001, "100"):
        msg = refused(w, "invalid_argument", oom_score_adj=bad)
        assert "'oom_score_adj'" in msg, (bad, msg)


def test_nobody_cwd_is_entered_as_nobody(w):
    """chdir happens after the id switch: a non-admin cannot use a
    directory it may not enter, as root's own instance can."""
    locked = os.path.join(w.dir, uniq("locked"))
    os.mkdir(locked, 0o700)
    out = as_nobody(w, "done(attempt('instance.run', %r))" % (
        {"argv": payload("exit", 0), "cwd": locked},))
    if "ok" in out:
        st = wait_dead(w.c, out["ok"]["id"])
        assert st["state"] == "failed", st
        assert "Permission denied" in (st["failure_reason"] or ""), st
    else:
        # Checked at create, as nobody, since issue 9 (finding 8).
        assert out["code"] == "invalid_argument", out
        assert "'cwd'" in out["message"] and "enter" in out["message"], out
    st = wait_dead(w.c, w.c.call("instance.run", {
        "argv": payload("exit", 0), "cwd": locked})["id"])
    assert st["death_reason"] == "SHUTDOWN", st


def test_wardds_oom_shield_is_not_a_users():
    """A wardd that runs shielded from the OOM killer (OOMScoreAdjust=-900
    is common for supervisors) passes that on to admins' instances only:
    a non-admin's start at 0 unless they ask for more."""
    if not has_cap_sys_resource(os.getpid()):
        raise wardtest.Skip("lowering oom_score_adj needs CAP_SYS_RESOURCE")
    with open("/proc/self/oom_score_adj") as f:
        mine = f.read().strip()
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("-500")
    try:
        sw = Ward().start()
    finally:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(mine)
    try:
        sw.c = sw.client()
        sw.shared_out()
        with open("/proc/%d/oom_score_adj" % sw.proc.pid) as f:
            assert f.read().strip() == "-500"
        assert report_of(sw)["oom_score_adj"] == "-500"
        for ask, want in ((None, "0"), (300, "300")):
            path = os.path.join(sw.out, uniq("noboom"))
            spec = {"argv": payload("report", path)}
            if ask is not None:
                spec["oom_score_adj"] = ask
            out = as_nobody(sw, "done(attempt('instance.run', %r))" % (spec,))
            assert "ok" in out, out
            wait_dead(sw.c, out["ok"]["id"])
            assert read_report(path)["oom_score_adj"] == want, (ask, want)
    finally:
        sw.stop()


def spawn_failed_later(w, attempt, what):
    """An instance.run that was answered, and whose instance then failed
    to spawn, saying what."""
    assert "ok" in attempt, attempt
    st = wait_dead(w.c, attempt["ok"]["id"])
    assert st["state"] == "failed", st
    assert st["death_reason"] == "SPAWN_FAILED", st
    assert what in st["failure_reason"], st
    return True


def test_nobody_limits(w):
    """A non-admin may raise oom_score_adj but not lower it; nice and
    rlimits are applied after its id switch, so the kernel holds it to what
    it could do itself (while root may grant more)."""
    hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1]
    above = str(hard + 1) if hard != resource.RLIM_INFINITY else None
    ok_path = os.path.join(w.out, uniq("nobok"))
    out = as_nobody(w, "done(%s)" % ", ".join([
        "{'lower': attempt('instance.create', %r)" % (
            {"argv": payload("exit", 0), "oom_score_adj": -1},),
        "'ok': attempt('instance.run', %r)" % (
            {"argv": payload("report", ok_path), "oom_score_adj": 300,
             "nice": 5, "rlimits": {"nofile": "64:128"}},),
        "'nice': attempt('instance.run', %r)" % (
            {"argv": payload("exit", 0), "nice": -5},),
        "'rlimit': attempt('instance.run', %r)}" % (
            {"argv": payload("exit", 0),
             "rlimits": {"msgqueue": above or "1"}},)]))
    assert out["lower"].get("code") == "permission_denied", out
    assert "oom_score_adj" in out["lower"]["message"], out
    assert "ok" in out["ok"], out
    wait_dead(w.c, out["ok"]["ok"]["id"])
    rep = read_report(ok_path)
    assert rep["uid"] == str(NOBODY), rep
    assert rep["oom_score_adj"] == "300", rep
    assert rep["nice"] == "5", rep
    assert rep["rlimit_nofile"] == "64:128", rep
    # A non-admin's child is forked and not waited for: what fails after its
    # id switch fails the instance later (SPAWN_FAILED, the same message).
    assert spawn_failed_later(w, out["nice"], "setpriority")
    if above is not None:
        assert spawn_failed_later(w, out["rlimit"], "rlimits.msgqueue")
        # root may grant what nobody may not take (given the capability).
        if has_cap_sys_resource(w.proc.pid):
            rep = report_of(w, rlimits={"msgqueue": above})
            assert rep["rlimit_msgqueue"] == "%s:%s" % (above, above), rep
    # root may lower nice (CAP_SYS_NICE), nobody may not: the limits are
    # applied after a non-admin's id switch, before an admin's.
    assert report_of(w, nice=-5, user="65534")["nice"] == "-5"


# ---- cgroups ----------------------------------------------------------------

def cgroup_of(w, ident):
    st = w.c.call("instance.status", {"id": ident})
    return st["cgroup"]


def start_time(pid):
    """Field 22 of /proc/PID/stat: clock ticks after boot."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def cgroup_name(w, ident):
    """What wardd names an instance's cgroup: its pid, start time and id."""
    return "ward-%d-%d-%d" % (w.proc.pid, start_time(w.proc.pid), ident)


def test_cgroup_named_in_status_and_proc(w):
    go = os.path.join(w.dir, uniq("go"))
    path = os.path.join(w.out, uniq("cgrep"))
    r = w.c.call("instance.run", {"argv": payload("report", path,
                                                   "wait-file", go)})
    wait_file(path)
    cg = cgroup_of(w, r["id"])
    rep = read_report(path)
    if not w.cgroups:
        assert cg is None, cg
        open(go, "w").close()
        wait_dead(w.c, r["id"])
        return
    assert os.path.basename(cg) == cgroup_name(w, r["id"]), cg
    assert os.path.isdir(cg), cg
    # The payload's own /proc/self/cgroup names that directory.
    assert rep["cgroup"] and cg.endswith(rep["cgroup"]), (cg, rep)
    assert rep["cgroup"].endswith("/" + cgroup_name(w, r["id"])), rep
    with open(os.path.join(cg, "cgroup.procs")) as f:
        assert str(r["pid"]) in f.read().split(), cg
    # wardd itself is not in it.
    with open("/proc/%d/cgroup" % w.proc.pid) as f:
        assert rep["cgroup"] not in f.read()
    open(go, "w").close()
    st = wait_dead(w.c, r["id"])
    assert st["cgroup"] is None, st
    assert not os.path.exists(cg), cg


def test_stop_reaches_a_daemon(w):
    """The daemon double-forked into a session of its own: no process-group
    signal reaches it. The stop's SIGTERM ends the main process; what is
    left is killed through the cgroup at once (not after the 60 s stop
    timeout), and the emptied directory is removed."""
    pidfile = os.path.join(w.dir, uniq("daemon"))
    r = w.c.call("instance.run", {"argv": payload("daemon", pidfile, "hang")})
    daemon = read_pid(pidfile)
    try:
        assert os.getsid(daemon) != r["pid"], "the daemon left the session"
        assert os.getpgid(daemon) != r["pid"]
        cg = cgroup_of(w, r["id"])
        if not w.cgroups:
            raise wardtest.Skip("wardd cannot make cgroups here")
        with open(os.path.join(cg, "cgroup.procs")) as f:
            assert str(daemon) in f.read().split()
        t0 = time.monotonic()
        w.c.call("instance.stop", {"id": r["id"], "timeout_ms": 60000})
        st = wait_dead(w.c, r["id"], timeout=15)
        assert st["exit_signal"] == signal.SIGTERM, st
        retry(lambda: gone(daemon), 15, what="the daemon to die")
        assert time.monotonic() - t0 < 30, "waited for the stop timeout"
        retry(lambda: not os.path.exists(cg), 15, what="%s to go" % cg)
        assert cgroup_of(w, r["id"]) is None
        assert "killing what is left in %s" % cg in w.read_log()
    finally:
        kill_quietly(daemon)


def test_stop_timeout_kills_the_tree(w):
    """Main process and daemon both ignore SIGTERM: when the stop timer
    fires, cgroup.kill takes them all."""
    pidfile = os.path.join(w.dir, uniq("stubborn"))
    r = w.c.call("instance.run", {"argv": payload("ignore-term", "daemon",
                                                   pidfile, "hang")})
    daemon = read_pid(pidfile)
    try:
        cg = cgroup_of(w, r["id"])
        w.c.call("instance.stop", {"id": r["id"], "timeout_ms": 300})
        st = wait_dead(w.c, r["id"], timeout=15)
        assert st["exit_signal"] == signal.SIGKILL, st
        if not w.cgroups:
            raise wardtest.Skip("wardd cannot make cgroups here")
        retry(lambda: gone(daemon), 15, what="the daemon to die")
        retry(lambda: not os.path.exists(cg), 15, what="%s to go" % cg)
    finally:
        kill_quietly(daemon)


def test_leftovers_without_a_stop_keep_the_cgroup(w):
    """No stop was asked for: what the payload left running is not killed,
    its cgroup stays (status shows it) until it exits, also after
    instance.remove."""
    pidfile = os.path.join(w.dir, uniq("left"))
    r = w.c.call("instance.run", {"argv": payload("daemon", pidfile,
                                                   "wait-file", pidfile,
                                                   "exit", 0)})
    daemon = read_pid(pidfile)
    try:
        st = wait_dead(w.c, r["id"])
        assert st["death_reason"] == "SHUTDOWN", st
        assert not gone(daemon), "a daemon nobody stopped must live on"
        if not w.cgroups:
            assert st["cgroup"] is None, st
            return
        cg = st["cgroup"]
        assert cg is not None and os.path.isdir(cg), st
        with open(os.path.join(cg, "cgroup.procs")) as f:
            assert str(daemon) in f.read().split()
        w.c.call("instance.remove", {"id": r["id"]})
        assert os.path.isdir(cg), "removal does not kill"
        os.kill(daemon, signal.SIGKILL)
        retry(lambda: not os.path.exists(cg), 15, what="%s to go" % cg)
    finally:
        kill_quietly(daemon)


def test_restart_reuses_the_cgroup(w):
    """A dead instance whose daemon lives on runs again in the same cgroup
    (the old daemon is still in it, and so is the new run's)."""
    pidfile = os.path.join(w.dir, uniq("again"))
    argv = payload("daemon", pidfile, "wait-file", pidfile, "exit", 0)
    r = w.c.call("instance.run", {"argv": argv})
    daemons = [read_pid(pidfile)]
    try:
        st = wait_dead(w.c, r["id"])
        cg = st["cgroup"]
        os.unlink(pidfile)
        w.c.call("instance.start", {"id": r["id"]})
        daemons.append(read_pid(pidfile))
        wait_dead(w.c, r["id"])
        if not w.cgroups:
            return
        assert cgroup_of(w, r["id"]) == cg
        with open(os.path.join(cg, "cgroup.procs")) as f:
            procs = f.read().split()
        assert all(str(d) in procs for d in daemons), (daemons, procs)
    finally:
        for d in daemons:
            kill_quietly(d)


def test_failed_spawn_leaves_no_cgroup(w):
    d = tempfile.mkdtemp(dir=w.dir)
    r = w.c.call("instance.create", {"argv": payload("exit", 0), "cwd": d})
    os.rmdir(d)
    err = w.c.error("instance.start", {"id": r["id"]})
    assert err["code"] == "spawn_failed" and "chdir" in err["message"], err
    st = w.c.call("instance.status", {"id": r["id"]})
    assert st["cgroup"] is None, st
    if w.cgroups:
        other = w.c.call("instance.run", {"argv": payload("hang")})
        base = os.path.dirname(cgroup_of(w, other["id"]))
        w.c.call("instance.kill", {"id": other["id"]})
        wait_dead(w.c, other["id"])
        assert not os.path.exists(os.path.join(base, cgroup_name(w, r["id"])))


def test_sweep_knows_a_wardd_by_pid_and_start_time(w):
    """At start-up wardd removes the empty cgroups of wardds that are gone,
    and only those: a wardd that had the same pid (pid 1 in a restarted
    container) is told apart by its start time."""
    if not w.cgroups:
        raise wardtest.Skip("wardd cannot make cgroups here")
    r = w.c.call("instance.run", {"argv": payload("hang")})
    base = os.path.dirname(cgroup_of(w, r["id"]))
    w.c.call("instance.kill", {"id": r["id"]})
    wait_dead(w.c, r["id"])
    start = start_time(w.proc.pid)
    stale = os.path.join(base, "ward-%d-%d-7" % (w.proc.pid, start + 1))
    live = os.path.join(base, "ward-%d-%d-999999" % (w.proc.pid, start))
    os.mkdir(stale)
    os.mkdir(live)
    try:
        other = Ward().start()
        other.stop()
        assert not os.path.exists(stale), "a gone wardd's cgroup stayed"
        assert os.path.isdir(live), "a live wardd's cgroup was swept"
    finally:
        for d in (stale, live):
            if os.path.isdir(d):
                os.rmdir(d)


def test_cgroup_metrics(w):
    """The tree's CPU time from the cgroup: the final bill at death."""
    r = w.c.call("instance.run", {"argv": payload("cpu", 300)})
    st = wait_dead(w.c, r["id"])
    m = st["metrics"]
    assert "cgroup_cpu_usage_ms" in m and "cgroup_memory_kb" in m, m
    if not w.cgroups:
        assert m["cgroup_cpu_usage_ms"] is None, m
        return
    assert m["cgroup_cpu_usage_ms"] >= 250, m
    assert m["cgroup_memory_kb"] is None or isinstance(
        m["cgroup_memory_kb"], int), m
    h = w.c.call("instance.history", {"id": r["id"]})
    assert h[-1]["metrics"]["cgroup_cpu_usage_ms"] >= 250, h


def test_no_cgroups_fallback():
    """--no-cgroups: said once, no cgroup in status, and a stop still
    reaches the process group (a grandchild in it dies)."""
    w = Ward(args=["--no-cgroups"]).start()
    try:
        c = w.client()
        pidfile = os.path.join(w.dir, "gc")
        rep = os.path.join(w.dir, "rep")
        r = c.call("instance.run", {"argv": payload("report", rep,
                                                     "grandchild", pidfile,
                                                     "hang")})
        gc = read_pid(pidfile)
        try:
            st = c.call("instance.status", {"id": r["id"]})
            assert st["cgroup"] is None, st
            assert "ward-" not in read_report(rep)["cgroup"]
            c.call("instance.stop", {"id": r["id"], "timeout_ms": 60000})
            st = wait_dead(c, r["id"], timeout=15)
            assert st["exit_signal"] == signal.SIGTERM, st
            retry(lambda: gone(gc), 15, what="the grandchild to die")
            assert st["metrics"]["cgroup_cpu_usage_ms"] is None, st
        finally:
            kill_quietly(gc)
        c.call("instance.run", {"argv": payload("exit", 0)})
        log = w.read_log()
        assert log.count("not using cgroups") == 1, log
        assert "not using cgroups: --no-cgroups was given" in log, log
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
