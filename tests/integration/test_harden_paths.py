#!/usr/bin/python3
"""Issue 9, findings 1, 2, 10 and the tree half of 4: what wardd does with
paths. Each attack is made as uid nobody (65534) by a script under setpriv:

- the notify socket cannot be swapped for a symlink between bind and the
  hand-over (its directory is wardd's 0700 until then);
- a runtime dir is always new: a leftover of the same name, planted with
  symlinks, is moved away and never followed;
- ids never repeat across restarts, with the counter file deleted or
  corrupted too;
- dumps are the owner's alone (0700) and kept within a count and bytes;
- log files are never written through a link to a root-owned file;
- a runtime dir of 200,000 files is removed without stalling ward.hello.

Everything needs root (to become nobody); without it each test skips.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import time

import wardtest
from wardtest import TIMEOUT, Client, Ward, retry, uniq, wait_dead

NOBODY = 65534
OTHER = 4321		# another non-admin uid (no passwd entry needed)
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))
PY = sys.executable


def need_root():
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root to act as nobody")


def setpriv(uid):
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
            "--clear-groups"]


def as_user(w, body, uid=NOBODY, args=(), timeout=TIMEOUT * 3):
    """Run body (after UID_PRELUDE) as uid, with args in sys.argv[1:];
    return what it passed to done()."""
    p = subprocess.run(setpriv(uid) + [PY, "-c", wardtest.UID_PRELUDE + body] +
                       list(args),
                       env=dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=w.sock),
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, "script as uid %d failed (%d):\n%s" % (
        uid, p.returncode, p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode().splitlines()[-1])


def victim_file(w, name="victim"):
    """A root-owned file whose owner, mode and bytes must never change."""
    path = os.path.join(w.dir, uniq(name))
    with open(path, "w") as f:
        f.write("precious\n")
    os.chmod(path, 0o644)
    return path


def unchanged(path):
    st = os.lstat(path)
    assert st.st_uid == 0 and st.st_gid == 0, (path, st.st_uid, st.st_gid)
    assert stat.S_IMODE(st.st_mode) == 0o644, (path, oct(st.st_mode))
    with open(path) as f:
        assert f.read() == "precious\n", path


def nobody_dir(w, name):
    d = os.path.join(w.dir, uniq(name))
    os.mkdir(d)
    os.chown(d, NOBODY, NOBODY)
    return d


def setup_module():
    if os.geteuid() != 0:
        return None
    w = Ward().start()
    w.root = w.client()
    return w


def teardown_module(w):
    if w is not None:
        w.stop()


# ---- finding 1: the notify socket ----------------------------------------

SPINNER = r'''
import os, sys
state, victim, scratch, target = sys.argv[1:5]
tfd = os.open(target, os.O_RDONLY)
tmp = os.path.join(scratch, "l")
while True:
    try:
        t = int(os.pread(tfd, 32, 0) or b"0")
    except ValueError:
        continue
    for i in (t, t + 1):
        try:
            os.symlink(victim, tmp)
        except FileExistsError:
            pass
        try:
            os.rename(tmp, "%s/instances/%d/notify" % (state, i))
        except OSError:
            pass
'''

CREATOR = r'''
import sys
target, tries = sys.argv[1], int(sys.argv[2])
out = {"created": 0, "errors": 0}
last = c.call("instance.create", {"argv": ["/bin/true"]})["id"]
c.call("instance.remove", {"id": last})
for k in range(tries):
    with open(target, "w") as f:
        f.write(str(last + 1))
    try:
        r = c.call("instance.run", {"argv": ["/bin/true"], "notify": "systemd"})
        last = r["id"]
        out["created"] += 1
        wardtest.wait_dead(c, last)
    except WardError as e:
        out["errors"] += 1
        out["last_error"] = e.message
        last += 1
    try:
        c.call("instance.remove", {"id": last})
    except WardError:
        pass
done(out)
'''


def test_notify_socket_cannot_be_swapped_for_a_symlink(w):
    """A nobody process spins replacing STATE_DIR/instances/NEXT/notify with
    a symlink to a root-owned file while nobody creates instances with
    notify=systemd. Before, chown(path) after bind gave the file to nobody
    (3 tries in 4); now the directory is root's 0700 until wardd has
    handed the socket over by fd."""
    need_root()
    victim = victim_file(w)
    scratch = nobody_dir(w, "spin")
    target = os.path.join(scratch, "target")
    with open(target, "w") as f:
        f.write("0")
    os.chown(target, NOBODY, NOBODY)
    spinner = subprocess.Popen(setpriv(NOBODY) + [PY, "-c", SPINNER, w.state,
                               victim, scratch, target])
    try:
        out = as_user(w, CREATOR, args=(target, "300"), timeout=TIMEOUT * 6)
    finally:
        spinner.kill()
        spinner.wait()
    unchanged(victim)
    assert out["created"] == 300, out
    # The runtime dirs were never nobody's to write before the hand-over:
    # instances/ itself is root's.
    st = os.stat(os.path.join(w.state, "instances"))
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755, st


def test_runtime_dir_is_the_payload_users_and_the_sockets_are_roots(w):
    """The runtime dir is the payload user's; the sockets it is told of
    are not in it (issue 12: one NOTIFY_SOCKET and one fd 3 socket for all,
    in STATE_DIR, root's): NOTIFY_SOCKET anyone may send to, the fd 3
    socket nobody but root (a payload has its own connected socket)."""
    need_root()
    r = as_user(w, '''
r = c.call("instance.run", {"argv": wardtest.payload("hang"),
                            "notify": "systemd"})
done(c.call("instance.status", {"id": r["id"]}))
''')
    rt = r["runtime_dir"]
    st = os.lstat(rt)
    assert st.st_uid == NOBODY and stat.S_IMODE(st.st_mode) == 0o700, st
    assert os.listdir(rt) == [], os.listdir(rt)
    sk = os.lstat(os.path.join(w.state, "notify"))
    assert stat.S_ISSOCK(sk.st_mode) and sk.st_uid == 0, sk
    assert stat.S_IMODE(sk.st_mode) == 0o666, sk
    sk = os.lstat(os.path.join(w.state, "failure"))
    assert stat.S_ISSOCK(sk.st_mode) and sk.st_uid == 0, sk
    assert stat.S_IMODE(sk.st_mode) == 0o600, sk
    # nobody cannot send to the fd 3 socket: no forged failure text.
    r2 = as_user(w, '''
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendto(b"forged", %r)
    done({"sent": True})
except PermissionError:
    done({"sent": False})
''' % os.path.join(w.state, "failure"))
    assert r2 == {"sent": False}, r2
    w.root.call("instance.kill", {"id": r["id"], "signal": "KILL"})
    wait_dead(w.root, r["id"])
    assert not os.path.exists(rt)


# ---- finding 2: runtime dirs are new, ids never repeat ---------------------

def test_planted_leftover_runtime_dir_is_moved_away_unfollowed(w):
    """A runtime dir of the next id already exists, the payload user's, full
    of symlinks to root's files and directories (as a leftover of an earlier
    wardd would be). wardd must not reuse it: it is moved to trash/ and
    removed without following a link, and the instance gets a new one."""
    need_root()
    victim = victim_file(w)
    vdir = os.path.join(w.dir, uniq("vdir"))
    os.mkdir(vdir)
    for k in range(3):
        with open(os.path.join(vdir, "f%d" % k), "w") as f:
            f.write("keep")
    probe = w.root.call("instance.create", {"argv": ["/bin/true"]})["id"]
    w.root.call("instance.remove", {"id": probe})
    planted = []
    for nxt in (probe + 1, probe + 2):
        d = os.path.join(w.state, "instances", str(nxt))
        os.mkdir(d, 0o700)
        os.chown(d, NOBODY, NOBODY)
        planted.append(d)
    # The planting itself is nobody's: links to root's things.
    as_user(w, '''
import sys
for d in %r:
    os.symlink(%r, os.path.join(d, "notify"))
    os.symlink(%r, os.path.join(d, "dir"))
    os.symlink(%r, os.path.join(d, "core.1"))
    os.mkdir(os.path.join(d, "sub"))
    os.symlink(%r, os.path.join(d, "sub", "deeper"))
done({})
''' % (planted, victim, vdir, victim, vdir))
    # The same, but the leftover is itself a symlink to a root directory.
    link = os.path.join(w.state, "instances", str(probe + 3))
    os.symlink(vdir, link)
    for k in range(3):
        r = as_user(w, '''
r = c.call("instance.run", {"argv": wardtest.payload("hang"),
                            "notify": "systemd"})
done(c.call("instance.status", {"id": r["id"]}))
''')
        assert r["id"] == probe + 1 + k, (r, probe)
        rt = r["runtime_dir"]
        st = os.lstat(rt)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == NOBODY, st
        assert os.listdir(rt) == [], os.listdir(rt)
        w.root.call("instance.kill", {"id": r["id"], "signal": "KILL"})
        st = wait_dead(w.root, r["id"])
        assert st["dump_dir"] is None, st
    assert "moved to trash" in w.read_log()
    retry(lambda: wardtest.trash_empty(w), what="the leftovers to be removed")
    unchanged(victim)
    assert sorted(os.listdir(vdir)) == ["f0", "f1", "f2"], os.listdir(vdir)
    assert os.stat(vdir).st_uid == 0


def test_nobody_cannot_plant_in_instances(w):
    need_root()
    out = as_user(w, '''
out = {}
for what, fn in (("mkdir", lambda: os.mkdir(%r)),
                 ("symlink", lambda: os.symlink("/etc", %r))):
    try:
        fn()
        out[what] = "made"
    except PermissionError:
        out[what] = "refused"
done(out)
''' % (os.path.join(w.state, "instances", "999999999"),
       os.path.join(w.state, "instances", "999999998")))
    assert out == {"mkdir": "refused", "symlink": "refused"}, out


def dumper(c, name, size=16, **kw):
    """An instance that leaves a core file of size bytes; its status."""
    spec = {"name": name, "argv": [
        "/bin/sh", "-c", 'head -c %d /dev/zero | tr "\\0" x > '
        '"$WARD_RUNTIME_DIR/core.1"; exit 1' % size]}
    spec.update(kw)
    c.call("instance.run", spec)
    return wait_dead(c, name)


def test_ids_never_repeat_across_restarts():
    need_root()
    w = Ward().start()
    try:
        c = w.client()
        first = [c.call("instance.create", {"argv": ["/bin/true"]})["id"]
                 for _ in range(3)]
        assert first == [1, 2, 3], first
        with open(os.path.join(w.state, "ids")) as f:
            persisted = int(f.read())
        assert persisted > 3, persisted
        seen = max(first)
        # Restart, counter intact; then deleted; then corrupted. Each time
        # the last run leaves a dump, so something on disk names its id.
        for damage in (None, "delete", "corrupt", "empty"):
            st = dumper(c, uniq("d"))
            assert st["id"] > seen and st["dump_dir"], (st, seen)
            seen = st["id"]
            w.proc.terminate()
            w.proc.wait(timeout=TIMEOUT)
            ids = os.path.join(w.state, "ids")
            if damage == "delete":
                os.unlink(ids)
            elif damage == "corrupt":
                with open(ids, "w") as f:
                    f.write("not a number\n")
            elif damage == "empty":
                open(ids, "w").close()
            w.clients = []
            w.start()
            c = w.client()
            r = c.call("instance.create", {"argv": ["/bin/true"]})
            assert r["id"] > seen, (damage, r["id"], seen)
            seen = r["id"]
        # A wardd killed outright leaves its running instance's runtime
        # dir: with the counter gone too, ids still go past it.
        r = c.call("instance.run", {"argv": wardtest.payload("hang")})
        w.proc.kill()
        w.proc.wait()
        os.kill(r["pid"], 9)
        os.unlink(os.path.join(w.state, "ids"))
        w.start()
        c = w.client()
        n = c.call("instance.create", {"argv": ["/bin/true"]})["id"]
        assert n > r["id"], (n, r["id"])
    finally:
        w.stop()


# ---- finding 10: dumps ------------------------------------------------------

def test_dump_dir_is_the_owners_alone(w):
    need_root()
    victim = victim_file(w)
    out = as_user(w, '''
name = "nbdump"
c.call("instance.run", {"name": name, "argv": wardtest.payload(
    "file", "core.42", "nobody's core", "file", "ramdump.1", "ram",
    "exit", "1")})
st = wardtest.wait_dead(c, name)
done(st)
''')
    dump = out["dump_dir"]
    assert dump and os.path.basename(dump) == "nbdump-%d-1" % out["id"], out
    st = os.lstat(dump)
    assert st.st_uid == NOBODY and stat.S_IMODE(st.st_mode) == 0o700, st
    assert sorted(os.listdir(dump)) == ["core.42", "ramdump.1"]
    dumps = os.stat(os.path.join(w.state, "dumps"))
    assert stat.S_IMODE(dumps.st_mode) == 0o711, oct(dumps.st_mode)
    check = '''
out = {}
for what, fn in (("list", lambda: os.listdir(%r)),
                 ("read", lambda: open(%r).read()),
                 ("dumps", lambda: os.listdir(%r))):
    try:
        out[what] = fn()
    except PermissionError:
        out[what] = "refused"
done(out)
''' % (dump, os.path.join(dump, "core.42"), os.path.join(w.state, "dumps"))
    mine = as_user(w, check)
    assert sorted(mine["list"]) == ["core.42", "ramdump.1"], mine
    assert mine["read"] == "nobody's core" and mine["dumps"] == "refused", mine
    other = as_user(w, check, uid=OTHER)
    assert other == {"list": "refused", "read": "refused",
                     "dumps": "refused"}, other
    unchanged(victim)


def test_links_and_dirs_named_like_dumps_are_not_moved(w):
    need_root()
    victim = victim_file(w)
    vdir = os.path.join(w.dir, uniq("vdir"))
    os.mkdir(vdir)
    with open(os.path.join(vdir, "core.keep"), "w") as f:
        f.write("keep")
    out = as_user(w, '''
name = "nblinks"
c.call("instance.run", {"name": name, "argv": ["/bin/sh", "-c",
    'cd "$WARD_RUNTIME_DIR" && ln -s %s core.link && ln -s %s core.dir '
    '&& mkdir core.sub && echo real > core.real && exit 1']})
done(wardtest.wait_dead(c, name))
''' % (victim, vdir))
    dump = out["dump_dir"]
    assert dump is not None, out
    assert os.listdir(dump) == ["core.real"], os.listdir(dump)
    retry(lambda: wardtest.trash_empty(w), what="the runtime dir to go")
    unchanged(victim)
    assert os.listdir(vdir) == ["core.keep"]


def test_dump_retention_drops_oldest_by_count_and_bytes():
    need_root()
    w = Ward(args=["--dumps-max-count", "3", "--dumps-max-bytes", "200K"])
    w.start()
    try:
        c = w.client()
        dumps = os.path.join(w.state, "dumps")
        sts = [dumper(c, "cnt%d" % k) for k in range(5)]
        names = [os.path.basename(s["dump_dir"]) for s in sts]
        retry(lambda: sorted(os.listdir(dumps)) == sorted(names[2:]),
              what="the three newest dumps, got %s" % os.listdir(dumps))
        # Bytes: 80 KiB each within 200 KiB: two fit, a third drops the
        # oldest ones; one bigger than the budget alone is not kept.
        big = [dumper(c, "big%d" % k, size=80 * 1024) for k in range(3)]
        retry(lambda: sorted(os.listdir(dumps)) == sorted(
            os.path.basename(s["dump_dir"]) for s in big[1:]),
            what="the two newest big dumps, got %s" % os.listdir(dumps))
        # One bigger than the budget alone is dropped, and only it.
        huge = dumper(c, "huge", size=300 * 1024)
        assert huge["dump_dir"] is None, huge
        assert "alone: dropped" in w.read_log()
        assert sorted(os.listdir(dumps)) == sorted(
            os.path.basename(s["dump_dir"]) for s in big[1:])
        retry(lambda: wardtest.trash_empty(w), what="dropped dumps to go")
        # At start, what a previous run kept is counted and trimmed too.
        w.proc.terminate()
        w.proc.wait(timeout=TIMEOUT)
        w.extra = ["--dumps-max-count", "1"]
        w.clients = []
        w.start()
        retry(lambda: os.listdir(dumps) == [os.path.basename(
            big[2]["dump_dir"])], what="only the newest dump at start, "
            "got %s" % os.listdir(dumps))
    finally:
        w.stop()


def test_one_users_dumps_push_out_only_its_own():
    """Retention drops the oldest dump of whoever holds the most: nobody's
    many small cores never push out root's older one (second review, S2)."""
    need_root()
    w = Ward(args=["--dumps-max-count", "3"])
    w.start()
    try:
        c = w.client()
        dumps = os.path.join(w.state, "dumps")
        root_dump = os.path.basename(dumper(c, "rootcrash")["dump_dir"])
        out = as_user(w, '''
names = []
for k in range(6):
    name = "nbcore%d" % k
    c.call("instance.run", {"name": name, "argv": wardtest.payload(
        "file", "core.1", "x", "exit", "1")})
    names.append(wardtest.wait_dead(c, name)["dump_dir"])
done(names)
''')
        mine = [os.path.basename(d) for d in out if d]
        assert len(mine) == 6, out
        retry(lambda: sorted(os.listdir(dumps)) == sorted(
            [root_dump] + mine[-2:]), what="root's dump and nobody's two "
            "newest, got %s" % os.listdir(dumps))
    finally:
        w.stop()


