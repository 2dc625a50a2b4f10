#!/usr/bin/python3
"""The control protocol as proto/PROTOCOL.md specifies it: envelope,
methods, addressing, error maps and argument checking."""
import os
import re

import msgpack

import wardtest
from wardtest import Ward, payload, wait_dead

W = None
C = None

METHODS = ["ward.hello", "ward.stats", "ward.shutdown", "instance.create",
           "instance.start", "instance.run", "instance.status", "instance.list",
           "instance.kill", "instance.stop", "instance.suspend",
           "instance.resume", "instance.payload", "instance.remove",
           "instance.history", "events.subscribe", "events.unsubscribe"]
CODES = {"not_found", "invalid_argument", "invalid_state", "exists",
         "permission_denied", "too_large", "no_such_method", "internal",
         "spawn_failed", "busy", "protocol_error"}


def setup_module():
    global W, C
    W = Ward().start()
    C = W.client()
    return W


def test_hello():
    h = C.call("ward.hello")
    assert h["server"] == "wardd" and h["protocol"] == 1, h
    assert h["pid"] == W.proc.pid and h["uid"] == 0 and h["admin"] is True, h
    assert re.match(r"^\d+\.\d+\.\d+$", h["version"]), h


def test_every_method_exists():
    for m in METHODS:
        err, _ = C.response(C.request(m, {"no_such_key": 1}))
        assert err is not None and err["code"] != "no_such_method", (m, err)
        assert err["code"] == "invalid_argument", (m, err)
        assert "unknown key 'no_such_key'" in err["message"], (m, err)


def test_spec_lists_every_method_and_code():
    with open(os.path.join(wardtest.SRCDIR, "proto", "PROTOCOL.md")) as f:
        spec = f.read()
    for m in METHODS:
        assert re.search(r"^###.*`%s[ `]" % re.escape(m), spec, re.M), m
    for code in CODES:
        assert "`%s`" % code in spec, code


def test_no_such_method():
    err = C.error("instance.frobnicate")
    assert err["code"] == "no_such_method", err
    assert "instance.frobnicate" in err["message"], err


def test_params_forms():
    # No params, an empty array, [nil] and [{}] all mean "no arguments".
    for params in ([], [None], [{}]):
        C.msgid += 1
        C.send_raw(msgpack.packb([0, C.msgid, "ward.hello", params]))
        err, res = C.response(C.msgid)
        assert err is None and res["server"] == "wardd", (params, err)
    C.msgid += 1
    C.send_raw(msgpack.packb([0, C.msgid, "ward.hello", [{}, {}]]))
    err, _ = C.response(C.msgid)
    assert err["code"] == "invalid_argument", err
    C.msgid += 1
    C.send_raw(msgpack.packb([0, C.msgid, "ward.hello", {"a": 1}]))
    err, _ = C.response(C.msgid)
    assert err["code"] == "invalid_argument", err


def test_method_as_bin_and_client_notifications():
    C.send_raw(msgpack.packb([2, "nvim_client_hello", [1, 2]]))
    C.send_raw(msgpack.packb([2, b"other", []], use_bin_type=True))
    assert C.call("ward.hello", method_bin=True)["server"] == "wardd"


def test_status_stats_shape():
    r = C.call("instance.run", {"name": "shape", "argv": payload("hang")})
    st = C.call("instance.status", {"name": "shape"})
    for k in ("id", "name", "state", "payload_state", "status_text", "pid",
              "argv", "owner_uid", "requester_pid", "created_at_ms",
              "started_at_ms", "uptime_ms", "suspended", "metrics"):
        assert k in st, k
    assert st["id"] == r["id"] and st["state"] == "running", st
    assert st["requester_pid"] == os.getpid(), st
    for k in ("cpu_user_ms", "cpu_system_ms", "cpu_guest_ms", "rss_kb",
              "rss_max_kb", "pss_kb"):
        assert k in st["metrics"], k
    assert "death_reason" not in st, st
    s = C.call("ward.stats")
    assert s["running"] >= 1 and s["instances"] >= 1 and s["clients"] >= 1, s
    C.call("instance.kill", {"name": "shape"})
    st = wait_dead(C, "shape")
    for k in ("exit_code", "exit_signal", "signal_name", "core_dumped",
              "death_reason", "failure_reason", "failure_info", "dump_dir"):
        assert k in st, k
    C.call("instance.remove", {"id": r["id"]})


