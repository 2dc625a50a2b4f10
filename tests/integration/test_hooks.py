#!/usr/bin/python3
"""Issue 13, item 4: side processes and hooks.

pre_start runs to its end before the payload (which checks what it wrote),
as the payload's user, and a failure, a signal or its time limit fails the
start as SPAWN_FAILED naming pre_start; wardd answers meanwhile (ward.hello
while pre_start sleeps) and instance.status says "starting". post_death
sees how the payload died in its environment and its result lands in the
exit record. Sidecars run beside the payload, in its cgroup, and are gone
(reaped) after it died, SIGTERM first and SIGKILL for one that ignores it;
they survive a ward.reexec and are still stopped afterwards, and a
pre_start under way survives one too.
"""
import os
import subprocess
import time

import wardtest
from wardtest import TIMEOUT, Ward, payload, proc_state, retry, uniq, \
    wait_dead, wait_file

SH = "/bin/sh"


def setup_module():
    w = Ward().start()
    w.c = w.client()
    w.shared_out()
    w.cgroups_in_use()
    return w


def path(w, name):
    return os.path.join(w.out, uniq(name))


def sh(script):
    return [SH, "-c", script]


def read(p):
    with open(p) as f:
        return f.read().strip()


def reaped(pid):
    """pid is gone and reaped (not even a zombie is left)."""
    return proc_state(pid) is None


def test_pre_start_runs_before_the_payload(w):
    mark = path(w, "mark")
    r = w.c.call("instance.run", {
        "argv": sh("test -s %s && exit 0; exit 7" % mark),
        "pre_start": sh("echo ready > %s" % mark)})
    st = wait_dead(w.c, r["id"])
    assert st["death_reason"] != "SPAWN_FAILED", st
    assert st["exit_code"] == 0, st


def test_pre_start_runs_as_the_payload_user(w):
    """A non-admin's instance: pre_start, post_death and the payload all
    run as 65534, with the same environment."""
    pre, pay, post = path(w, "pre"), path(w, "pay"), path(w, "post")
    body = r'''
r = c.call("instance.run", {"argv": %r, "pre_start": %r, "post_death": %r})
done(r)
''' % (sh("id -u > %s; echo $WARD_INSTANCE_NAME >> %s" % (pay, pay)),
       sh("id -u > %s; echo $WARD_INSTANCE_NAME >> %s" % (pre, pre)),
       sh("id -u > %s; echo $WARD_INSTANCE_NAME >> %s" % (post, post)))
    r = wardtest.as_nobody(w, body)
    wait_dead(w.c, r["id"])
    wait_file(post)
    name = w.c.call("instance.status", {"id": r["id"]})["name"]
    for p in (pre, pay, post):
        retry(lambda: len(read(p).splitlines()) == 2, what=p)
        assert read(p).splitlines() == ["65534", name], (p, read(p))


def test_failing_pre_start_fails_the_start(w):
    ran = path(w, "ran")
    r = w.c.call("instance.run", {
        "argv": sh("echo ran > %s" % ran),
        "pre_start": sh("exit 3")})
    st = wait_dead(w.c, r["id"])
    assert st["state"] == "failed", st
    assert st["death_reason"] == "SPAWN_FAILED", st
    assert "pre_start" in st["failure_reason"], st
    assert "exited with code 3" in st["failure_reason"], st
    assert not os.path.exists(ran), "the payload ran after a failed pre_start"
    # A signal is a failure too.
    r = w.c.call("instance.run", {"argv": sh("exit 0"),
                                  "pre_start": sh("kill -TERM $$")})
    st = wait_dead(w.c, r["id"])
    assert st["death_reason"] == "SPAWN_FAILED", st
    assert "pre_start was killed by signal SIGTERM" in st["failure_reason"], st


