#!/usr/bin/python3
"""events.subscribe / events.unsubscribe, event delivery and back-pressure,
and the metrics wardd samples for running instances.

One wardd (--metrics-interval 100) serves every test. Each test leaves no
instance running and closes its clients, so tests that count subscribers or
watch the metrics timer see only their own doing.
"""
import json
import os
import socket
import subprocess
import threading
import time

import msgpack

import wardtest
from wardtest import WardError, payload, retry

INTERVAL_MS = 100
CONN_OUT_CAP = 1024 * 1024          # src/ward.h
EVENT_KEYS = {"type", "time_ms", "id", "name", "state"}
METRICS_KEYS = {"cpu_user_ms", "cpu_system_ms", "cpu_guest_ms", "cpu_percent",
                "rss_kb", "rss_max_kb", "pss_kb", "rss_mapping_kb",
                "rss_mapping_max_kb", "samples",
                "cgroup_memory_kb", "cgroup_cpu_usage_ms"}
EXIT_KEYS = {"id", "name", "owner_uid", "started_at_ms", "uptime_ms", "metrics",
             "state", "death_reason", "exit_code", "exit_signal",
             "signal_name", "core_dumped", "failure_reason", "failure_info",
             "failure_discarded", "dump_dir", "died_at_ms", "exit_status_lost",
             "run", "killed_by", "killed_by_uid", "post_death"}


def setup_module():
    return wardtest.Ward(args=["--metrics-interval", str(INTERVAL_MS)]).start()


# ---- helpers ---------------------------------------------------------------

class Clients:
    """Clients opened by one test, all closed when it ends."""

    def __init__(self, ward):
        self.ward = ward
        self.opened = []

    def __enter__(self):
        return self

    def new(self):
        c = self.ward.client()
        self.opened.append(c)
        return c

    def subscriber(self, **params):
        c = self.new()
        assert c.call("events.subscribe", params) == {"ok": True}
        return c

    def __exit__(self, *exc):
        for c in self.opened:
            c.close()
        if exc[0] is not None:
            # A failed test must not leave instances running for the next.
            c = self.ward.client()
            try:
                for st in c.call("instance.list", {"state": "running"}):
                    try:
                        c.call("instance.kill", {"id": st["id"]})
                    except WardError:
                        pass
                retry(lambda: stats(c)["running"] == 0, what="cleanup")
            finally:
                c.close()


def stats(c):
    return c.call("ward.stats")


def idle(ward):
    """No instance running and no subscriber left from an earlier test."""
    c = ward.client()
    try:
        retry(lambda: stats(c)["running"] == 0 and
              stats(c)["subscribers"] == 0, what="wardd to be idle")
    finally:
        c.close()


def next_event(c, timeout=None):
    """The very next message on c, which must be a ward.event."""
    msg = c.notification(timeout)
    assert msg is not None, "wardd closed the connection"
    assert msg[0] == 2 and msg[1] == "ward.event", msg
    assert len(msg[2]) == 1, msg
    return msg[2][0]


def of(ident, typ=None):
    return lambda e: e["id"] == ident and (typ is None or e["type"] == typ)


def check_event(e, typ, inst_id, name, state):
    assert e["type"] == typ, e
    assert e["id"] == inst_id and e["name"] == name, e
    assert e["state"] == state, e
    assert EVENT_KEYS <= set(e), e
    now = time.time() * 1000
    assert abs(e["time_ms"] - now) < 60000, e


# ---- the event stream --------------------------------------------------------

