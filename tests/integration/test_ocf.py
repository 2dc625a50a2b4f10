#!/usr/bin/python3
"""Issue 15: the OCF resource agent contrib/ocf/ward (ocf:ward:instance).

Debian's ocf-tester (package resource-agents) runs the agent against a real
wardd on a private socket, for an ad-hoc instance and for a declared
program; then each action is run directly and each OCF exit code the agent
promises is asserted, one situation at a time: running, not running, died,
failed to start, bad parameters, not installed, wardd unreachable.
"""
import os
import shutil
import signal
import subprocess
import tempfile

import wardtest
from wardtest import Skip, retry

AGENT = os.path.join(wardtest.SRCDIR, "contrib", "ocf", "ward")
TESTER = "/usr/sbin/ocf-tester"
RA_DIR = "/usr/share/resource-agents"
P = wardtest.PAYLOAD

OK, GENERIC, ARGS, UNIMPLEMENTED, INSTALLED, CONFIGURED, NOT_RUNNING = \
    0, 1, 2, 3, 5, 6, 7


def setup_module():
    w = wardtest.Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    w.extra = ["--config-dir", conf]
    with open(os.path.join(conf, "p.conf"), "w") as f:
        # Pacemaker restarts it, so ward does not.
        f.write("[program:prog]\ncommand = %s notify READY=1 hang\n"
                "readiness = notify\nautostart = false\nrestart = no\n"
                "[program:slow]\ncommand = %s hang\nstartsecs = 600\n"
                "autostart = false\nrestart = no\n" % (P, P))
    return w.start()


def agent(w, action, timeout_ms=20000, env=None, argv=None, **params):
    """Run the agent's action with OCF_RESKEY_* from params (socket and
    wardctl default to w's); (exit code, stderr)."""
    e = dict(os.environ, OCF_ROOT="/usr/lib/ocf",
             OCF_RESOURCE_INSTANCE="r",
             OCF_RESKEY_CRM_meta_timeout=str(timeout_ms),
             OCF_RESKEY_CRM_meta_interval="10000")
    params.setdefault("socket", w.sock)
    params.setdefault("wardctl", wardtest.WARDCTL)
    for k, v in params.items():
        if v is not None:
            e["OCF_RESKEY_" + k] = v
    e.update(env or {})
    p = subprocess.run([AGENT] + ([action] if argv is None else argv),
                       env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout_ms / 1000 + 10)
    return p.returncode, p.stderr.decode(errors="replace")


def rc(w, action, **kw):
    return agent(w, action, **kw)[0]


def status(w, name):
    return w.client().call("instance.status", {"name": name})


def hang_cmd():
    return "%s notify READY=1 hang" % P


def test_meta_data_is_valid_ocf(w):
    out = subprocess.run([AGENT, "meta-data"], stdout=subprocess.PIPE,
                         check=True, timeout=10).stdout
    assert b"<version>1.1</version>" in out, out
    for a in (b"start", b"stop", b"monitor", b"reload", b"validate-all",
              b"meta-data"):
        assert b'<action name="%s"' % a in out, a
    assert b'depth="10"' in out
    if not shutil.which("xmllint") or not os.path.isdir(RA_DIR):
        raise Skip("xmllint or resource-agents' schemas missing")
    for schema in (["--dtdvalid", RA_DIR + "/ra-api-1.dtd"],
                   ["--relaxng", RA_DIR + "/metadata.rng"]):
        p = subprocess.run(["xmllint", "--noout"] + schema + ["-"],
                           input=out, stderr=subprocess.PIPE, timeout=10)
        assert p.returncode == 0, (schema, p.stderr)


def ocf_tester(w, name, **params):
    if not os.access(TESTER, os.X_OK):
        raise Skip("ocf-tester missing (Debian package resource-agents)")
    # ocf-tester reads the agent as nobody: a copy nobody can reach.
    d = tempfile.mkdtemp(prefix="ward-ocf-")
    os.chmod(d, 0o755)
    try:
        copy = os.path.join(d, "instance")
        shutil.copy(AGENT, copy)
        os.chmod(copy, 0o755)
        args = [TESTER, "-n", name, "-o", "name=" + name,
                "-o", "socket=" + w.sock, "-o", "wardctl=" + wardtest.WARDCTL]
        for k, v in params.items():
            args += ["-o", "%s=%s" % (k, v)]
        p = subprocess.run(args + [copy], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300,
                           env=dict(os.environ, OCF_ROOT="/usr/lib/ocf"))
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0 and "passed all tests" in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_ocf_tester_adhoc_instance(w):
    ocf_tester(w, "tester1", command=hang_cmd(), wait_ready="true")
    assert status(w, "tester1")["state"] == "dead"


