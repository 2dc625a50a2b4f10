#!/usr/bin/python3
"""instance.list's compact form ({fields, rows}): the same values as the
plain status maps for every kind of instance, in fewer bytes, and what
libward and wardctl make of it."""
import os
import re
import subprocess

import msgpack

import wardtest
from wardtest import Ward, WardError, payload, retry, wait_dead

W = None
C = None
WARDCTL = os.path.join(wardtest.BUILDDIR, "client", "wardctl")

# Values that move between two calls: bounded by the plain lists around.
MOVING = ("uptime_ms",)


def setup_module():
    """Instances of each kind: running (with a status text), dead with an
    exit record, killed by a signal, never started, and declared programs
    (one running and ready, one dead in its backoff). Metrics are sampled
    once an hour, so they stay still between the calls compared."""
    global W, C
    W = Ward(args=["--metrics-interval", "3600000"])
    conf = os.path.join(W.dir, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "p.conf"), "w") as f:
        f.write(wardtest.programs_conf(1, run="prun", back="pback"))
    W.extra += ["--config-dir", conf]
    W.start()
    C = W.client()
    C.call("instance.run", {"name": "running",
                            "argv": payload("notify", "STATUS=busy here", "hang")})
    C.call("instance.run", {"name": "exited", "argv": payload("exit", 3)})
    C.call("instance.run", {"name": "killed", "argv": payload("hang")})
    C.call("instance.create", {"name": "created", "argv": payload("hang")})
    retry(lambda: C.call("instance.status", {"name": "running"})
          ["status_text"] == "busy here", what="the status text")
    C.call("instance.kill", {"name": "killed", "signal": "KILL"})
    wait_dead(C, "exited")
    wait_dead(C, "killed")
    retry(lambda: C.call("instance.status", {"name": "prun0"})
          ["program"]["ready"], what="prun0 ready")
    retry(lambda: C.call("instance.status", {"name": "pback0"})
          ["program"]["state"] == "backoff", what="pback0 in backoff")
    return W


def flat(status):
    """A status map with its nested maps as "outer.inner" keys."""
    out = {}
    for k, v in status.items():
        if isinstance(v, dict):
            for ik, iv in v.items():
                out["%s.%s" % (k, ik)] = iv
        else:
            out[k] = v
    return out


def compact(params=None):
    return C.call("instance.list", dict(params or {}, compact=True))


def test_compact_carries_the_plain_values():
    before = C.call("instance.list")
    comp = compact()
    after = C.call("instance.list")
    fields = comp["fields"]
    assert len(fields) == len(set(fields)), fields
    assert [r[0] for r in comp["rows"]] == [s["id"] for s in before]
    for row, b, a in zip(comp["rows"], before, after):
        assert len(row) == len(fields), (row, fields)
        got = dict(zip(fields, row))
        fb, fa = flat(b), flat(a)
        # Every key of the plain map is a column ...
        assert set(fb) <= set(fields), set(fb) - set(fields)
        for k in fields:
            # ... and a column the plain map lacks is nil in the row.
            if k not in fb:
                assert got[k] is None, (b["name"], k, got[k])
            elif k in MOVING and fb[k] is not None:
                assert fb[k] <= got[k] <= fa[k], (b["name"], k)
            else:
                assert got[k] == fb[k] and type(got[k]) is type(fb[k]), \
                    (b["name"], k, got[k], fb[k])
    kinds = {s["name"]: s for s in before}
    # The kinds this test means to cover are there.
    assert kinds["running"]["status_text"] == "busy here"
    assert kinds["exited"]["exit_code"] == 3
    assert kinds["killed"]["signal_name"] == "SIGKILL"
    assert kinds["created"]["state"] == "not_started"
    assert kinds["prun0"]["program"]["ready"] is True
    assert kinds["pback0"]["program"]["state"] == "backoff"
    assert "death_reason" in kinds["pback0"]


def test_compact_names_nested_columns():
    fields = compact()["fields"]
    for k in ("metrics.rss_kb", "metrics.cgroup_cpu_usage_ms",
              "program.state", "program.fatal_reason", "death_reason",
              "exit_status_lost", "argv"):
        assert k in fields, k
    assert "metrics" not in fields and "program" not in fields


def test_compact_is_smaller():
    plain = len(msgpack.packb(C.call("instance.list")))
    small = len(msgpack.packb(compact()))
    # Six instances already: the names once instead of in every map.
    assert small < plain * 0.6, (small, plain)


def test_compact_filters_by_state():
    comp = compact({"state": "dead"})
    names = {dict(zip(comp["fields"], r))["name"] for r in comp["rows"]}
    assert names == {s["name"] for s in C.call("instance.list",
                                                {"state": "dead"})}
    assert "exited" in names and "running" not in names


def test_compact_empty_and_false():
    w = Ward().start()
    try:
        c = w.client()
        assert c.call("instance.list", {"compact": True}) == \
            {"fields": [], "rows": []}
    finally:
        w.stop()
    assert isinstance(C.call("instance.list", {"compact": False}), list)
    err = C.error("instance.list", {"compact": "yes"})
    assert err["code"] == "invalid_argument"


def ctl(*args):
    p = subprocess.run([WARDCTL] + list(args),
                       env=dict(os.environ, WARD_SOCKET=W.sock),
                       capture_output=True, text=True, timeout=20)
    # status: 3 when one shown is not running (supervisorctl's).
    assert p.returncode in (0, 3), p.stderr
    return p.stdout


def test_wardctl_status_lists_the_same_through_libward():
    """wardctl status -l lists through libward's compact decode; with names
    it asks instance.status (plain maps) one by one: the same text, but
    for the uptime, which moves."""
    names = [s["name"] for s in C.call("instance.list")]
    listed = ctl("status", "-l")
    named = ctl("status", "-l", *names)
    up = re.compile(r", up .*")
    assert up.sub("", listed) == up.sub("", named), (listed, named)
    assert "program:  backoff" in listed and "busy here" in listed
    assert "died:     " in listed


def test_libward_falls_back_for_an_older_wardd():
    """A wardd from before the compact form answers invalid_argument
    naming the key: libward (here under wardctl status) asks again
    without it."""
    path = os.path.join(W.dir, "old.sock")
    plain = C.call("instance.list")
    asked = []

    def old_list(args):
        asked.append(args)
        if "compact" in args:
            return WardError({"code": "invalid_argument", "message":
                              "instance.list: unknown key 'compact'"})
        return plain
    f = wardtest.FakeWardd(path, {"instance.list": old_list})
    try:
        out = subprocess.run([WARDCTL, "--socket", path, "status"],
                             capture_output=True, text=True, timeout=20)
    finally:
        f.close()
    assert out.returncode in (0, 3), out.stderr     # 3: one is dead
    assert "pback0" in out.stdout and "running" in out.stdout
    assert asked == [{"compact": True}, {}], asked


if __name__ == "__main__":
    wardtest.run(globals())