def test_sequence_of_one_instance(ward):
    """created -> started -> payload -> died -> removed, in that order."""
    with Clients(ward) as cl:
        sub = cl.subscriber()
        ctl = cl.new()
        r = ctl.call("instance.run", {
            "name": "seq-one", "argv": payload("notify", "READY=1", "exit", 3),
            "exit_codes": {"3": "SEQ_REASON"}})
        iid = r["id"]

        e = next_event(sub)
        check_event(e, "created", iid, "seq-one", "not_started")
        assert set(e) == EVENT_KEYS, e
        e = next_event(sub)
        check_event(e, "started", iid, "seq-one", "running")
        assert e["pid"] == r["pid"] and e["pid"] > 0, (e, r)
        t_started = e["time_ms"]
        e = next_event(sub)
        check_event(e, "payload", iid, "seq-one", "running")
        assert e["payload_state"] == "ready", e
        assert e["status_text"] == "", e
        e = next_event(sub)
        check_event(e, "died", iid, "seq-one", "dead")
        assert e["time_ms"] >= t_started, e
        ex = e["exit"]
        assert set(ex) == EXIT_KEYS, sorted(set(ex) ^ EXIT_KEYS)
        assert ex["id"] == iid and ex["name"] == "seq-one", ex
        assert ex["death_reason"] == "SEQ_REASON", ex
        assert ex["exit_code"] == 3, ex
        assert ex["exit_signal"] is None and ex["signal_name"] is None, ex
        assert ex["state"] == "dead", ex
        assert ex["owner_uid"] == os.getuid(), ex
        assert set(ex["metrics"]) == METRICS_KEYS, ex
        # The event's record is the one status and history keep.
        st = ctl.call("instance.status", {"id": iid})
        assert st["death_reason"] == "SEQ_REASON" and st["exit_code"] == 3, st

        ctl.call("instance.remove", {"id": iid})
        e = next_event(sub)
        check_event(e, "removed", iid, "seq-one", "dead")
        assert set(e) == EVENT_KEYS, e


def test_died_by_signal_carries_signal(ward):
    with Clients(ward) as cl:
        sub = cl.subscriber(types=["died"])
        ctl = cl.new()
        iid = ctl.call("instance.run", {"argv": payload("hang")})["id"]
        retry(lambda: ctl.call("instance.status", {"id": iid})["pid"],
              what="pid")
        ctl.call("instance.kill", {"id": iid, "signal": "KILL"})
        e = next_event(sub)
        check_event(e, "died", iid, str(iid), "dead")
        ex = e["exit"]
        assert ex["exit_code"] is None, ex
        assert ex["exit_signal"] == 9 and ex["signal_name"] == "SIGKILL", ex
        assert ex["death_reason"] == "KILLED", ex
        ctl.call("instance.remove", {"id": iid})


def test_filter_by_ids(ward):
    """Events of instances not in ids are not delivered."""
    with Clients(ward) as cl:
        ctl = cl.new()
        a = ctl.call("instance.create", {"name": "ids-a",
                                         "argv": payload("exit", 0)})["id"]
        b = ctl.call("instance.create", {"name": "ids-b",
                                         "argv": payload("exit", 0)})["id"]
        only_b = cl.subscriber(ids=[b])
        watch = cl.subscriber()
        # A runs its whole life (started, died, removed) first...
        ctl.call("instance.start", {"id": a})
        watch.event(of(a, "died"))
        ctl.call("instance.remove", {"id": a})
        watch.event(of(a, "removed"))
        # ...so A's events, had they been delivered, would come before B's.
        ctl.call("instance.start", {"id": b})
        e = next_event(only_b)
        check_event(e, "started", b, "ids-b", "running")
        e = next_event(only_b)
        check_event(e, "died", b, "ids-b", "dead")
        ctl.call("instance.remove", {"id": b})
        e = next_event(only_b)
        check_event(e, "removed", b, "ids-b", "dead")

        # An empty ids list means no instance at all, not every instance.
        none = cl.subscriber(ids=[])
        c = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        watch.event(of(c, "created"))
        ctl.call("instance.remove", {"id": c})
        watch.event(of(c, "removed"))
        none.call("ward.hello")
        assert none.notifications == [], none.notifications


