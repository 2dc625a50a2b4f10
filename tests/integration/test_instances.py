#!/usr/bin/python3
"""The instance engine: spawn, a clean child, death reasons, the failure
and notify pipes, boot hangup, control, runtime dirs and dumps, history."""
import os
import signal
import socket
import subprocess
import time

import wardtest
from wardtest import Ward, WardError, gone, payload, proc_state, read_report, \
    retry, wait_dead, wait_file
from wardtest import uniq

W = None
C = None


def setup_module():
    global W, C
    W = Ward().start()
    C = W.client()
    return W



def run(argv, **kw):
    name = kw.pop("name", None) or uniq()
    r = C.call("instance.run", dict(name=name, argv=argv, **kw))
    return name, r


def died(argv, **kw):
    name, _ = run(argv, **kw)
    return wait_dead(C, name)


# ---- the child starts clean

def test_child_starts_clean():
    """Empty mask, default dispositions, own session, fds 0-4 only, and no
    systemd variables, even when wardd itself inherited the opposite."""
    def dirty():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGTERM})
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    env = dict(os.environ, NOTIFY_SOCKET="/nonexistent/notify",
               LISTEN_PID="1", LISTEN_FDS="0", LISTEN_FDNAMES="x",
               WARD_FAILURE_FD="9")
    w = Ward(env=env)
    w.log = open(w.logpath, "ab")
    w.proc = subprocess.Popen(
        [wardtest.WARDD, "--socket", w.sock, "--state-dir", w.state],
        stdout=w.log, stderr=w.log, env=env, preexec_fn=dirty)
    try:
        w.wait_ready()
        c = w.client()
        out = os.path.join(w.dir, "report")
        c.call("instance.run", {"name": "clean", "argv": payload("report", out),
                                "env": {"TEST_VAR": "yes"}})
        st = wait_dead(c, "clean")
        assert st["death_reason"] == "SHUTDOWN", st
        rep = read_report(out)
        assert int(rep["SigBlk"], 16) == 0, rep
        assert int(rep["SigIgn"], 16) == 0, rep
        assert rep["nondefault"] == "", rep
        assert rep["fds"].split() == ["0", "1", "2", "3", "4"], rep
        assert rep["sid"] == rep["pid"] and rep["pgid"] == rep["pid"], rep
        env = rep["env"]
        assert env["WARD_FAILURE_FD"] == "3" and env["WARD_NOTIFY_FD"] == "4", env
        assert env["WARD_INSTANCE_NAME"] == "clean", env
        assert env["WARD_RUNTIME_DIR"].startswith(w.state + "/instances/"), env
        assert env["TEST_VAR"] == "yes", env
        assert not [k for k in env if k.startswith(("NOTIFY_", "LISTEN_"))], env
    finally:
        w.stop()


def test_child_starts_clean_while_wardd_holds_many_fds():
    """With a hundred instances running, a child shares wardd's fd table
    until it takes its own, of the few fds below spawn.c's slots (instead
    of a copy of thousands): it still gets fds 0-4 only, a working fd 3
    and captured stdout, an empty mask and default dispositions."""
    hangs = [run(payload("hang"))[0] for _ in range(100)]
    try:
        out = os.path.join(W.dir, "report-many")
        name, _ = run(payload("report", out))
        wait_dead(C, name)
        rep = read_report(out)
        assert rep["fds"].split() == ["0", "1", "2", "3", "4"], rep
        assert int(rep["SigBlk"], 16) == 0 and int(rep["SigIgn"], 16) == 0, rep
        assert rep["nondefault"] == "", rep
        st = died(payload("fail", "PAYLOAD_BROKEN|many fds\n", "exit", "33"))
        assert st["death_reason"] == "PAYLOAD_BROKEN", st
        name, _ = run(payload("echo", "through a slot"), capture_output=True)
        wait_dead(C, name)
        assert "through a slot" in C.call("instance.log",
                                          {"name": name})["data"]
    finally:
        for h in hangs:
            C.call("instance.kill", {"name": h, "signal": "KILL"})
        for h in hangs:
            wait_dead(C, h)


