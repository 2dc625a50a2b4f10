#!/usr/bin/python3
"""Issue 13, exit records: what every record says about its run.

- A failure pipe holding a bare NAME (the seed splits at '|' only when
  there is one) is that death reason with an empty info; other text stays
  free text.
- `run` (1, 2, ...) numbers the runs of one instance in every record:
  status, history, events, STATE_DIR/history, across a re-exec.
- Each run's dumps go to their own STATE_DIR/dumps/NAME-ID-RUN, named in
  that run's record; retention drops the oldest beyond the count and bytes.
- `killed_by` says who ended it: stop, kill (with the client's uid),
  hangup, watchdog, external (a signal no part of wardd sent), oom (only
  where a memory controller exists: skipped here otherwise, the unit test
  test_instance covers it through the sys seam).
"""
import os
import signal

import wardtest
from wardtest import Ward, WardError, payload, retry, uniq, wait_dead

W = None
C = None


def setup_module():
    global W, C
    W = Ward(args=["--dumps-max-count", "3", "--dumps-max-bytes", "200K"])
    W.start()
    C = W.client()
    return W


def died(argv, **kw):
    name = kw.pop("name", None) or uniq("rec")
    C.call("instance.run", dict(name=name, argv=argv, **kw))
    return wait_dead(C, name)


def running(name, argv=None):
    """Run argv (a payload that says it is ready, then hangs) as name; its
    pid once it says it is ready (its handlers are set)."""
    C.call("instance.run", {"name": name, "argv": argv or payload(
        "notify", "READY=1", "hang")})
    retry(lambda: C.call("instance.status", {"name": name})["payload_state"]
          == "ready", what="%s ready" % name)
    return C.call("instance.status", {"name": name})["pid"]


# ---- item 1: a bare failure name ---------------------------------------------

def test_bare_name_is_the_reason():
    for text in ("MICRODROID_PAYLOAD_HAS_CHANGED",
                 "MICRODROID_PAYLOAD_HAS_CHANGED\n",
                 "  MICRODROID_PAYLOAD_HAS_CHANGED \n\t"):
        st = died(payload("fail", text, "exit", 1))
        assert st["death_reason"] == "MICRODROID_PAYLOAD_HAS_CHANGED", (text, st)
        assert st["failure_info"] == "", (text, st)
        assert st["failure_reason"] is None, (text, st)
        assert st["exit_code"] == 1, st


def test_text_that_is_no_name_stays_free_text():
    for text in ("Microdroid payload has changed", "MICRODROID PAYLOAD",
                 "lower_case", "9STARTS_WITH_A_DIGIT", "A" * 65):
        st = died(payload("fail", text + "\n", "exit", 1))
        assert st["death_reason"] == "UNKNOWN", (text, st)
        assert st["failure_reason"] == text, (text, st)
        assert st["failure_info"] is None, (text, st)


# ---- item 6: run in every record ---------------------------------------------