def test_hanging_pre_start_is_killed_and_wardd_answers(w):
    pidf, ran = path(w, "pid"), path(w, "ran")
    r = w.c.call("instance.run", {
        "argv": sh("echo ran > %s" % ran),
        "pre_start": sh("echo $$ > %s; exec sleep 1000" % pidf),
        "pre_start_timeout_ms": 1500})
    # The answer came at once; pre_start sleeps now, and wardd answers.
    wait_file(pidf)
    pid = int(read(pidf))
    t0 = time.monotonic()
    assert w.client().call("ward.hello")["server"] == "wardd"
    assert time.monotonic() - t0 < 1.0
    st = w.c.call("instance.status", {"id": r["id"]})
    assert st["state"] == "starting", st
    st = wait_dead(w.c, r["id"])
    assert st["death_reason"] == "SPAWN_FAILED", st
    assert "pre_start did not finish within 1500 ms" in st["failure_reason"], st
    retry(lambda: reaped(pid), what="pre_start killed and reaped")
    assert not os.path.exists(ran)


def test_post_death_sees_the_death_and_its_result_is_recorded(w):
    env = path(w, "env")
    r = w.c.call("instance.run", {
        "argv": sh("exit 5"),
        "post_death": sh("env | grep '^WARD_' > %s.tmp; mv %s.tmp %s; exit 4"
                         % (env, env, env))})
    st = wait_dead(w.c, r["id"])
    st = retry(lambda: (lambda s: s if s["post_death"]["result"] != "running"
                        else None)(w.c.call("instance.status", {"id": r["id"]})),
               what="post_death to end")
    assert st["post_death"] == {"result": "exited", "exit_code": 4,
                                "exit_signal": None}, st
    got = dict(l.split("=", 1) for l in read(env).splitlines())
    assert got["WARD_DEATH_REASON"] == st["death_reason"], (got, st)
    assert got["WARD_EXIT_CODE"] == "5", got
    assert got["WARD_EXIT_SIGNAL"] == "", got
    assert got["WARD_INSTANCE_ID"] == str(r["id"]), got
    assert got["WARD_INSTANCE_NAME"] == st["name"], got
    # The record in history carries it too.
    h = w.c.call("instance.history", {"id": r["id"]})
    recs = h["records"] if isinstance(h, dict) else h
    assert any(x.get("post_death", {}) and
               x["post_death"]["result"] == "exited" for x in recs), h


def test_post_death_after_a_signal_and_its_time_limit(w):
    env = path(w, "env")
    r = w.c.call("instance.run", {
        "argv": sh("kill -KILL $$"),
        "post_death": sh("echo $WARD_EXIT_SIGNAL,$WARD_EXIT_CODE > %s.tmp; "
                         "mv %s.tmp %s; exec sleep 1000" % (env, env, env)),
        "post_death_timeout_ms": 500})
    wait_dead(w.c, r["id"])
    wait_file(env)
    assert read(env) == "9,", read(env)
    st = retry(lambda: (lambda s: s if s["post_death"]["result"] != "running"
                        else None)(w.c.call("instance.status", {"id": r["id"]})),
               what="post_death to time out")
    assert st["post_death"] == {"result": "timeout", "exit_code": None,
                                "exit_signal": 9}, st


def sidecar_instance(w, extra_script=""):
    """A payload that runs until stopped, with two sidecars: one that
    SIGTERM ends, one that ignores it. Their pids, once written."""
    s1, s2, p = path(w, "s1"), path(w, "s2"), path(w, "pay")
    r = w.c.call("instance.run", {
        "argv": sh("echo $$ > %s.tmp; mv %s.tmp %s; %sexec sleep 1000"
                   % (p, p, p, extra_script)),
        "sidecars": [
            sh("echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 1000" % (s1, s1, s1)),
            sh("trap '' TERM; echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 1000"
               % (s2, s2, s2))]})
    for f in (s1, s2, p):
        wait_file(f)
    return r["id"], int(read(s1)), int(read(s2)), int(read(p))


def same_cgroup(a, b):
    with open("/proc/%d/cgroup" % a) as f, open("/proc/%d/cgroup" % b) as g:
        return f.read() == g.read()


