#!/usr/bin/python3
"""Root and wardd's own uid are admins. Any other uid sees and touches only
its own instances, and its instances run as that uid and its groups. Only
admins may set `user`. A test acts as `nobody` to prove each rule.

wardd runs as root. To act as nobody, a test runs a small client script
under setpriv; the script prints one JSON line that the test checks.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import wardtest
from wardtest import TIMEOUT, Ward, retry, wait_dead

NOBODY = 65534
NOGROUP = 65534
LIBDIR = os.path.dirname(os.path.abspath(wardtest.__file__))

PRELUDE = wardtest.UID_PRELUDE

SETPRIV = ["setpriv", "--reuid=nobody", "--regid=nogroup"]


def nobody_argv(body, groups=("--init-groups",)):
    return SETPRIV + list(groups) + [sys.executable, "-c", PRELUDE + body]


def nobody_env(w):
    return dict(os.environ, PYTHONPATH=LIBDIR, WARD_SOCK=w.sock)


def as_nobody(w, body, groups=("--init-groups",)):
    """Run body as uid nobody; return the JSON it passed to done()."""
    p = subprocess.run(nobody_argv(body, groups), env=nobody_env(w),
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, "nobody script failed (%d):\n%s" % (
        p.returncode, p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode().splitlines()[-1])


# wardd's own supplementary groups, so that a child which wrongly kept
# them would show it (a test runner's root often has none at all).
WARDD_GROUPS = [4243, 4244]


def setup_module():
    saved = os.getgroups()
    os.setgroups(WARDD_GROUPS)
    try:
        w = Ward().start()
    finally:
        os.setgroups(saved)
    with open("/proc/%d/status" % w.proc.pid) as f:
        groups = [l.split()[1:] for l in f if l.startswith("Groups:")][0]
    assert sorted(map(int, groups)) == WARDD_GROUPS, groups
    w.root = w.client()
    w.shared_out()		# reports of payloads running as nobody
    r = w.root.call("instance.run", {"name": "root-hang",
                                     "argv": wardtest.payload("hang")})
    assert r["state"] == "running", r
    w.root_inst = r
    return w


def report_path(w, name):
    return os.path.join(w.out, name + ".report")


def root_still_fine(w):
    st = w.root.call("instance.status", {"id": w.root_inst["id"]})
    assert st["state"] == "running", st
    assert st["pid"] == w.root_inst["pid"], st
    assert st["suspended"] is False, st
    os.kill(st["pid"], 0)


# ---- tests ------------------------------------------------------------

def test_defaults_by_uid_and_own_uid_is_admin(w):
    """Root's default socket is /run/ward/ward.sock; anyone else's is
    $XDG_RUNTIME_DIR/ward.sock with the state dir beside it. A wardd run
    by nobody counts nobody as an admin there (its own uid), and root too."""
    p = subprocess.run([wardtest.WARDD, "--help"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert "(default /run/ward/ward.sock)" in p.stdout, p.stdout
    xdg = tempfile.mkdtemp(prefix="ward-xdg-")
    os.chown(xdg, NOBODY, NOGROUP)
    os.chmod(xdg, 0o700)
    conf = os.path.join(xdg, "conf.d")
    os.mkdir(conf)
    env = dict(os.environ, XDG_RUNTIME_DIR=xdg)
    proc = subprocess.Popen(SETPRIV + ["--clear-groups", wardtest.WARDD,
                            "--config-dir", conf, "--log-level", "warning"],
                            env=env, stderr=subprocess.PIPE)
    try:
        sock = os.path.join(xdg, "ward.sock")
        wardtest.wait_listening(sock)
        env_n = dict(nobody_env(w), WARD_SOCK=sock)
        q = subprocess.run(nobody_argv("""
