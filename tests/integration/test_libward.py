#!/usr/bin/python3
"""libward as a user gets it: installed (make install DESTDIR=...), found
with pkg-config, linked by a program that includes only <ward.h>
(tests/libward_example.c) and run against a real wardd. Also: the library
exports nothing but ward_* symbols, every function ward.h declares is
exported, and fds passed in a spec reach the payload.
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile

import msgpack

import wardtest
from wardtest import TIMEOUT, Ward, read_report, retry

EXAMPLE_SRC = os.path.join(wardtest.SRCDIR, "tests", "libward_example.c")
# Where `make install` puts them, as configured (distcheck picks its own).
LIBDIR = os.environ.get("WARD_LIBDIR", "/usr/local/lib")
INCLUDEDIR = os.environ.get("WARD_INCLUDEDIR", "/usr/local/include")
# What the linker itself defines in a shared object, not the library's API.
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start",
                  "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_"}


class Ctx:
    pass


def setup_module():
    ctx = Ctx()
    ctx.tmp = tempfile.mkdtemp(prefix="ward-libward-")
    ctx.dest = os.path.join(ctx.tmp, "dest")
    # Install the library, its header and ward.pc, as `make install` does
    # for them (wardd's and wardctl's install targets are not needed here).
    p = subprocess.run(
        ["make", "-s", "-C", wardtest.BUILDDIR, "install-libLTLIBRARIES",
         "install-includeHEADERS", "install-pkgconfigDATA",
         "DESTDIR=" + ctx.dest],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert p.returncode == 0, "make install failed:\n" + p.stdout.decode(
        errors="replace")
    ctx.libdir = ctx.dest + LIBDIR
    ctx.incdir = ctx.dest + INCLUDEDIR
    ctx.so = os.path.join(ctx.libdir, "libward.so")
    assert os.path.exists(ctx.so), os.listdir(ctx.libdir)
    assert os.path.exists(os.path.join(ctx.incdir, "ward.h"))
    ctx.pcenv = dict(os.environ,
                     PKG_CONFIG_PATH=os.path.join(ctx.libdir, "pkgconfig"),
                     PKG_CONFIG_SYSROOT_DIR=ctx.dest)
    ctx.ward = Ward().start()
    ctx.exe = None
    return ctx


def teardown_module(ctx):
    if ctx is None:
        return
    ctx.ward.stop()
    shutil.rmtree(ctx.tmp, ignore_errors=True)


def pkg_config(ctx):
    p = subprocess.run(["pkg-config", "--cflags", "--libs", "ward"],
                       env=ctx.pcenv, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return shlex.split(p.stdout)


def build_example(ctx):
    if ctx.exe is None:
        exe = os.path.join(ctx.tmp, "libward_example")
        cc = os.environ.get("CC", "cc")
        # A sanitized libward needs a sanitized program: ASan's runtime
        # must come first in the list of libraries.
        san = shlex.split(os.environ.get("WARD_SAN_CFLAGS", ""))
        p = subprocess.run([cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                            "-o", exe, EXAMPLE_SRC] + san + pkg_config(ctx),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, "the example did not build:\n" + p.stderr
        ctx.exe = exe
    return ctx.exe


def run_example(ctx, *args, sock=None, env=None):
    env = dict(env or os.environ, LD_LIBRARY_PATH=ctx.libdir,
               WARD_SOCKET=sock or ctx.ward.sock)
    p = subprocess.run([build_example(ctx)] + list(args), env=env,
                       capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert p.returncode == 0, "example exited %d:\n%s%s" % (
        p.returncode, p.stdout, p.stderr)
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(": ")
        out[k] = v
    return out, p.stdout


def remove(ctx, name):
    c = ctx.ward.client()
    try:
        c.call("instance.remove", {"name": name})
    finally:
        c.close()
        ctx.ward.clients.remove(c)


# ---- the installed files ----------------------------------------------------

def test_make_install_puts_everything_in_place(ctx):
    """A whole `make install`: both programs, the library and its .pc, the
    man pages, the bash completion and the systemd units, whose ExecStart
    names the wardd that was installed."""
    dest = os.path.join(ctx.tmp, "all")
    p = subprocess.run(["make", "-s", "-C", wardtest.BUILDDIR, "install",
                        "DESTDIR=" + dest], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    assert p.returncode == 0, p.stdout.decode(errors="replace")
    found = {}
    for root, _, files in os.walk(dest):
        for f in files:
            found.setdefault(f, []).append(os.path.join(root, f))
    for f in ("wardd", "wardctl", "libward.so", "ward.h", "ward.pc",
              "wardd.8", "wardctl.1", "ward-protocol.7", "ward.service",
              "ward.socket"):
        assert f in found, "make install did not install %s: %s" % (
            f, sorted(found))
    assert any(x.endswith("/man8/wardd.8") for x in found["wardd.8"])
    assert any("/bash-completion/completions/" in x
               for x in found["wardctl"]), found["wardctl"]
    unit = found["ward.service"][0]
    assert "/systemd/system/" in unit, unit
    with open(unit) as f:
        exe = [l.split("=", 1)[1].split()[0] for l in f
               if l.startswith("ExecStart=")]
    assert exe and os.access(dest + exe[0], os.X_OK), (exe, found["wardd"])


def test_pkg_config_names_installed_library(ctx):
    flags = pkg_config(ctx)
    assert "-I" + ctx.incdir in flags, flags
    assert "-L" + ctx.libdir in flags, flags
    assert "-lward" in flags, flags


def test_example_links_the_installed_library(ctx):
    exe = build_example(ctx)
    p = subprocess.run(["ldd", exe], env=dict(os.environ,
                       LD_LIBRARY_PATH=ctx.libdir),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    line = [l for l in p.stdout.splitlines() if "libward.so" in l]
    assert line, p.stdout
    assert ctx.libdir in line[0], line


def test_exports_only_ward_symbols(ctx):
    p = subprocess.run(["nm", "-D", "--defined-only", ctx.so],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    names = set()
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            names.add(parts[-1].split("@")[0])
    stray = sorted(n for n in names - LINKER_SYMBOLS
                   if not n.startswith("ward_"))
    assert not stray, "libward exports more than ward_*: %s" % stray
    # And everything the header declares is there.
    with open(os.path.join(ctx.incdir, "ward.h")) as f:
        header = f.read()
    header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    declared = set(re.findall(r"\b(ward_[a-z_]+)\s*\(", header))
    declared -= {"ward_reply_cb", "ward_event_cb"}      # typedefs
    assert len(declared) > 30, declared
    missing = sorted(declared - names)
    assert not missing, "declared in ward.h, not exported: %s" % missing


# ---- the example, against a real wardd --------------------------------------

def test_example_run_pipe_died_nonblocking_errors(ctx):
    out, text = run_example(ctx, wardtest.PAYLOAD)
    # ward_connect to nothing: an error, with the code a lost daemon gives.
    assert out.get("badconnect") == "disconnected", text
    # ward_connect(NULL) honours $WARD_SOCKET.
    assert out.get("socket") == ctx.ward.sock, text
    assert out.get("hello") == "wardd protocol 1 pid %d admin 1" % (
        ctx.ward.proc.pid), text
    assert out.get("run", "").startswith("id "), text
    # What the payload wrote to the stdout we passed, and nothing else;
    # what it read from our stdin pipe, copied to our stderr pipe.
    assert out.get("stdout") == "hello-from-payload", text
    assert out.get("stderr") == "hello-from-stdin", text
    assert out.get("died") == "SHUTDOWN exit 0", text
    # ward_spec.limits reached wardd, ward_status.limits came back.
    assert out.get("limits") == "cpus=0", text
    assert out.get("missing") == "-1 not_found", text
    # The non-blocking connection got its reply through ward_dispatch.
    assert out.get("nonblocking", "").startswith(
        "pid %d " % ctx.ward.proc.pid), text
    # And, subscribed, a death through its event callback.
    assert out.get("nonblocking died") == "UNKNOWN exit 3", text
    # A spec's hooks: pre_start, then post_death's result in the record.
    assert out.get("hooks died") == "SHUTDOWN exit 0", text
    assert out.get("post_death") == "exited 4", text
    assert text.rstrip().endswith("done"), text
    # wardd saw the same run.
    c = ctx.ward.client()
    st = c.call("instance.status", {"name": "example-echo"})
    assert st["id"] == int(out["run"].split()[1]), (st, text)
    assert st["state"] == "dead" and st["death_reason"] == "SHUTDOWN", st
    remove(ctx, "example-echo")
    remove(ctx, "example-nb")
    remove(ctx, "example-hooks")


def test_passed_fd_reaches_payload_as_target(ctx):
    outdir = os.path.join(ctx.tmp, "out")
    os.makedirs(outdir, exist_ok=True)
    report = os.path.join(outdir, "fds.report")
    out, text = run_example(ctx, wardtest.PAYLOAD, report)
    assert out.get("fds died") == "SHUTDOWN exit 0", text
    rep = read_report(report)
    fds = rep["fds"].split()
    # 0-2, the failure and notify pipes, and ours as 7: nothing more.
    assert "7" in fds, rep
    assert sorted(fds, key=int) == ["0", "1", "2", "3", "4", "7"], rep
    remove(ctx, "example-echo")
    remove(ctx, "example-nb")
    remove(ctx, "example-fds")
    remove(ctx, "example-hooks")


def test_callers_environment_reaches_payload(ctx):
    """ward_instance_run passes the caller's HOME, USER, LOGNAME, LANG and
    TERM (wardd gives other users' payloads none of its own)."""
    outdir = os.path.join(ctx.tmp, "out")
    os.makedirs(outdir, exist_ok=True)
    report = os.path.join(outdir, "env.report")
    caller = dict(os.environ, HOME="/libward-home", USER="u1", LOGNAME="u2",
                  LANG="C.UTF-8", TERM="vt220")
    out, text = run_example(ctx, wardtest.PAYLOAD, report, env=caller)
    assert out.get("fds died") == "SHUTDOWN exit 0", text
    env = read_report(report)["env"]
    for k in ("HOME", "USER", "LOGNAME", "LANG", "TERM"):
        assert env.get(k) == caller[k], (k, env)
    for name in ("example-echo", "example-nb", "example-fds", "example-hooks"):
        remove(ctx, name)


def test_typed_programs_and_output(ctx):
    """ward_reread, ward_update, ward_reload, ward_instance_log (with and
    without follow) and ward_logrotate, against a wardd with a config dir
    that gains a program after it started."""
    conf = os.path.join(ctx.tmp, "conf")
    os.makedirs(conf)
    w = Ward(args=["--config-dir", conf]).start()
    try:
        with open(os.path.join(conf, "10.conf"), "w") as f:
            f.write("[program:cfg]\ncommand = %s hang\n"
                    "[program:broken]\ncommand = \"unterminated\n"
                    % wardtest.PAYLOAD)
        out, text = run_example(ctx, "--typed", wardtest.PAYLOAD, w.dir,
                                sock=w.sock)
        errs = "errors %s:4: [program:broken] command: unterminated" % (
            os.path.join(conf, "10.conf"))
        assert out["reread"].startswith(
            "added cfg; changed -; removed -; " + errs), text
        assert out["update"] == out["reread"], text
        # Applied already: nothing more to add.
        assert out["reload"].startswith(
            "added -; changed -; removed -; " + errs), text
        c = w.client()
        retry(lambda: c.call("instance.status", {"name": "cfg"})["state"]
              == "running", what="cfg running")
        # The reply's ring and then ward.log notifications: all of it, once.
        assert out["followed"] == "before", text
        assert text.count("\nafter\n") == 1, text
        assert out["log died"] == "SHUTDOWN exit 0", text
        assert out["log"] == "13 bytes, dropped 0, stdout", text
        assert out["log tail"] == "after", text
        assert out["logrotate"] == "reopened 0 failed 0", text
        assert out["log missing"] == "not_found", text
    finally:
        w.stop()


def wardd_fds(ctx):
    return len(os.listdir("/proc/%d/fd" % ctx.ward.proc.pid))


def test_wardd_keeps_no_passed_fds(ctx):
    """wardd holds passed fds only until the spawn or the remove: its own
    count of open fds comes back to where it was."""
    c = ctx.ward.client()
    try:
        c.call("ward.hello")
        base = wardd_fds(ctx)
        outdir = os.path.join(ctx.tmp, "out")
        os.makedirs(outdir, exist_ok=True)
        run_example(ctx, wardtest.PAYLOAD, os.path.join(outdir, "fds2.report"))
        retry(lambda: wardd_fds(ctx) == base, what="wardd's fds after the runs "
              "(%d at first)" % base)
        for n in ("example-echo", "example-nb", "example-fds",
                  "example-hooks"):
            c.call("instance.remove", {"name": n})
        # Created, not started: wardd holds the three until the remove.
        r, w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY)
        c.msgid += 1
        socket.send_fds(c.sock, [msgpack.packb([0, c.msgid, "instance.create", [{
            "name": "held", "argv": wardtest.payload("exit", 0), "stdin": 0,
            "stdout": 1, "fds": [{"fd": 2, "target": 9}]}]])], [r, w, null])
        for fd in (r, w, null):
            os.close(fd)
        err, res = c.response(c.msgid)
        assert err is None, err
        retry(lambda: wardd_fds(ctx) == base + 3, what="three held fds")
        c.call("instance.remove", {"name": "held"})
        retry(lambda: wardd_fds(ctx) == base, what="wardd's fds after remove")
    finally:
        c.close()
        ctx.ward.clients.remove(c)


if __name__ == "__main__":
    wardtest.run(globals())