def test_run_counts_the_runs_of_one_instance():
    name = uniq("runs")
    sub = W.client()
    sub.call("events.subscribe", {"types": ["died"]})
    C.call("instance.create", {"name": name, "argv": payload("exit", 3)})
    for k in (1, 2, 3):
        C.call("instance.start", {"name": name})
        st = wait_dead(C, name)
        assert st["run"] == k, (k, st)
        ev = sub.event(lambda e: e.get("name") == name)
        assert ev["type"] == "died" and ev["exit"]["run"] == k, ev
    hist = C.call("instance.history", {"name": name})
    assert [h["run"] for h in hist] == [1, 2, 3], hist
    # A failed spawn is a run too, with a record of its own.
    exe = os.path.join(W.dir, uniq("exe"))
    with open(exe, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(exe, 0o755)
    C.call("instance.create", {"name": name + "x", "argv": [exe]})
    C.call("instance.start", {"name": name + "x"})
    assert wait_dead(C, name + "x")["run"] == 1
    os.unlink(exe)
    assert C.error("instance.start", {"name": name + "x"})["code"] == \
        "spawn_failed"
    st = C.call("instance.status", {"name": name + "x"})
    assert st["death_reason"] == "SPAWN_FAILED" and st["run"] == 2, st


def test_run_survives_a_reexec_and_reads_back_from_disk():
    w = Ward().start()
    try:
        c = w.client()
        name = uniq("rx")
        c.call("instance.create", {"name": name, "argv": payload("exit", 3)})
        c.call("instance.start", {"name": name})
        assert wait_dead(c, name)["run"] == 1
        assert c.call("ward.reexec") == {"ok": True}
        retry(lambda: c.call("ward.stats")["reexecs"] == 1, what="re-exec")
        assert c.call("instance.status", {"name": name})["run"] == 1
        c.call("instance.start", {"name": name})
        assert wait_dead(c, name)["run"] == 2
        # STATE_DIR/history, read back by a new wardd.
        w.proc.terminate()
        w.proc.wait(timeout=wardtest.TIMEOUT)
        w.restart()
        c = w.client()
        hist = c.call("instance.history", {"name": name})
        assert [h["run"] for h in hist] == [1, 2], hist
    finally:
        w.stop()


# ---- item 5: dumps per run ---------------------------------------------------

def dumper(size=16):
    """argv leaving a core of size bytes in its runtime dir."""
    return ["/bin/sh", "-c", 'head -c %d /dev/zero | tr "\\0" x > '
            '"$WARD_RUNTIME_DIR/core.1"; exit 1' % size]


def test_each_run_keeps_its_own_dump_dir():
    name = uniq("dump")
    r = C.call("instance.create", {"name": name, "argv": dumper()})
    dirs = []
    for k in (1, 2):
        C.call("instance.start", {"name": name})
        st = wait_dead(C, name)
        want = os.path.join(W.state, "dumps", "%s-%d-%d" % (name, r["id"], k))
        assert st["dump_dir"] == want, (k, st)
        dirs.append(want)
    # Both still there, each with its run's core; history names each.
    for d in dirs:
        assert os.listdir(d) == ["core.1"], os.listdir(d)
    hist = C.call("instance.history", {"name": name})
    assert [h["dump_dir"] for h in hist] == dirs, hist


def test_retention_drops_the_oldest_runs():
    dumps = os.path.join(W.state, "dumps")
    name = uniq("keep")
    r = C.call("instance.create", {"name": name, "argv": dumper()})
    got = []
    for k in range(1, 6):
        C.call("instance.start", {"name": name})
        got.append(os.path.basename(wait_dead(C, name)["dump_dir"]))
    assert got == ["%s-%d-%d" % (name, r["id"], k) for k in range(1, 6)], got
    # --dumps-max-count 3: the three newest runs.
    retry(lambda: sorted(os.listdir(dumps)) == sorted(got[2:]),
          what="the three newest runs' dumps, got %s" % os.listdir(dumps))
    # --dumps-max-bytes 200K: 80 KiB runs, two fit.
    big = uniq("big")
    r = C.call("instance.create", {"name": big,
                                   "argv": dumper(80 * 1024)})
    got = []
    for k in range(1, 4):
        C.call("instance.start", {"name": big})
        got.append(os.path.basename(wait_dead(C, big)["dump_dir"]))
    retry(lambda: sorted(f for f in os.listdir(dumps) if f.startswith(big))
          == sorted(got[1:]), what="the two newest big runs' dumps, got %s"
          % os.listdir(dumps))
    retry(lambda: wardtest.trash_empty(W), what="dropped dumps to go")


# ---- item 7: who killed it ---------------------------------------------------

def test_killed_by_stop():
    name = uniq("stop")
    running(name)
    C.call("instance.stop", {"name": name})
    st = wait_dead(C, name)
    assert st["killed_by"] == "stop" and st["killed_by_uid"] is None, st
    assert st["death_reason"] == "KILLED", st
    assert st["exit_signal"] == signal.SIGTERM, st


def test_killed_by_kill_names_the_uid():
    name = uniq("kill")
    running(name)
    C.call("instance.kill", {"name": name, "signal": "KILL"})
    st = wait_dead(C, name)
    assert st["killed_by"] == "kill", st
    assert st["killed_by_uid"] == os.getuid(), st
    hist = C.call("instance.history", {"name": name})
    assert hist[-1]["killed_by"] == "kill", hist
    assert hist[-1]["killed_by_uid"] == os.getuid(), hist


def test_a_signal_that_did_not_kill_is_not_the_killer():
    # SIGUSR2 handled is no death; the later SIGKILL from outside is.
    name = uniq("usr")
    pid = running(name, ["/bin/sh", "-c",
                         'trap "" USR2; echo READY=1 >&4; '
                         'while :; do sleep 1; done'])
    C.call("instance.kill", {"name": name, "signal": "USR2"})
    assert C.call("instance.status", {"name": name})["state"] == "running"
    os.kill(pid, signal.SIGKILL)
    st = wait_dead(C, name)
    assert st["killed_by"] == "external" and st["killed_by_uid"] is None, st


def test_killed_by_hangup():
    st = died(payload("hang"), detect_hangup=True, hangup_timeout_ms=100)
    assert st["death_reason"] == "HANGUP" and st["killed_by"] == "hangup", st


def test_killed_by_watchdog():
    st = died(payload("notify", "WATCHDOG=1", "hang"), watchdog_ms=150)
    assert st["death_reason"] == "WATCHDOG", st
    assert st["killed_by"] == "watchdog", st


def test_killed_by_external():
    name = uniq("ext")
    pid = running(name)
    os.kill(pid, signal.SIGKILL)
    st = wait_dead(C, name)
    assert st["killed_by"] == "external", st
    assert st["death_reason"] == "KILLED", st


def test_an_exit_of_its_own_names_nobody():
    st = died(payload("exit", 0))
    assert st["killed_by"] is None and st["killed_by_uid"] is None, st


def test_wardctl_shows_killed_by_and_run():
    name = uniq("ctl")
    running(name)
    C.call("instance.kill", {"name": name})
    wait_dead(C, name)
    out = wardtest.subprocess.run(
        [wardtest.WARDCTL, "--socket", W.sock, "status", "-l", name],
        capture_output=True, text=True, timeout=wardtest.TIMEOUT).stdout
    assert "by:       kill (uid %d)" % os.getuid() in out, out
    assert "run:      1" in out, out
    out = wardtest.subprocess.run(
        [wardtest.WARDCTL, "--socket", W.sock, "status", name],
        capture_output=True, text=True, timeout=wardtest.TIMEOUT).stdout
    assert out.splitlines()[-1].endswith(" KILLED (kill)"), out
    out = wardtest.subprocess.run(
        [wardtest.WARDCTL, "--socket", W.sock, "history", name],
        capture_output=True, text=True, timeout=wardtest.TIMEOUT).stdout
    row = out.splitlines()[-1].split()
    assert row[4] == "1" and row[6] == "kill:%d" % os.getuid(), out


def test_killed_by_oom():
    """A small memory_max and a payload that outgrows it: the OOM killer
    ends it, memory.events' oom_kill rises, the reason is OUT_OF_MEMORY."""
    name = uniq("oom")
    try:
        C.call("instance.create", {"name": name, "argv": payload(
            "alloc", 256, "hang"), "memory_max": "32M"})
    except WardError as e:
        raise wardtest.Skip("instance.create refuses memory_max (%s)" % e)
    C.call("instance.start", {"name": name})
    cg = C.call("instance.status", {"name": name}).get("cgroup")
    if cg is None or not os.path.exists(os.path.join(cg, "memory.events")):
        C.call("instance.kill", {"name": name})
        wait_dead(C, name)
        raise wardtest.Skip("no memory controller for instance cgroups")
    st = wait_dead(C, name)
    assert st["killed_by"] == "oom", st
    assert st["death_reason"] == "OUT_OF_MEMORY", st


if __name__ == "__main__":
    wardtest.run(globals())