def test_ocf_tester_declared_program(w):
    ocf_tester(w, "prog")
    assert status(w, "prog")["state"] == "dead"


def test_arguments_and_parameters(w):
    assert agent(w, None, argv=[])[0] == ARGS
    assert agent(w, None, argv=["start", "extra"])[0] == ARGS
    assert rc(w, "promote", name="x") == UNIMPLEMENTED
    assert rc(w, "validate-all", name="x") == OK
    assert rc(w, "validate-all", name="x", command=hang_cmd()) == OK
    assert rc(w, "validate-all") == CONFIGURED		# no name
    assert rc(w, "validate-all", name="123") == CONFIGURED
    assert rc(w, "validate-all", name="-x") == CONFIGURED
    assert rc(w, "validate-all", name="a b") == CONFIGURED
    assert rc(w, "validate-all", name="all") == CONFIGURED	# every one
    assert rc(w, "validate-all", name="web@1:x.y-z") == OK
    assert rc(w, "validate-all", name="x", wait_ready="maybe") == CONFIGURED
    for action in ("start", "monitor", "stop"):
        assert rc(w, action) == CONFIGURED, action
    # Neither a declared program nor a command: nothing to start.
    assert rc(w, "start", name="nowhere") == CONFIGURED


def test_not_installed(w):
    assert rc(w, "validate-all", name="x",
              wardctl="/nonexistent/wardctl") == INSTALLED
    assert rc(w, "validate-all", name="x",
              command="/nonexistent/daemon --flag") == INSTALLED
    assert rc(w, "start", name="x", command="/nonexistent/daemon") == \
        INSTALLED
    assert rc(w, "start", name="x", wardctl="/nonexistent/wardctl") == \
        INSTALLED
    # Not installed here: nothing of it can run, a stop is done and a
    # probe says not running; a recurring monitor says not installed.
    assert rc(w, "stop", name="x", wardctl="/nonexistent/wardctl") == OK
    probe = {"OCF_RESKEY_CRM_meta_interval": "0"}
    assert rc(w, "monitor", name="x", wardctl="/nonexistent/wardctl",
              env=probe) == NOT_RUNNING
    assert rc(w, "monitor", name="x", wardctl="/nonexistent/wardctl") == \
        INSTALLED
    # No jq: a PATH with the tools the agent runs but jq (and no
    # ocf-shellfuncs, which adds the usual directories to PATH).
    d = tempfile.mkdtemp(prefix="ward-ocf-path-")
    try:
        for tool in ("sh", "date", "sleep", "head", "cat"):
            os.symlink(shutil.which(tool), os.path.join(d, tool))
        assert rc(w, "validate-all", name="x", env={"PATH": d, "OCF_ROOT": d}) == INSTALLED
    finally:
        shutil.rmtree(d)


def test_adhoc_lifecycle_codes(w):
    name = "adhoc"
    assert rc(w, "monitor", name=name) == NOT_RUNNING	# wardd has none
    assert rc(w, "stop", name=name) == OK		# a stopped one stops
    assert rc(w, "start", name=name, command=hang_cmd(),
              wait_ready="true") == OK
    st = status(w, name)
    assert st["state"] == "running" and st["payload_state"] == "ready", st
    assert st["argv"] == ["/bin/sh", "-c", "exec " + hang_cmd()], st
    assert rc(w, "monitor", name=name) == OK
    assert rc(w, "monitor", name=name, env={"OCF_CHECK_LEVEL": "10"}) == OK
    assert rc(w, "start", name=name, command=hang_cmd()) == OK	# again
    assert status(w, name)["pid"] == st["pid"]

    # A crash: not running; at depth 10 a failure, with its reason.
    os.kill(st["pid"], signal.SIGKILL)
    wardtest.wait_dead(w.client(), name)
    assert rc(w, "monitor", name=name) == NOT_RUNNING
    code, err = agent(w, "monitor", name=name,
                      env={"OCF_CHECK_LEVEL": "10"})
    assert code == GENERIC and "KILLED" in err, (code, err)

    # Started anew (a new run, the same command), stopped cleanly.
    assert rc(w, "start", name=name, command=hang_cmd()) == OK
    assert status(w, name)["state"] == "running"
    assert rc(w, "stop", name=name, command=hang_cmd()) == OK
    st = status(w, name)
    assert st["state"] == "dead" and st["killed_by"] == "stop", st
    assert rc(w, "monitor", name=name) == NOT_RUNNING
    assert rc(w, "monitor", name=name,
              env={"OCF_CHECK_LEVEL": "10"}) == NOT_RUNNING
    assert rc(w, "stop", name=name) == OK
    assert rc(w, "reload", name=name, command=hang_cmd()) == NOT_RUNNING