# ---- log-file paths ---------------------------------------------------------

def test_logfile_through_a_link_to_a_root_file_is_not_written(w):
    need_root()
    victim = victim_file(w)
    rootdir = os.path.join(w.dir, uniq("rootdir"))
    os.mkdir(rootdir, 0o755)
    logs = nobody_dir(w, "nblogs")
    # A non-admin may not name a log file at all.
    out = as_user(w, '''
done(attempt("instance.run", {"argv": ["/bin/true"],
                              "stdout_logfile": %r}))
''' % os.path.join(logs, "a.log"))
    assert out.get("code") == "permission_denied", out
    # Nobody plants a link at the path of a log of its own payload (an
    # admin's instance that runs as nobody), and a link in place of a
    # directory on the way.
    as_user(w, '''
os.symlink(%r, os.path.join(%r, "app.log"))
os.symlink(%r, os.path.join(%r, "sub"))
done({})
''' % (victim, logs, rootdir, logs))
    for path in (os.path.join(logs, "app.log"),
                 os.path.join(logs, "sub", "app.log")):
        name = uniq("lg")
        e = w.root.error("instance.run", {
            "name": name, "user": "%d:%d" % (NOBODY, NOBODY),
            "argv": ["/bin/sh", "-c", "echo pwned"],
            "stdout_logfile": path})
        assert e["code"] == "spawn_failed" and path in e["message"], e
    unchanged(victim)
    assert os.listdir(rootdir) == [], os.listdir(rootdir)
    # For a payload that runs as root, wardd will not write in nobody's
    # directory at all.
    e = w.root.error("instance.run", {"name": uniq("lg"), "argv": ["/bin/true"],
                                      "stdout_logfile": os.path.join(
                                          logs, "root.log")})
    assert "other than root" in e["message"], e
    assert not os.path.exists(os.path.join(logs, "root.log"))
    # And nobody's payload logs in nobody's directory as nobody, rotations
    # included.
    path = os.path.join(logs, "ok.log")
    name = uniq("lg")
    w.root.call("instance.run", {"name": name,
                                 "user": "%d:%d" % (NOBODY, NOBODY),
                                 "argv": ["/bin/sh", "-c", "seq 1 30000"],
                                 "stdout_logfile": path,
                                 "logfile_maxbytes": 50000,
                                 "logfile_backups": 1})
    wait_dead(w.root, name)
    retry(lambda: os.path.exists(path + ".1"), what="a rotation")
    assert os.stat(path).st_uid == NOBODY and os.stat(path + ".1").st_uid == NOBODY
    unchanged(victim)