def test_cwd_and_stdin():
    out = os.path.join(W.dir, uniq("rep"))
    st = died(payload("report", out), cwd="/tmp")
    assert st["death_reason"] == "SHUTDOWN", st
    assert read_report(out)["cwd"] == "/tmp"
    assert C.error("instance.create", {"argv": ["true"], "cwd": "/nonexistent"})[
        "code"] == "invalid_argument"


# ---- death reasons

def test_exit_zero_is_shutdown():
    st = died(payload("exit", 0))
    assert st["death_reason"] == "SHUTDOWN" and st["exit_code"] == 0, st
    assert st["exit_signal"] is None and st["core_dumped"] is False, st


def test_unknown_exit_code():
    st = died(payload("exit", 7))
    assert st["death_reason"] == "UNKNOWN" and st["exit_code"] == 7, st


def test_signal_is_killed():
    st = died(payload("signal", 9))
    assert st["death_reason"] == "KILLED", st
    assert st["exit_signal"] == 9 and st["signal_name"] == "SIGKILL", st
    assert st["exit_code"] is None, st


def test_exit_codes_map():
    st = died(payload("exit", 32), exit_codes={32: "REBOOT", 40: "OTHER"})
    assert st["death_reason"] == "REBOOT", st
    st = died(payload("exit", 40), exit_codes={"40": "OTHER"})
    assert st["death_reason"] == "OTHER", st


def test_crosvm_profile():
    for code, reason in ((1, "START_FAILED"), (32, "REBOOT"), (33, "CRASH"),
                         (36, "WATCHDOG_REBOOT"), (34, "UNKNOWN")):
        st = died(payload("exit", code), profile="crosvm")
        assert st["death_reason"] == reason, (code, st)
    # The instance's own map wins over the profile's.
    st = died(payload("exit", 33), profile="crosvm", exit_codes={33: "MINE"})
    assert st["death_reason"] == "MINE", st


def test_failure_pipe_names_reason():
    st = died(payload("fail", "PAYLOAD_BROKEN|disk on fire \n", "exit", 33),
              profile="crosvm")
    assert st["death_reason"] == "PAYLOAD_BROKEN", st
    assert st["failure_info"] == "disk on fire", st
    assert st["failure_reason"] is None, st
    assert st["exit_code"] == 33, st


def test_failure_pipe_free_text():
    st = died(payload("fail", "something bad happened\n\n", "exit", 2))
    assert st["death_reason"] == "UNKNOWN", st
    assert st["failure_reason"] == "something bad happened", st
    assert st["failure_info"] is None, st
    st = died(payload("fail", "lower|case is not a name", "exit", 0))
    assert st["death_reason"] == "SHUTDOWN", st
    assert st["failure_reason"] == "lower|case is not a name", st


def test_failure_pipe_cap():
    st = died(payload("failbytes", 60000, "exit", 1))
    assert len(st["failure_reason"]) == 50000, len(st["failure_reason"])
    assert st["failure_discarded"] == 10000, st["failure_discarded"]


def test_grandchild_holding_pipe_does_not_delay_death():
    """The death is reported when the child exits, not at the pipe's EOF."""
    pidfile = os.path.join(W.dir, uniq("gc"))
    sub = W.client()
    sub.call("events.subscribe", {"types": ["died"]})
    name, _ = run(payload("fail", "CRASH|gone", "grandchild", pidfile, "wait-file",
                          pidfile, "exit", 33))
    ev = sub.event(lambda e: e["name"] == name, timeout=10)
    # The grandchild creates the file before it writes its pid into it.
    gc = int(retry(lambda: open(pidfile).read().strip(), what="the pid"))
    try:
        assert not gone(gc), "grandchild should still hold the pipe"
        assert ev["exit"]["death_reason"] == "CRASH", ev
        assert ev["exit"]["failure_info"] == "gone", ev
    finally:
        os.kill(gc, signal.SIGKILL)