hello = c.call("ward.hello")
r = c.call("instance.run", {"name": "mine", "argv": ["/bin/true"]})
st = c.call("instance.status", {"id": r["id"]})
done({"hello": hello, "rt": st["runtime_dir"], "owner": st["owner_uid"]})
""", groups=("--clear-groups",)), env=env_n, capture_output=True,
                           timeout=TIMEOUT)
        assert q.returncode == 0, q.stderr.decode(errors="replace")
        out = json.loads(q.stdout.decode().splitlines()[-1])
        assert out["hello"]["admin"] is True, out
        assert out["hello"]["uid"] == NOBODY, out
        assert out["owner"] == NOBODY, out
        assert out["rt"] is None or out["rt"].startswith(
            os.path.join(xdg, "ward") + "/"), out
        assert os.path.isdir(os.path.join(xdg, "ward", "instances")), \
            os.listdir(xdg)
        root = wardtest.Client(sock)
        assert root.call("ward.hello")["admin"] is True
        root.close()
        p = subprocess.run(SETPRIV + ["--clear-groups", wardtest.WARDD,
                           "--help"], env=env, capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert "(default %s)" % sock in p.stdout, p.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)
        shutil.rmtree(xdg, ignore_errors=True)


def test_hello_says_who_is_admin(w):
    h = w.root.call("ward.hello")
    assert h["uid"] == 0 and h["admin"] is True, h
    out = as_nobody(w, "done(attempt('ward.hello'))")
    assert "ok" in out, out
    assert out["ok"]["uid"] == NOBODY, out
    assert out["ok"]["admin"] is False, out


def test_nobody_instance_runs_as_nobody(w):
    path = report_path(w, "nobody")
    out = as_nobody(w, "done(attempt('instance.run', %r))" % (
        {"name": "nob-report", "argv": wardtest.payload("report", path)},))
    assert "ok" in out, out
    iid = out["ok"]["id"]
    st = wait_dead(w.root, iid)
    assert st["owner_uid"] == NOBODY, st
    assert st["exit_code"] == 0, st
    rep = wardtest.read_report(path)
    assert rep["uid"] == str(NOBODY), rep
    assert rep["gid"] == str(NOGROUP), rep
    # nobody's groups (initgroups gives it just nogroup), not wardd's.
    assert rep["groups"].split() == [str(NOGROUP)], rep
    assert os.stat(path).st_uid == NOBODY


def test_nobody_instance_gets_the_peers_groups(w):
    """The groups are the connecting process's own (SO_PEERGROUPS), not a
    lookup of the user's groups: an extra group set by setpriv shows up."""
    path = report_path(w, "groups")
    out = as_nobody(w, "done(attempt('instance.run', %r))" % (
        {"name": "nob-groups", "argv": wardtest.payload("report", path)},),
        groups=("--groups=%d,4242" % NOGROUP,))
    assert "ok" in out, out
    st = wait_dead(w.root, out["ok"]["id"])
    assert st["exit_code"] == 0, st
    rep = wardtest.read_report(path)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == str(NOGROUP), rep
    assert sorted(rep["groups"].split()) == sorted([str(NOGROUP), "4242"]), rep
    # And with no supplementary groups at all, none are added.
    path = report_path(w, "nogroups")
    out = as_nobody(w, "done(attempt('instance.run', %r))" % (
        {"name": "nob-nogroups", "argv": wardtest.payload("report", path)},),
        groups=("--clear-groups",))
    assert "ok" in out, out
    wait_dead(w.root, out["ok"]["id"])
    rep = wardtest.read_report(path)
    assert rep["uid"] == str(NOBODY), rep
    assert rep["groups"].split() == [], rep


def test_list_shows_only_own(w):
    out = as_nobody(w, r'''
r = attempt('instance.run', {"name": "nob-hang",
                             "argv": %r})
done({"run": r, "list": attempt('instance.list'),
      "running": attempt('instance.list', {"state": "running"})})
''' % (wardtest.payload("hang"),))
    assert "ok" in out["run"], out
    nob_id = out["run"]["ok"]["id"]
    mine = out["list"]["ok"]
    assert mine, out
    assert all(i["owner_uid"] == NOBODY for i in mine), mine
    ids = [i["id"] for i in mine]
    assert nob_id in ids and w.root_inst["id"] not in ids, ids
    assert [i["id"] for i in out["running"]["ok"]] == [nob_id], out
    # root sees both users' instances.
    every = w.root.call("instance.list")
    owners = {i["id"]: i["owner_uid"] for i in every}
    assert owners[w.root_inst["id"]] == 0, owners
    assert owners[nob_id] == NOBODY, owners
    assert set(ids) <= set(owners), (ids, owners)
    running = [i["id"] for i in w.root.call("instance.list",
                                            {"state": "running"})]
    assert w.root_inst["id"] in running and nob_id in running, running
    # An admin may stop another user's instance.
    w.root.call("instance.kill", {"id": nob_id})
    wait_dead(w.root, nob_id)