def test_filter_by_types(ward):
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["died"])
        both = cl.subscriber(types=["created", "removed"])
        r1 = ctl.call("instance.run", {"argv": payload("notify", "READY=1",
                                                       "exit", 0)})
        # created, started and payload were emitted but not for sub.
        e = next_event(sub)
        check_event(e, "died", r1["id"], r1["name"], "dead")
        assert e["exit"]["death_reason"] == "SHUTDOWN", e
        ctl.call("instance.remove", {"id": r1["id"]})
        r2 = ctl.call("instance.run", {"argv": payload("exit", 0)})
        # r1's removed was not delivered either: the next one is r2's death.
        e = next_event(sub)
        check_event(e, "died", r2["id"], r2["name"], "dead")
        ctl.call("instance.remove", {"id": r2["id"]})

        seen = [(e["type"], e["id"]) for e in
                (next_event(both) for _ in range(4))]
        assert seen == [("created", r1["id"]), ("removed", r1["id"]),
                        ("created", r2["id"]), ("removed", r2["id"])], seen


def test_resubscribe_replaces(ward):
    """A second events.subscribe replaces the first."""
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["created"])
        assert sub.call("events.subscribe", {"types": ["removed"]}) == \
            {"ok": True}
        i = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        ctl.call("instance.remove", {"id": i})
        e = next_event(sub)
        assert e["type"] == "removed" and e["id"] == i, e
        assert stats(ctl)["subscribers"] == 1


def test_unsubscribe_stops_delivery(ward):
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber()
        # Control: while subscribed, an event precedes the hello reply.
        i = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        sub.call("ward.hello")
        assert len(sub.notifications) == 1, sub.notifications
        assert sub.notifications[0][2][0]["type"] == "created"
        sub.notifications.clear()

        assert sub.call("events.unsubscribe") == {"ok": True}
        assert stats(ctl)["subscribers"] == 0
        j = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        ctl.call("instance.remove", {"id": i})
        ctl.call("instance.remove", {"id": j})
        # Those events were emitted before ctl got its replies; none reached sub.
        sub.call("ward.hello")
        assert sub.notifications == [], sub.notifications
        # Unsubscribing twice is harmless.
        assert sub.call("events.unsubscribe") == {"ok": True}


def test_subscribe_bad_arguments(ward):
    with Clients(ward) as cl:
        ctl = cl.new()
        c = cl.new()
        err = c.error("events.subscribe", {"types": ["created", "bogus"]})
        assert err["code"] == "invalid_argument", err
        err = c.error("events.subscribe", {"types": ["overflow"]})
        assert err["code"] == "invalid_argument", err
        err = c.error("events.subscribe", {"types": [7]})
        assert err["code"] == "invalid_argument", err
        err = c.error("events.subscribe", {"types": "died"})
        assert err["code"] == "invalid_argument", err
        err = c.error("events.subscribe", {"ids": ["x"]})
        assert err["code"] == "invalid_argument", err
        err = c.error("events.subscribe", {"ids": [-1]})
        assert err["code"] == "invalid_argument", err
        # A refused subscription subscribes nothing.
        assert stats(ctl)["subscribers"] == 0
        i = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        ctl.call("instance.remove", {"id": i})
        c.call("ward.hello")
        assert c.notifications == [], c.notifications


def test_metrics_events_only_when_asked(ward):
    with Clients(ward) as cl:
        ctl = cl.new()
        plain = cl.subscriber()
        met = cl.subscriber(types=["metrics"])
        ticks0 = stats(ctl)["metrics_ticks"]
        r = ctl.call("instance.run", {"name": "met-ev", "argv": payload("hang")})
        iid = r["id"]
        samples = []
        for _ in range(3):
            e = next_event(met)
            check_event(e, "metrics", iid, "met-ev", "running")
            assert set(e) == EVENT_KEYS | {"metrics", "suspended"}, e
            assert set(e["metrics"]) == METRICS_KEYS, e
            samples.append(e["metrics"]["samples"])
        assert samples == sorted(samples) and samples[-1] > samples[0], samples
        assert stats(ctl)["metrics_ticks"] >= ticks0 + 3
        ctl.call("instance.stop", {"id": iid})
        # plain saw every metrics tick go by without a metrics event.
        types = []
        while True:
            e = next_event(plain)
            assert e["id"] == iid, e
            types.append(e["type"])
            if e["type"] == "died":
                break
        assert types == ["created", "started", "died"], types
        ctl.call("instance.remove", {"id": iid})