# ---- payload state

def test_notify_pipe_lines():
    flag = os.path.join(W.dir, uniq("flag"))
    long_line = "STATUS=" + "y" * 5000
    name, _ = run(payload("notify", "STATE=started", "notify", "READY=1",
                          "notify", "STATUS=" + "s" * 300, "notify", "BOGUS=1",
                          "notify", long_line, "notify", "STATUS=serving",
                          "notify", "STATE=hangup", "wait-file", flag))
    # STATE=hangup comes after STATUS=serving: wait for both, not one.
    st = retry(lambda: (lambda s: s if s["status_text"] == "serving" and
                        s["notify_dropped"] >= 3 else None)(
        C.call("instance.status", {"name": name})), what="status text and drops")
    assert st["payload_state"] == "ready", st
    assert st["notify_dropped"] == 3, st     # BOGUS, the long line, STATE=hangup
    open(flag, "w").close()
    st = wait_dead(C, name)
    assert st["payload_state"] == "ready", st


def test_status_text_truncated_to_256():
    flag = os.path.join(W.dir, uniq("flag"))
    name, _ = run(payload("notify", "STATUS=" + "s" * 300, "notify", "READY=1",
                          "wait-file", flag))
    st = retry(lambda: (lambda s: s if s["payload_state"] == "ready" else None)(
        C.call("instance.status", {"name": name})), what="ready")
    assert st["status_text"] == "s" * 256, len(st["status_text"])
    open(flag, "w").close()
    wait_dead(C, name)


def test_payload_method_forward_only():
    name, _ = run(payload("hang"))
    assert C.call("instance.payload", {"name": name, "state": "ready"})["ok"]
    err = C.error("instance.payload", {"name": name, "state": "started"})
    assert err["code"] == "invalid_state", err
    assert "from ready to started" in err["message"], err
    err = C.error("instance.payload", {"name": name, "state": "ready"})
    assert err["code"] == "invalid_state", err
    err = C.error("instance.payload", {"name": name, "state": "hangup"})
    assert err["code"] == "invalid_argument", err
    C.call("instance.payload", {"name": name, "state": "finished"})
    assert C.call("instance.status", {"name": name})["payload_state"] == "finished"
    C.call("instance.kill", {"name": name})
    wait_dead(C, name)


# ---- boot hangup

def test_hangup_kills_silent_payload():
    st = died(payload("hang"), detect_hangup=True, hangup_timeout_ms=200)
    assert st["death_reason"] == "HANGUP", st
    assert st["payload_state"] == "hangup", st
    assert st["exit_signal"] == 9, st


def test_started_payload_is_not_hung():
    name, _ = run(payload("notify", "STATE=started", "hang"),
                  detect_hangup=True, hangup_timeout_ms=150)
    retry(lambda: C.call("instance.status", {"name": name})["payload_state"]
          == "started", what="started")
    # A later instance with a longer deadline is the clock: once it hung,
    # the first one's deadline has long passed.
    clock = died(payload("hang"), detect_hangup=True, hangup_timeout_ms=400)
    assert clock["death_reason"] == "HANGUP", clock
    st = C.call("instance.status", {"name": name})
    assert st["state"] == "running", st
    C.call("instance.kill", {"name": name})
    assert wait_dead(C, name)["death_reason"] == "KILLED"


def test_default_hangup_timeout():
    with open("/proc/cpuinfo") as f:
        nested = any(l.startswith("flags") and " hypervisor" in l for l in f)
    r = C.call("instance.create", {"name": uniq(), "argv": ["true"],
                                   "detect_hangup": True})
    st = C.call("instance.status", {"id": r["id"]})
    assert st["hangup_timeout_ms"] == (300000 if nested else 30000), st
    C.call("instance.remove", {"id": r["id"]})