def test_addressing():
    r = C.call("instance.create", {"name": "addr", "argv": ["true"]})
    assert C.call("instance.status", {"id": r["id"]})["name"] == "addr"
    assert C.call("instance.status", {"name": "addr"})["id"] == r["id"]
    err = C.error("instance.status", {"id": r["id"], "name": "addr"})
    assert err["code"] == "invalid_argument", err
    err = C.error("instance.status")
    assert err["code"] == "invalid_argument", err
    err = C.error("instance.status", {"id": 999999})
    assert err["code"] == "not_found" and "999999" in err["message"], err
    err = C.error("instance.status", {"name": "nope"})
    assert err["code"] == "not_found" and "'nope'" in err["message"], err
    err = C.error("instance.status", {"id": "1"})
    assert err["code"] == "invalid_argument", err
    C.call("instance.remove", {"name": "addr"})


def test_create_validation_messages():
    cases = [
        ({}, "argv"),
        ({"argv": []}, "non-empty"),
        ({"argv": "true"}, "'argv' must be an array"),
        ({"argv": [1]}, "strings"),
        ({"argv": ["no-such-program-x"]}, "not found in PATH"),
        ({"argv": ["/etc/passwd"]}, "not executable"),
        ({"argv": ["/etc"]}, "not a regular file"),
        ({"argv": ["true"], "name": "123"}, "all digits"),
        ({"argv": ["true"], "name": "a b"}, "'name'"),
        ({"argv": ["true"], "name": "x" * 65}, "1 to 64"),
        ({"argv": ["true"], "env": {"A=B": "c"}}, "'env'"),
        ({"argv": ["true"], "env": {"A": 1}}, "'env'"),
        ({"argv": ["true"], "hangup_timeout_ms": 0}, "hangup_timeout_ms"),
        ({"argv": ["true"], "hangup_timeout_ms": "5"}, "hangup_timeout_ms"),
        ({"argv": ["true"], "exit_codes": {300: "X"}}, "exit codes 0-255"),
        ({"argv": ["true"], "exit_codes": {3: "lower"}}, "A-Z"),
        ({"argv": ["true"], "profile": "qemu"}, "unknown profile"),
        ({"argv": ["true"], "detect_hangup": 1}, "boolean"),
        ({"argv": ["true"], "user": "root"}, "uid"),
        ({"argv": ["true"], "bogus": 1}, "unknown key 'bogus'"),
    ]
    for params, text in cases:
        err = C.error("instance.create", params)
        assert err["code"] == "invalid_argument", (params, err)
        assert text in err["message"], (params, err)
    # Nothing was created by any of them.
    assert C.call("instance.list") == []


def test_argv0_from_instance_path():
    d = os.path.join(W.dir, "bin")
    os.makedirs(d, exist_ok=True)
    exe = os.path.join(d, "only-here")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\nexit 4\n")
    os.chmod(exe, 0o755)
    err = C.error("instance.create", {"argv": ["only-here"]})
    assert "not found in PATH" in err["message"], err
    r = C.call("instance.run", {"name": "pathy", "argv": ["only-here"],
                                "env": {"PATH": d}})
    st = wait_dead(C, "pathy")
    assert st["exit_code"] == 4, st
    C.call("instance.remove", {"id": r["id"]})


def test_error_map_shape():
    err = C.error("instance.remove", {"id": 424242})
    assert set(err) == {"code", "message"}, err
    assert err["code"] in CODES
    assert "424242" in err["message"], err


def test_list_filter():
    a = C.call("instance.create", {"name": "l1", "argv": ["true"]})
    b = C.call("instance.run", {"name": "l2", "argv": payload("hang")})
    ids = [x["id"] for x in C.call("instance.list", {"state": "running"})]
    assert b["id"] in ids and a["id"] not in ids, ids
    ids = [x["id"] for x in C.call("instance.list", {"state": "not_started"})]
    assert a["id"] in ids and b["id"] not in ids, ids
    assert C.error("instance.list", {"state": "zombie"})["code"] == "invalid_argument"
    C.call("instance.kill", {"id": b["id"]})
    wait_dead(C, b["id"])
    C.call("instance.remove", {"id": a["id"]})
    C.call("instance.remove", {"id": b["id"]})


if __name__ == "__main__":
    wardtest.run(globals())