def test_nobody_cannot_touch_roots_instance(w):
    rid, rname = w.root_inst["id"], w.root_inst["name"]
    out = as_nobody(w, r'''
out = {}
for how, key in (("id", %d), ("name", %r)):
    for m, extra in (("instance.status", {}), ("instance.kill", {}),
                     ("instance.kill", {"signal": "TERM"}),
                     ("instance.stop", {}), ("instance.remove", {}),
                     ("instance.start", {}), ("instance.suspend", {}),
                     ("instance.resume", {}),
                     ("instance.payload", {"state": "ready"})):
        p = dict(extra)
        p[how] = key
        out["%%s %%s %%s" %% (m, how, extra)] = attempt(m, p)
# Control: its own instance it may touch.
r = attempt("instance.run", {"name": "nob-own", "argv": %r})
own = r["ok"]["id"]
out["own status"] = attempt("instance.status", {"id": own})
out["own kill"] = attempt("instance.kill", {"id": own, "signal": "KILL"})
done({"out": out, "own": own})
''' % (rid, rname, wardtest.payload("hang")))
    res = out["out"]
    denied = {k: v for k, v in res.items() if not k.startswith("own ")}
    assert len(denied) == 18, denied
    # Another user's instance is not_found, word for word as a missing one:
    # neither its id nor its owner shows.
    for what, r in denied.items():
        want = ("no instance with id %d" % rid if " id " in what else
                "no instance named '%s'" % rname)
        assert r == {"code": "not_found", "message": want}, (what, r)
    # The very same calls work on its own instance.
    assert res["own status"]["ok"]["owner_uid"] == NOBODY, res
    assert res["own kill"]["ok"] == {"ok": True}, res
    wait_dead(w.root, out["own"])
    root_still_fine(w)
    assert any(i["id"] == rid for i in w.root.call("instance.list"))


def test_nobody_instance_cap(w):
    """A non-admin uid may hold 1000 instances (not yet removed); the next
    create is too_large, naming the limit. Admins are not held to it, and
    removing one makes room again."""
    out = as_nobody(w, """
have = len(c.call("instance.list"))
ids = []
for k in range(1000 - have):
    ids.append(c.call("instance.create", {"argv": ["/bin/true"]})["id"])
over = attempt("instance.create", {"argv": ["/bin/true"]})
c.call("instance.remove", {"id": ids.pop()})
again = attempt("instance.create", {"argv": ["/bin/true"]})
if "ok" in again:
    ids.append(again["ok"]["id"])
for i in ids:
    c.call("instance.remove", {"id": i})
done({"have": have, "over": over, "again": again,
      "left": len(c.call("instance.list"))})
""")
    assert out["over"].get("code") == "too_large", out
    assert "the most a non-admin may have" in out["over"]["message"], out
    assert "uid 65534 has 1000 instances" in out["over"]["message"], out
    assert "ok" in out["again"], out
    assert out["left"] == out["have"], out
    # An admin past the same count is not refused.
    ids = [w.root.call("instance.create", {"argv": ["/bin/true"]})["id"]
           for _ in range(1001)]
    for i in ids:
        w.root.call("instance.remove", {"id": i})


def test_only_admins_set_user(w):
    before = w.root.call("ward.stats")["created"]
    out = as_nobody(w, r'''
argv = %r
done([attempt(m, {"argv": argv, "user": u})
      for m in ("instance.create", "instance.run")
      for u in (65534, "65534", "65534:65534", 0, "0:0")])
''' % (wardtest.payload("hang"),))
    assert len(out) == 10, out
    for r in out:
        assert r.get("code") == "permission_denied", r
        assert "user" in r["message"], r
    # Nothing was created by any of them.
    assert w.root.call("ward.stats")["created"] == before
    root_still_fine(w)


def test_nobody_cannot_shutdown(w):
    out = as_nobody(w, '''
done([attempt("ward.shutdown"),
      attempt("ward.shutdown", {"kill_instances": False})])
''')
    for r in out:
        assert r.get("code") == "permission_denied", r
        assert "ward.shutdown" in r["message"], r
    assert w.proc.poll() is None
    assert w.root.call("ward.hello")["admin"] is True
    root_still_fine(w)


def test_root_sets_user(w):
    path = report_path(w, "root-as-nobody")
    r = w.root.call("instance.run", {"name": "root-as-nobody",
                                     "user": "65534:65534",
                                     "argv": wardtest.payload("report",
                                                              path)})
    st = wait_dead(w.root, r["id"])
    assert st["exit_code"] == 0, st
    rep = wardtest.read_report(path)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == str(NOGROUP), rep
    # user means exactly those ids: no supplementary groups (not root's).
    assert rep["groups"].split() == [], rep
    # It is still root's instance: nobody does not see it.
    assert st["owner_uid"] == 0, st
    out = as_nobody(w, "done([attempt('instance.list'), "
                       "attempt('instance.status', {'id': %d})])" % r["id"])
    assert r["id"] not in [i["id"] for i in out[0]["ok"]], out
    assert out[1].get("code") == "not_found", out
    # A bare uid means that uid as gid too; uid:gid may differ.
    path2 = report_path(w, "root-as-nobody-2")
    r2 = w.root.call("instance.run", {"user": "65534:4242",
                                      "argv": wardtest.payload("report",
                                                               path2)})
    wait_dead(w.root, r2["id"])
    rep = wardtest.read_report(path2)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == "4242", rep
    path3 = report_path(w, "root-as-nobody-3")
    r3 = w.root.call("instance.run", {"user": NOBODY,
                                      "argv": wardtest.payload("report",
                                                               path3)})
    wait_dead(w.root, r3["id"])
    rep = wardtest.read_report(path3)
    assert rep["uid"] == str(NOBODY) and rep["gid"] == str(NOBODY), rep
    # Without user, root's instances run as root (with wardd's groups).
    path4 = report_path(w, "root-self")
    r4 = w.root.call("instance.run", {"argv": wardtest.payload("report",
                                                               path4)})
    wait_dead(w.root, r4["id"])
    rep = wardtest.read_report(path4)
    assert rep["uid"] == "0" and rep["gid"] == "0", rep
    assert sorted(map(int, rep["groups"].split())) == WARDD_GROUPS, rep