# ---- control

def test_kill_signals():
    name, _ = run(payload("hang"))
    C.call("instance.kill", {"name": name, "signal": "TERM"})
    st = wait_dead(C, name)
    assert st["exit_signal"] == signal.SIGTERM, st
    name, _ = run(payload("hang"))
    C.call("instance.kill", {"name": name, "signal": int(signal.SIGUSR1)})
    assert wait_dead(C, name)["signal_name"] == "SIGUSR1"
    name, _ = run(payload("hang"))
    assert C.error("instance.kill", {"name": name, "signal": "FOO"})[
        "code"] == "invalid_argument"
    C.call("instance.kill", {"name": name})
    assert wait_dead(C, name)["exit_signal"] == 9
    assert C.error("instance.kill", {"name": name})["code"] == "invalid_state"


def test_stop_escalates_to_sigkill():
    name, _ = run(payload("ignore-term", "notify", "READY=1", "hang"))
    # Only once it says so has it ignored SIGTERM.
    retry(lambda: C.call("instance.status", {"name": name})["payload_state"]
          == "ready", what="ready")
    C.call("instance.stop", {"name": name, "timeout_ms": 200})
    st = wait_dead(C, name)
    assert st["exit_signal"] == 9 and st["death_reason"] == "KILLED", st


def test_stop_reaches_process_group():
    pidfile = os.path.join(W.dir, uniq("gc"))
    name, _ = run(payload("grandchild", pidfile, "hang"))
    wait_file(pidfile)
    gc = int(open(pidfile).read())
    C.call("instance.stop", {"name": name})
    st = wait_dead(C, name)
    assert st["exit_signal"] == signal.SIGTERM, st
    retry(lambda: gone(gc), what="grandchild to die")


def test_suspend_resume():
    name, r = run(payload("hang"))
    pid = r["pid"]
    # Frozen through its cgroup (test_suspend.py), else SIGSTOP'd.
    frozen = C.call("instance.suspend", {"name": name})["frozen"]
    assert C.call("instance.status", {"name": name})["suspended"] is True
    if not frozen:
        retry(lambda: proc_state(pid) == "T", what="stopped")
    C.call("instance.resume", {"name": name})
    assert C.call("instance.status", {"name": name})["suspended"] is False
    retry(lambda: proc_state(pid) in ("S", "R"), what="running")
    # A suspended instance still stops: SIGCONT goes with the SIGTERM.
    C.call("instance.suspend", {"name": name})
    C.call("instance.stop", {"name": name, "timeout_ms": 10000})
    assert wait_dead(C, name)["exit_signal"] == signal.SIGTERM


def test_create_start_remove():
    name = uniq()
    r = C.call("instance.create", {"name": name, "argv": payload("exit", 0)})
    st = C.call("instance.status", {"id": r["id"]})
    assert st["state"] == "not_started" and st["pid"] is None, st
    assert C.error("instance.create", {"name": name, "argv": ["true"]})[
        "code"] == "exists"
    s = C.call("instance.start", {"name": name})
    assert s["state"] == "running" and s["pid"] > 0, s
    wait_dead(C, name)
    C.call("instance.remove", {"name": name})
    assert C.error("instance.status", {"name": name})["code"] == "not_found"
    # The name is free again; the id is never reused.
    r2 = C.call("instance.create", {"name": name, "argv": ["true"]})
    assert r2["id"] > r["id"], (r, r2)
    C.call("instance.remove", {"id": r2["id"]})