# ---- finding 4: removing a big runtime dir ---------------------------------

def test_removing_200000_files_does_not_stall_the_loop(w):
    """A payload (as nobody) leaves 200,000 files (and a tree 100 deep) in
    its runtime dir. Before, removing them stalled the loop (205 ms on the
    test machine, seconds on slower disks); now they go a slice per loop
    turn: ward.hello keeps answering while the tree is still there, and
    never slowly."""
    need_root()
    files = 200000
    go = os.path.join(w.dir, uniq("go"))
    retry(lambda: wardtest.trash_empty(w), what="earlier removals to finish")
    out = as_user(w, '''
r = c.call("instance.run", {"name": "many", "argv": [%r, "-c",
    "import os, time\\n"
    "os.chdir(os.environ['WARD_RUNTIME_DIR'])\\n"
    "d = 'deep'\\n"
    "os.mkdir(d)\\n"
    "for k in range(100):\\n"
    "    d = d + '/d'\\n"
    "    os.mkdir(d)\\n"
    "    open(d + '/f', 'w').close()\\n"
    "for k in range(%d):\\n"
    "    os.close(os.open(str(k), os.O_CREAT | os.O_WRONLY, 0o600))\\n"
    "os.write(4, b'READY=1\\\\n')\\n"
    "while not os.path.exists(%r):\\n"
    "    time.sleep(0.01)\\n"]})
done(c.call("instance.status", {"id": r["id"]}))
''' % (PY, files, go))
    rt = out["runtime_dir"]
    retry(lambda: w.root.call("instance.status", {"name": "many"})[
        "payload_state"] == "ready", timeout=TIMEOUT * 6,
        what="the payload to make its files")
    assert len(os.listdir(rt)) == files + 1
    c = Client(w.sock)
    worst = 0.0
    pings = during = 0
    with open(go, "w"):
        pass
    try:
        # Ping from the death until trash/ is empty again.
        deadline = time.monotonic() + 120
        while True:
            before = not wardtest.trash_empty(w)
            t0 = time.monotonic()
            c.call("ward.hello")
            dt = time.monotonic() - t0
            if before and not wardtest.trash_empty(w):
                during += 1	# answered while the tree was being removed
            worst = max(worst, dt)
            pings += 1
            st = c.call("instance.status", {"name": "many"})
            if st["state"] == "dead" and wardtest.trash_empty(w):
                break
            assert time.monotonic() < deadline, "removal did not finish"
        assert st["exit_code"] == 0, st
    finally:
        c.close()
    assert not os.path.exists(rt)
    print("# %d files removed; slowest of %d ward.hello: %.1f ms; %d answered "
          "during the removal" % (files, pings, worst * 1000, during),
          flush=True)
    assert during >= 3, "the tree was removed in one go"
    assert worst < 1.0, "ward.hello took %.0f ms" % (worst * 1000)
    w.root.call("instance.remove", {"name": "many"})


if __name__ == "__main__":
    wardtest.run(globals())
