#!/usr/bin/python3
"""Issue 12: at most 2 fds per running instance, a stated capacity, and a
clear refusal past it.

A running instance holds its pidfd and its fd 4 stream (channel.c makes fd
3 and NOTIFY_SOCKET one shared socket each), so 9,000 `sleep`s run under
a 20,000 open-files limit that wardd cannot raise. ward.stats says how many
fit; past that, a start is refused with resource_exhausted naming
RLIMIT_NOFILE, and wardd, its instances and its clients carry on. Not
timed: counts only.
"""
import os
import resource

import wardtest
from wardtest import Ward, payload, retry, uniq, wait_dead, wait_file


def nofile(n):
    return {"preexec_fn": lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                     (n, n))}


def run_many(c, n, argv, prefix):
    """n instance.run requests pipelined on one connection (a window of
    256 outstanding); the (error, result) of each, in order."""
    out, pending = [], []
    for k in range(n):
        pending.append(c.request("instance.run", {
            "name": "%s-%d" % (prefix, k), "argv": argv}))
        if len(pending) >= 256:
            out.append(c.response(pending.pop(0)))
    out.extend(c.response(m) for m in pending)
    return out


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_9000_instances_under_20000_fds():
    with Ward(popen=nofile(20000)) as w:
        c = w.client()
        cap = c.call("ward.stats")["capacity"]
        assert cap["rlimit_nofile"] == 20000, cap
        assert cap["fds_per_instance"] == 2, cap
        assert cap["instances"] >= 9000, cap
        res = run_many(c, 9000, ["sleep", "1000"], "s")
        errs = [e for e, _ in res if e is not None]
        assert not errs, (len(errs), errs[:3])
        st = c.call("ward.stats")
        assert st["running"] == 9000, st["running"]
        fds = proc_fds(w.proc.pid)
        # 2 per instance and wardd's own few (listener, STATE_DIR, ...).
        assert fds <= 2 * 9000 + 64, fds
        assert st["capacity"]["fds_instances"] == 2 * 9000, st["capacity"]
        assert st["capacity"]["fds_in_use"] <= fds, (st["capacity"], fds)
        # What the fds were saved for still works with 9,000 running: fd 3,
        # fd 4 and NOTIFY_SOCKET, each placed with its own instance.
        d = w.dir
        a = c.call("instance.run", {"name": uniq("fail"), "argv": payload(
            "notify", "READY=1", "fail", "disk on fire", "exit", 3)})
        b = c.call("instance.run", {"name": uniq("sd"), "notify": "systemd",
            "argv": ["sh", "-c", "systemd-notify --ready --status=up; "
                     "echo ok > %s/sd; exec sleep 1000" % d]})
        sa = wait_dead(c, a["id"])
        assert sa["failure_reason"] == "disk on fire", sa
        wait_file(os.path.join(d, "sd"))
        retry(lambda: c.call("instance.status", {"id": b["id"]})
              ["payload_state"] == "ready", what="READY=1 through NOTIFY_SOCKET")
        assert c.call("instance.status", {"id": b["id"]})["status_text"] \
            == "up"
        c.call("ward.shutdown", {"kill_instances": True})
        w.proc.wait(timeout=120)


def test_refused_past_capacity_and_everything_carries_on():
    with Ward(popen=nofile(256)) as w:
        c = w.client()
        cap = c.call("ward.stats")["capacity"]
        fit = cap["instances"]
        assert 0 < fit < 128, cap
        res = run_many(c, fit + 20, ["sleep", "1000"], "c")
        ok = [r for e, r in res if e is None]
        refused = [e for e, _ in res if e is not None]
        # Each one that fit ran; the rest were refused, none half-made.
        assert len(ok) >= fit - 2, (len(ok), fit)
        assert refused, "nothing was refused past the capacity"
        for e in refused:
            assert e["code"] == "resource_exhausted", e
            assert "RLIMIT_NOFILE" in e["message"], e
        st = c.call("ward.stats")
        assert st["running"] == len(ok), (st["running"], len(ok))
        # A refused run leaves no instance behind.
        assert st["instances"] == len(ok), (st["instances"], len(ok))
        # wardd carries on: a new client connects, a stop frees room.
        c2 = w.client()
        assert c2.call("ward.hello")
        c2.call("instance.stop", {"id": ok[0]["id"], "timeout_ms": 1000})
        wait_dead(c2, ok[0]["id"])
        again = c2.call("instance.run", {"name": uniq("again"),
                                         "argv": ["sleep", "1000"]})
        assert again["id"] > 0
        c.call("ward.shutdown", {"kill_instances": True})
        w.proc.wait(timeout=60)


if __name__ == "__main__":
    wardtest.run(globals())