def test_history_shows_only_own(w):
    r = w.root.call("instance.run", {"name": "root-exit",
                                     "argv": wardtest.payload("exit", 3)})
    out = as_nobody(w, "done(attempt('instance.run', %r))" % (
        {"name": "nob-exit", "argv": wardtest.payload("exit", 4)},))
    nob_id = out["ok"]["id"]
    assert wait_dead(w.root, r["id"])["exit_code"] == 3
    assert wait_dead(w.root, nob_id)["exit_code"] == 4
    out = as_nobody(w, '''
done({"all": attempt("instance.history"),
      "root_id": attempt("instance.history", {"id": %d}),
      "root_name": attempt("instance.history", {"name": "root-exit"}),
      "own": attempt("instance.history", {"name": "nob-exit"})})
''' % r["id"])
    recs = out["all"]["ok"]
    assert recs, out
    assert all(x["owner_uid"] == NOBODY for x in recs), recs
    names = [x["name"] for x in recs]
    assert "nob-exit" in names and "root-exit" not in names, names
    assert "root-hang" not in names and "root-as-nobody" not in names, names
    assert out["root_id"]["ok"] == [], out
    assert out["root_name"]["ok"] == [], out
    own = out["own"]["ok"]
    assert len(own) == 1 and own[0]["id"] == nob_id, own
    assert own[0]["exit_code"] == 4, own
    # root sees every record, both users'.
    every = w.root.call("instance.history")
    by_name = {x["name"]: x for x in every}
    assert by_name["root-exit"]["owner_uid"] == 0, by_name
    assert by_name["nob-exit"]["owner_uid"] == NOBODY, by_name
    assert len(every) > len(recs)


def test_events_show_only_own(w):
    """nobody subscribes first; root then runs an instance to its death,
    and only after that does nobody run its own. Events on one connection
    arrive in order, so had root's reached nobody they would come first."""
    body = r'''
r = attempt("events.subscribe")
assert r.get("ok") == {"ok": True}, r
print("subscribed", flush=True)
assert sys.stdin.readline().strip() == "go"
run = attempt("instance.run", {"name": "nob-ev", "argv": %r})
me = run["ok"]["id"]
seen = []
while True:
    e = c.event()
    seen.append({"type": e["type"], "id": e["id"], "name": e["name"]})
    if e["type"] == "died" and e["id"] == me:
        break
done({"me": me, "seen": seen})
''' % (wardtest.payload("exit", 0),)
    p = subprocess.Popen(nobody_argv(body), env=nobody_env(w),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()
        assert line == b"subscribed\n", (line, p.stderr.read())
        # root's own subscriber tells when root's instance is done.
        sub = w.client()
        sub.call("events.subscribe")
        r = w.root.call("instance.run", {"name": "root-ev",
                                         "argv": wardtest.payload("exit", 0)})
        sub.event(lambda e: e["type"] == "died" and e["id"] == r["id"])
        p.stdin.write(b"go\n")
        p.stdin.flush()
        out_b, err_b = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err_b.decode(errors="replace")
    out = json.loads(out_b.decode().splitlines()[-1])
    seen = out["seen"]
    assert all(e["id"] == out["me"] for e in seen), seen
    assert all(e["name"] == "nob-ev" for e in seen), seen
    types = [e["type"] for e in seen]
    assert types[:2] == ["created", "started"], types
    assert types[-1] == "died", types
    # root's subscriber saw nobody's instance as well as its own.
    ev = sub.event(lambda e: e["id"] == out["me"] and e["type"] == "died")
    assert ev["name"] == "nob-ev", ev


if __name__ == "__main__":
    wardtest.run(globals())