def test_reload_applies_a_new_command(w):
    name = "reloaded"
    assert rc(w, "start", name=name, command=hang_cmd()) == OK
    new = "%s notify READY=1 notify STATUS=two hang" % P
    assert rc(w, "reload", name=name, command=new, wait_ready="true") == OK
    st = status(w, name)
    assert st["state"] == "running" and st["argv"][2] == "exec " + new, st
    # The same command: the payload gets SIGHUP (this one dies of it).
    assert rc(w, "reload", name=name, command=new) == OK
    wardtest.wait_dead(w.client(), name)
    assert status(w, name)["signal_name"] == "SIGHUP"


def test_start_failures(w):
    # Dies at once: start fails (and says why), monitor says not running.
    code, err = agent(w, "start", name="quick", command="%s exit 3" % P)
    assert code == GENERIC and "did not start" in err, (code, err)
    assert rc(w, "monitor", name="quick") == NOT_RUNNING
    assert rc(w, "monitor", name="quick",
              env={"OCF_CHECK_LEVEL": "10"}) == GENERIC
    # Never ready within the action's timeout: bounded, then a failure.
    code, err = agent(w, "start", name="mute", command="%s hang" % P,
                      wait_ready="true", timeout_ms=4000)
    assert code == GENERIC and "not ready" in err, (code, err)
    assert rc(w, "stop", name="mute") == OK
    # A declared program not ready (startsecs 600) within the timeout.
    code, err = agent(w, "start", name="slow", timeout_ms=4000)
    assert code == GENERIC and "not ready" in err, (code, err)
    assert rc(w, "monitor", name="slow") == OK		# it runs
    assert rc(w, "monitor", name="slow",
              env={"OCF_CHECK_LEVEL": "10"}) == GENERIC
    assert rc(w, "stop", name="slow") == OK
    assert rc(w, "monitor", name="slow") == NOT_RUNNING


def test_declared_program_depth_10(w):
    assert rc(w, "start", name="prog") == OK
    st = status(w, "prog")
    assert st["program"]["ready"] is True, st
    assert rc(w, "monitor", name="prog", env={"OCF_CHECK_LEVEL": "10"}) == OK
    c = w.client()
    c.call("instance.suspend", {"name": "prog"})
    assert rc(w, "monitor", name="prog") == OK
    assert rc(w, "monitor", name="prog",
              env={"OCF_CHECK_LEVEL": "10"}) == GENERIC
    c.call("instance.resume", {"name": "prog"})
    c.call("instance.payload", {"name": "prog", "state": "finished"})
    assert rc(w, "monitor", name="prog") == OK
    code, err = agent(w, "monitor", name="prog",
                      env={"OCF_CHECK_LEVEL": "10"})
    assert code == GENERIC and "finished" in err, (code, err)
    assert rc(w, "stop", name="prog") == OK
    assert rc(w, "monitor", name="prog",
              env={"OCF_CHECK_LEVEL": "10"}) == NOT_RUNNING


def test_wardd_unreachable(w):
    gone = os.path.join(w.dir, "no.sock")
    probe = {"OCF_RESKEY_CRM_meta_interval": "0"}
    assert rc(w, "monitor", name="x", socket=gone) == GENERIC
    assert rc(w, "monitor", name="x", socket=gone, env=probe) == NOT_RUNNING
    assert rc(w, "start", name="x", socket=gone, command=hang_cmd()) == \
        GENERIC
    # It may still run: only fencing makes sure, so the stop fails.
    assert rc(w, "stop", name="x", socket=gone) == GENERIC


if __name__ == "__main__":
    wardtest.run(globals())