def test_overflow_drops_a_subscriber_that_does_not_read(ward):
    idle(ward)
    with Clients(ward) as cl:
        ctl = cl.new()
        other = cl.new()
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(wardtest.TIMEOUT)
        raw.connect(ward.sock)
        try:
            raw.sendall(msgpack.packb([0, 1, "events.subscribe",
                                       [{"types": ["created", "removed"]}]]))
            unp = msgpack.Unpacker(raw=False, strict_map_key=False)
            reply = None
            while reply is None:
                data = raw.recv(4096)
                assert data, "EOF before the subscribe reply"
                unp.feed(data)
                for m in unp:
                    reply = m
            assert reply == [1, 1, None, {"ok": True}], reply
            assert stats(ctl)["subscribers"] == 1

            # Pipelined create/remove pairs: two events each, no spawns.
            pad = "x" * 50
            made = 0
            batches = 0
            while stats(ctl)["subscribers"] == 1:
                batches += 1
                assert batches <= 60, "no overflow after %d events" % (made * 2)
                ids = []
                for k in range(made, made + 400):
                    ids.append(ctl.request("instance.create", {
                        "name": "ovf-%06d-%s" % (k, pad),
                        "argv": payload("exit", 0)}))
                    ctl.request("instance.remove",
                                {"name": "ovf-%06d-%s" % (k, pad)})
                made += 400
                for msgid in range(ids[0], ids[-1] + 2):
                    err, _ = ctl.response(msgid)
                    assert err is None, err
                # The blocked subscriber does not hold anybody else up.
                assert other.call("ward.hello")["server"] == "wardd"

            # Drain: events in order with no gap, then overflow, then EOF.
            total = 0
            msgs = []
            while True:
                data = raw.recv(1 << 16)
                if not data:
                    break
                total += len(data)
                unp.feed(data)
                msgs.extend(unp)
            assert msgs, "nothing queued for the subscriber"
            last = msgs[-1]
            assert last[0] == 2 and last[1] == "ward.event", last
            assert last[2][0]["type"] == "overflow", last
            assert last[2][0]["message"], last
            evs = [m[2][0] for m in msgs[:-1]]
            assert all(m[0] == 2 and m[1] == "ward.event" for m in msgs), \
                "non-event message in the stream"
            assert not any(e["type"] == "overflow" for e in evs)
            # Everything before the overflow: created/removed pairs in order.
            first = evs[0]["id"]
            for n, e in enumerate(evs):
                assert e["type"] == ("created", "removed")[n % 2], (n, e)
                assert e["id"] == first + n // 2, (n, e)
            # It was the 1 MiB cap that tripped, not something smaller.
            assert total > CONN_OUT_CAP - 1024, total
            assert len(evs) < made * 2, (len(evs), made)
        finally:
            raw.close()
        assert stats(ctl)["subscribers"] == 0
        assert other.call("ward.hello")["server"] == "wardd"
        # A new subscriber is served as before.
        sub = cl.subscriber(types=["created"])
        i = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        assert next_event(sub)["id"] == i
        ctl.call("instance.remove", {"id": i})