def test_sidecars_run_beside_the_payload_and_go_after_it(w):
    iid, s1, s2, p = sidecar_instance(w)
    assert proc_state(s1) not in (None, "Z") and proc_state(s2) not in (None, "Z")
    if w.cgroups:
        assert same_cgroup(s1, p) and same_cgroup(s2, p), "not in its cgroup"
    # Their pidfds are listed, and are what /proc says wardd holds.
    held = wardtest.wardd_fds(w)
    listed = [e["fd"] for e in w.c.call("ward.fds")
              if e["owner"] == "hooks: sidecar pidfd"]
    assert len(listed) >= 2, listed
    assert all(held.get(fd) == "anon_inode:[pidfd]" for fd in listed), (
        listed, held)
    # The payload ends on its own: SIGTERM for both, SIGKILL for the one
    # that ignores it (after the stop timeout).
    os.kill(p, 9)
    wait_dead(w.c, iid)
    retry(lambda: reaped(s1), what="sidecar 1 gone")
    retry(lambda: reaped(s2), timeout=TIMEOUT + 5, what="sidecar 2 gone")
    assert "hooks: sidecar pidfd" not in [
        e["owner"] for e in w.c.call("ward.fds")]


def test_a_sidecar_that_dies_early_is_logged(w):
    p = path(w, "pay")
    r = w.c.call("instance.run", {
        "argv": sh("echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 1000"
                   % (p, p, p)),
        "sidecars": [sh("exit 2")]})
    wait_file(p)
    retry(lambda: "sidecar (while the payload runs) exited with code 2" in
          w.read_log(), what="the early death logged")
    # The payload runs on.
    assert w.c.call("instance.status", {"id": r["id"]})["state"] == "running"
    w.c.call("instance.stop", {"id": r["id"], "timeout_ms": 200})
    wait_dead(w.c, r["id"])


def test_sidecars_survive_a_reexec(w):
    iid, s1, s2, p = sidecar_instance(w)
    before = w.c.call("ward.stats")["reexecs"]
    assert w.c.call("ward.reexec") == {"ok": True}
    retry(lambda: w.c.call("ward.stats")["reexecs"] == before + 1,
          what="the re-exec")
    assert proc_state(s1) not in (None, "Z") and proc_state(s2) not in (None, "Z")
    owners = [e["owner"] for e in w.c.call("ward.fds")]
    assert owners.count("hooks: sidecar pidfd") >= 2, owners
    # The payload ends on its own: the re-exec'd wardd stops them
    # (SIGTERM, then SIGKILL) and reaps them.
    os.kill(p, 9)
    wait_dead(w.c, iid)
    retry(lambda: reaped(s1), what="sidecar 1 gone after the re-exec")
    retry(lambda: reaped(s2), timeout=TIMEOUT + 5,
          what="sidecar 2 gone after the re-exec")


def test_pre_start_survives_a_reexec(w):
    go, ran = path(w, "go"), path(w, "ran")
    r = w.c.call("instance.run", {
        "argv": sh("echo ran > %s; exec sleep 1000" % ran),
        "pre_start": sh("while [ ! -e %s ]; do sleep 0.05; done" % go)})
    assert w.c.call("instance.status", {"id": r["id"]})["state"] == "starting"
    before = w.c.call("ward.stats")["reexecs"]
    assert w.c.call("ward.reexec") == {"ok": True}
    retry(lambda: w.c.call("ward.stats")["reexecs"] == before + 1,
          what="the re-exec")
    assert w.c.call("instance.status", {"id": r["id"]})["state"] == "starting"
    open(go, "w").close()
    wait_file(ran)
    retry(lambda: w.c.call("instance.status", {"id": r["id"]})["state"] ==
          "running", what="the payload to run")
    w.c.call("instance.stop", {"id": r["id"], "timeout_ms": 200})
    wait_dead(w.c, r["id"])


def test_bad_hook_keys_are_refused(w):
    def refused(code, **kw):
        err = w.c.error("instance.create", dict(argv=payload("exit", 0), **kw))
        assert err["code"] == code, (kw, err)
        return err["message"]
    assert "absolute" in refused("invalid_argument", pre_start=["sh"])
    refused("invalid_argument", post_death=[])
    refused("invalid_argument", sidecars=[[SH], "x"])
    refused("too_large", sidecars=[[SH]] * 9)
    refused("invalid_argument", pre_start=[SH], pre_start_timeout_ms=0)
    refused("invalid_argument", post_death_timeout_ms=100)