def test_restart_dead_instance():
    """start on a dead instance runs it again: same id and config, a new
    pid, and each run's exit record in history."""
    name, r = run(payload("exit", 3))
    first = wait_dead(C, name)
    s = C.call("instance.start", {"name": name})
    assert s["id"] == r["id"] and s["state"] == "running" and s["pid"] > 0, s
    second = wait_dead(C, name)
    assert second["id"] == r["id"] and second["exit_code"] == 3, second
    assert second["started_at_ms"] >= first["started_at_ms"], (first, second)
    hist = C.call("instance.history", {"name": name})
    assert len(hist) == 2, hist
    name2, _ = run(payload("hang"))
    err = C.error("instance.start", {"name": name2})
    assert err["code"] == "invalid_state" and "already running" in err["message"]
    C.call("instance.kill", {"name": name2})
    wait_dead(C, name2)


def test_remove_running_refused():
    name, _ = run(payload("hang"))
    err = C.error("instance.remove", {"name": name})
    assert err["code"] == "invalid_state", err
    C.call("instance.kill", {"name": name})
    wait_dead(C, name)
    C.call("instance.remove", {"name": name})


def test_spawn_failure_is_failed_state():
    exe = os.path.join(W.dir, uniq("exe"))
    with open(exe, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(exe, 0o755)
    name = uniq()
    C.call("instance.create", {"name": name, "argv": [exe]})
    os.unlink(exe)
    err = C.error("instance.start", {"name": name})
    assert err["code"] == "spawn_failed", err
    assert "No such file" in err["message"], err
    st = C.call("instance.status", {"name": name})
    assert st["state"] == "failed" and st["death_reason"] == "SPAWN_FAILED", st
    hist = C.call("instance.history", {"name": name})
    assert hist[-1]["state"] == "failed", hist


def test_unnamed_instance_is_named_by_id():
    r = C.call("instance.create", {"argv": ["true"]})
    assert r["name"] == str(r["id"]), r
    assert C.call("instance.status", {"name": r["name"]})["id"] == r["id"]
    C.call("instance.remove", {"id": r["id"]})


# ---- runtime dir and crash artifacts

def test_runtime_dir_and_dumps():
    flag = os.path.join(W.dir, uniq("flag"))
    name, r = run(payload("file", "core.1234", "core data", "file", "ramdump",
                          "ram", "file", "core.empty", "", "file", "other",
                          "x", "wait-file", flag, "exit", 33), profile="crosvm")
    rt = C.call("instance.status", {"name": name})["runtime_dir"]
    assert rt == os.path.join(W.state, "instances", str(r["id"])), rt
    retry(lambda: os.path.exists(os.path.join(rt, "other")), what="files")
    open(flag, "w").close()
    st = wait_dead(C, name)
    assert st["death_reason"] == "CRASH", st
    dump = st["dump_dir"]
    assert dump == os.path.join(W.state, "dumps", "%s-%d-1" % (name, r["id"])), st
    assert sorted(os.listdir(dump)) == ["core.1234", "ramdump"], os.listdir(dump)
    assert open(os.path.join(dump, "core.1234")).read() == "core data"
    assert not os.path.exists(rt), "runtime dir should be removed"
    hist = C.call("instance.history", {"name": name})
    assert hist[-1]["dump_dir"] == dump, hist


def test_sigchld_keeps_its_default_disposition():
    # Nothing in wardd may catch or ignore SIGCHLD: an ignored SIGCHLD makes
    # the kernel reap children itself, a handler (libev's default loop)
    # would reap them with waitpid(-1); either steals pidfd exit statuses.
    C.call("ward.hello")	# the loop is up and running
    with open("/proc/%d/status" % W.proc.pid) as f:
        masks = dict(l.split(":\t", 1) for l in f if l.startswith("Sig"))
    bit = 1 << (signal.SIGCHLD - 1)
    assert int(masks["SigCgt"], 16) & bit == 0, masks
    assert int(masks["SigIgn"], 16) & bit == 0, masks
    # and wardd catches what it says it does (so the read is meaningful)
    assert int(masks["SigCgt"], 16) & (1 << (signal.SIGTERM - 1)), masks


def test_core_dump_is_reported_and_moved():
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("|") or "/" in pattern:
        raise wardtest.Skip("core_pattern %r does not write into cwd" % pattern)
    if "address" in os.environ.get("WARD_SAN_CFLAGS", ""):
        raise wardtest.Skip("ASan's shadow memory makes cores impractical")
    st = died(payload("core"), rlimits={"core": "infinity"})
    assert st["exit_signal"] == signal.SIGABRT, st
    assert st["signal_name"] == "SIGABRT", st
    assert st["core_dumped"] is True, st
    assert st["death_reason"] == "KILLED", st
    dump = st["dump_dir"]
    assert dump is not None, st
    cores = [f for f in os.listdir(dump) if f.startswith("core")]
    assert cores and os.path.getsize(os.path.join(dump, cores[0])) > 0, cores


def test_no_dump_dir_without_artifacts():
    st = died(payload("exit", 0))
    assert st["dump_dir"] is None, st


# ---- history

def test_history_filters_and_limit():
    name, _ = run(payload("exit", 5))
    wait_dead(C, name)
    h = C.call("instance.history", {"name": name})
    assert len(h) == 1 and h[0]["exit_code"] == 5 and h[0]["name"] == name, h
    assert h[0]["metrics"]["samples"] >= 1, h
    h = C.call("instance.history", {"limit": 2})
    assert len(h) == 2 and h[-1]["name"] == name, h
    # Records outlive their instance.
    C.call("instance.remove", {"name": name})
    assert C.call("instance.history", {"name": name})[0]["exit_code"] == 5


def test_history_keeps_last_1000():
    sub = W.client()
    sub.call("events.subscribe", {"types": ["died"]})
    first = None
    for k in range(1005):
        r = C.call("instance.run", {"argv": payload("exit", 0)})
        first = first or r["id"]
    last = r["id"]
    sub.event(lambda e: e["id"] == last, timeout=60)
    h = C.call("instance.history")
    assert len(h) == 1000, len(h)
    ids = [x["id"] for x in h]
    assert first not in ids and last in ids, (first, last)
    for x in C.call("instance.list", {"state": "dead"}):
        C.call("instance.remove", {"id": x["id"]})


# ---- the daemon

def test_second_wardd_refused():
    p = subprocess.run([wardtest.WARDD, "--socket", W.sock, "--state-dir",
                        W.state + "2"], capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"already listening" in p.stderr, p.stderr
    assert C.call("ward.hello")["pid"] == W.proc.pid


def test_stale_socket_replaced():
    w = Ward()
    s = socket.socket(socket.AF_UNIX)
    s.bind(w.sock)
    s.close()
    assert os.path.exists(w.sock)
    try:
        w.start()
        assert w.client().call("ward.hello")["pid"] == w.proc.pid
    finally:
        w.stop()


def test_shutdown_stops_instances():
    with Ward() as w:
        c = w.client()
        r = c.call("instance.run", {"name": "x", "argv": payload("hang")})
        assert c.call("ward.shutdown")["ok"]
        assert w.proc.wait(timeout=20) == 0
        assert gone(r["pid"])
        assert not os.path.exists(w.sock)


def test_shutdown_can_leave_instances():
    with Ward() as w:
        c = w.client()
        r = c.call("instance.run", {"name": "x", "argv": payload("hang")})
        c.call("ward.shutdown", {"kill_instances": False})
        assert w.proc.wait(timeout=20) == 0
        try:
            assert not gone(r["pid"])
        finally:
            os.kill(r["pid"], signal.SIGKILL)


def test_sigterm_stops_instances():
    with Ward() as w:
        c = w.client()
        r = c.call("instance.run", {"name": "x", "argv": payload("hang")})
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0
        assert gone(r["pid"])
        assert "instance died: id=1 name=x reason=KILLED exit_signal=SIGTERM" \
            in w.read_log(), w.read_log()


if __name__ == "__main__":
    wardtest.run(globals())