def self_flooding_subscriber(ward, ctl, rnd):
    """Subscribe and pipeline create/remove pairs on one connection without
    reading; once wardd dropped the subscriber, read what it was sent.
    Returns the stream as a list of event types and "reply N"."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(wardtest.TIMEOUT)
    s.connect(ward.sock)
    reqs = [msgpack.packb([0, 1, "events.subscribe",
                           [{"types": ["created", "removed"]}]])]
    for k in range(12000):
        name = "self%d-%06d-%s" % (rnd, k, "y" * 50)
        reqs.append(msgpack.packb([0, 2 + 2 * k, "instance.create",
                                   [{"name": name,
                                     "argv": payload("exit", 0)}]]))
        reqs.append(msgpack.packb([0, 3 + 2 * k, "instance.remove",
                                   [{"name": name}]]))
    data = b"".join(reqs)

    def sender():
        # Blocks once wardd stops reading; EPIPE once it has closed.
        try:
            s.sendall(data)
        except OSError:
            pass
    c0 = stats(ctl)["created"]
    t = threading.Thread(target=sender, daemon=True)
    t.start()

    last = [None]

    def dropped():
        st = stats(ctl)
        if st["created"] < c0 + 1000:
            return False    # still subscribing or working through the flood
        if st["subscribers"] == 0:
            return True
        if st["created"] != last[0]:
            last[0] = st["created"]
            return False    # it is still making progress
        # If a reply rather than an event filled its buffer, wardd merely
        # stopped reading it: events from elsewhere must now overflow it.
        i = ctl.call("instance.create", {"argv": payload("exit", 0)})["id"]
        ctl.call("instance.remove", {"id": i})
        last[0] = stats(ctl)["created"]
        return False
    try:
        retry(dropped, what="the overflow")
        unp = msgpack.Unpacker(raw=False, strict_map_key=False)
        msgs = []
        while True:
            try:
                chunk = s.recv(1 << 16)
            except ConnectionResetError:
                # wardd closed with our unread requests still queued to it:
                # the kernel reports that as a reset rather than EOF.
                break
            if not chunk:
                break
            unp.feed(chunk)
            msgs.extend(unp)
    finally:
        s.close()
        t.join(wardtest.TIMEOUT)
    for st in ctl.call("instance.list"):
        if st["name"].startswith("self%d-" % rnd):
            ctl.call("instance.remove", {"id": st["id"]})
    return [m[2][0]["type"] if m[0] == 2 else "reply %d" % m[1] for m in msgs]


def test_overflow_is_last_for_a_subscriber_that_sends_requests(ward):
    """A subscriber that also pipelines requests and reads nothing: its
    stream too must end with the overflow event. (Where the cap is crossed
    varies, so several rounds.)"""
    idle(ward)
    with Clients(ward) as cl:
        ctl = cl.new()
        for rnd in range(4):
            kinds = self_flooding_subscriber(ward, ctl, rnd)
            assert kinds[0] == "reply 1", kinds[:3]
            assert kinds.count("overflow") == 1, kinds[-5:]
            over = kinds.index("overflow")
            assert over == len(kinds) - 1, \
                "round %d: after the overflow event came %r" % (
                    rnd, kinds[over + 1:over + 4])
            assert ctl.call("ward.hello")["server"] == "wardd"
            assert stats(ctl)["subscribers"] == 0


def test_subscriber_sees_only_what_it_may_see(ward):
    """A non-admin subscriber gets events of its own instances only."""
    prog = r"""
import json, sys, wardtest
c = wardtest.Client(sys.argv[1])
c.call("events.subscribe", {})
print("ready", flush=True)
sys.stdin.readline()
r = c.call("instance.run", {"argv": wardtest.payload("exit", 0)})
seen = []
c.event(lambda e: seen.append([e["type"], e["id"]]) or
        (e["id"] == r["id"] and e["type"] == "died"))