def test_removal_during_pre_start_leaves_nothing(w):
    pidf = path(w, "pid")
    r = w.c.call("instance.run", {
        "argv": sh("exit 0"),
        "pre_start": sh("echo $$ > %s; exec sleep 1000" % pidf)})
    wait_file(pidf)
    pid = int(read(pidf))
    w.c.call("instance.remove", {"id": r["id"]})
    retry(lambda: reaped(pid), what="pre_start killed and reaped")
    retry(lambda: "hooks: pre_start pidfd" not in [
        e["owner"] for e in w.c.call("ward.fds")], what="its pidfd closed")


def test_stop_during_pre_start_calls_the_start_off(w):
    pidf, ran = path(w, "pid"), path(w, "ran")
    r = w.c.call("instance.run", {
        "argv": sh("echo ran > %s" % ran),
        "pre_start": sh("echo $$ > %s; exec sleep 1000" % pidf)})
    wait_file(pidf)
    pid = int(read(pidf))
    assert w.c.call("instance.stop", {"id": r["id"]}) == {"ok": True}
    st = wait_dead(w.c, r["id"])
    assert st["death_reason"] == "SPAWN_FAILED", st
    assert "called off" in st["failure_reason"], st
    retry(lambda: reaped(pid), what="pre_start killed and reaped")
    assert not os.path.exists(ran)
    # Once it is failed, a stop is refused as for any instance not running.
    assert w.c.error("instance.stop", {"id": r["id"]})["code"] == \
        "invalid_state"


def test_wardctl_run_hooks_and_status(w):
    """wardctl run --pre-start/--post-death/--sidecar, and status -l."""
    mark, side = path(w, "mark"), path(w, "side")
    name = uniq("ctl")

    def ctl(*args):
        p = subprocess.run([wardtest.WARDCTL, "--socket", w.sock] +
                           list(args), capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert p.returncode == 0, (args, p.stderr)
        return p.stdout
    out = ctl("run", name, "--pre-start", "echo ok > %s" % mark,
              "--post-death", "exit 3",
              "--sidecar", "echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 1000"
              % (side, side, side),
              "--", SH, "-c", "test -s %s && exec sleep 1000" % mark)
    assert "%s: starting (id " % name in out, out
    wait_file(side)
    retry(lambda: w.c.call("instance.status", {"name": name})["state"] ==
          "running", what="the payload to run")
    ctl("stop", "--timeout", "200", name)
    retry(lambda: reaped(int(read(side))), what="the sidecar gone")
    retry(lambda: "post_death: exited, exit code 3" in ctl("status", "-l",
                                                            name),
          what="status -l to show post_death")


def test_declared_program_hooks():
    """[program:x] maps pre_start, post_death and sidecar."""
    w = Ward()
    conf, out = os.path.join(w.dir, "conf"), os.path.join(w.dir, "pout")
    os.makedirs(conf)
    os.mkdir(out)
    mark, side, post = (os.path.join(out, n) for n in ("mark", "side", "post"))
    with open(os.path.join(conf, "10-h.conf"), "w") as f:
        f.write("[program:hooked]\n"
                "command = %s -c 'test -s %s && exec sleep 1000'\n"
                "startsecs = 0\n"
                "pre_start = %s -c 'echo ok > %s'\n"
                "pre_start_timeout_ms = 5000\n"
                "sidecar = %s -c 'echo $$ > %s.tmp; mv %s.tmp %s; "
                "exec sleep 1000'\n"
                "post_death = %s -c 'echo $WARD_DEATH_REASON > %s'\n"
                % (SH, mark, SH, mark, SH, side, side, side, SH, post))
    w.extra += ["--config-dir", conf]
    w.start()
    try:
        c = w.client()
        wait_file(side)
        retry(lambda: c.call("instance.status", {"name": "hooked"})["state"]
              == "running", what="the program to run")
        c.call("instance.stop", {"name": "hooked", "timeout_ms": 200})
        wait_dead(c, "hooked")
        retry(lambda: reaped(int(read(side))), what="its sidecar gone")
        wait_file(post)
        assert read(post) == "KILLED", read(post)
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