c.call("instance.remove", {"id": r["id"]})
c.call("ward.hello")
seen += [[n[2][0]["type"], n[2][0]["id"]] for n in c.notifications]
print(json.dumps([r["id"], seen]), flush=True)
"""
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber()
        env = dict(os.environ, PYTHONPATH=os.path.dirname(wardtest.__file__))
        p = subprocess.Popen(["/usr/bin/python3", "-c", prog, ward.sock],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=env, user=65534, group=65534,
                             extra_groups=[], text=True)
        try:
            assert p.stdout.readline() == "ready\n"
            rid = ctl.call("instance.run", {"argv": payload("exit", 0)})["id"]
            sub.event(of(rid, "died"))
            ctl.call("instance.remove", {"id": rid})
            sub.event(of(rid, "removed"))
            out, _ = p.communicate("go\n", timeout=wardtest.TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, out
        own, seen = json.loads(out)
        assert seen == [["created", own], ["started", own], ["died", own],
                        ["removed", own]], seen
        # The admin sees the other user's instance too.
        assert sub.event(of(own, "removed"))["id"] == own


# ---- metrics ---------------------------------------------------------------

def status(c, iid):
    return c.call("instance.status", {"id": iid})


def test_metrics_rss(ward):
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["payload", "died"])
        iid = ctl.call("instance.run", {
            "argv": payload("alloc", 64, "notify", "READY=1", "hang")})["id"]
        assert next_event(sub)["payload_state"] == "ready"
        m = retry(lambda: (lambda m: m if m["rss_kb"] >= 60000 else None)(
            status(ctl, iid)["metrics"]), what="rss_kb >= 60000")
        assert m["rss_max_kb"] >= m["rss_kb"], m
        assert m["samples"] >= 1, m
        ctl.call("instance.kill", {"id": iid, "signal": "KILL"})
        e = next_event(sub)
        assert e["type"] == "died" and e["id"] == iid, e
        # The death keeps the peak; a dead process' 0 is not recorded.
        assert e["exit"]["metrics"]["rss_max_kb"] >= 60000, e
        st = status(ctl, iid)
        assert st["metrics"]["rss_max_kb"] >= 60000, st["metrics"]
        hist = ctl.call("instance.history", {"id": iid})
        assert hist[-1]["metrics"]["rss_max_kb"] >= 60000, hist
        ctl.call("instance.remove", {"id": iid})


def test_metrics_cpu(ward):
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["payload", "died"])
        iid = ctl.call("instance.run", {
            "argv": payload("cpu", 300, "notify", "READY=1", "hang")})["id"]
        m = retry(lambda: (lambda m: m if m["cpu_user_ms"] +
                           m["cpu_system_ms"] >= 200 else None)(
            status(ctl, iid)["metrics"]), what="200 ms of CPU")
        assert m["cpu_user_ms"] >= 100, m
        assert next_event(sub)["payload_state"] == "ready"   # burn is over
        ctl.call("instance.kill", {"id": iid, "signal": "KILL"})
        e = next_event(sub)
        assert e["type"] == "died" and e["id"] == iid, e
        em = e["exit"]["metrics"]
        # The zombie's final bill: at least the 300 ms it burnt.
        assert em["cpu_user_ms"] + em["cpu_system_ms"] >= 280, em
        ctl.call("instance.remove", {"id": iid})


def test_metrics_rss_mapping(ward):
    prog = ("import os,mmap,sys; fd=os.memfd_create('crosvm_guest'); "
            "os.ftruncate(fd, 32<<20); m=mmap.mmap(fd, 32<<20); "
            "m.write(b'x'*(32<<20)); os.write(4, b'READY=1\\n'); "
            "import signal; signal.pause()")
    argv = ["/usr/bin/python3", "-c", prog]
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["payload", "died"])
        a = ctl.call("instance.run", {"argv": argv,
                                      "rss_mapping": "crosvm_guest"})["id"]
        b = ctl.call("instance.run", {"argv": argv,
                                      "rss_mapping": "no_such_mapping"})["id"]
        got = {next_event(sub)["id"], next_event(sub)["id"]}
        assert got == {a, b}, got
        ma = retry(lambda: (lambda m: m if m["rss_mapping_kb"] >= 30000
                            else None)(status(ctl, a)["metrics"]),
                   what="rss_mapping_kb >= 30000")
        assert ma["rss_mapping_max_kb"] >= ma["rss_mapping_kb"], ma
        assert ma["rss_mapping_kb"] <= 33 * 1024, ma
        assert ma["pss_kb"] >= 30000, ma
        # b holds the same memory but its mapping name does not match.
        mb = retry(lambda: (lambda m: m if m["pss_kb"] >= 30000 else None)(
            status(ctl, b)["metrics"]), what="b's full sample")
        assert mb["rss_mapping_kb"] == 0 and mb["rss_mapping_max_kb"] == 0, mb
        for i in (a, b):
            ctl.call("instance.kill", {"id": i, "signal": "KILL"})
        dead = {next_event(sub)["id"], next_event(sub)["id"]}
        assert dead == {a, b}, dead
        st = status(ctl, a)
        assert st["metrics"]["rss_mapping_max_kb"] >= 30000, st["metrics"]
        for i in (a, b):
            ctl.call("instance.remove", {"id": i})


def test_metrics_timer_stops_when_idle(ward):
    idle(ward)
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["died"])
        t0 = stats(ctl)["metrics_ticks"]
        iid = ctl.call("instance.run", {"argv": payload("hang")})["id"]
        retry(lambda: stats(ctl)["metrics_ticks"] >= t0 + 2,
              what="ticks while an instance runs")
        ctl.call("instance.kill", {"id": iid, "signal": "KILL"})
        assert next_event(sub)["id"] == iid
        s = stats(ctl)
        assert s["running"] == 0, s
        t1 = s["metrics_ticks"]
        # Let five intervals pass; a running timer would tick ~5 times.
        start = time.monotonic()
        retry(lambda: time.monotonic() - start >= 5 * INTERVAL_MS / 1000,
              what="five metrics intervals")
        t2 = stats(ctl)["metrics_ticks"]
        assert t2 == t1, "metrics timer ticked %d times with nothing " \
            "running" % (t2 - t1)
        # And it comes back with the next instance.
        iid2 = ctl.call("instance.run", {"argv": payload("hang")})["id"]
        retry(lambda: stats(ctl)["metrics_ticks"] > t2, what="timer restart")
        ctl.call("instance.kill", {"id": iid2, "signal": "KILL"})
        assert next_event(sub)["id"] == iid2
        for i in (iid, iid2):
            ctl.call("instance.remove", {"id": i})


def test_hundred_instances_one_thread(ward):
    idle(ward)
    n = 100
    with Clients(ward) as cl:
        ctl = cl.new()
        sub = cl.subscriber(types=["started", "died"])
        msgids = [ctl.request("instance.run", {"argv": payload("hang")})
                  for _ in range(n)]
        ids = set()
        for m in msgids:
            err, r = ctl.response(m)
            assert err is None, err
            assert r["state"] == "running", r
            ids.add(r["id"])
        assert len(ids) == n
        started = {sub.event(lambda e: e["type"] == "started")["id"]
                   for _ in range(n)}
        assert started == ids
        s = stats(ctl)
        assert s["running"] == n, s
        pid = ctl.call("ward.hello")["pid"]
        assert pid == ward.proc.pid
        tasks = os.listdir("/proc/%d/task" % pid)
        assert tasks == [str(pid)], tasks
        msgids = [ctl.request("instance.stop", {"id": i}) for i in ids]
        for m in msgids:
            err, r = ctl.response(m)
            assert err is None and r == {"ok": True}, (err, r)
        died = {}
        while len(died) < n:
            e = sub.event(lambda e: e["type"] == "died")
            assert e["id"] in ids and e["id"] not in died, e
            died[e["id"]] = e["exit"]
        assert all(x["exit_signal"] == 15 and x["death_reason"] == "KILLED"
                   for x in died.values()), died
        assert stats(ctl)["running"] == 0
        assert os.listdir("/proc/%d/task" % pid) == [str(pid)]
        msgids = [ctl.request("instance.remove", {"id": i}) for i in ids]
        for m in msgids:
            err, _ = ctl.response(m)
            assert err is None, err


if __name__ == "__main__":
    wardtest.run(globals())
