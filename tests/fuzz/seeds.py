#!/usr/bin/python3
"""seeds.py: write the hand-made seeds of tests/fuzz/corpus/ (python3-msgpack).

Run it after changing a seed here; the files it writes are committed.
Each harness's top comment says how it reads its input (flags bytes first).
"""
import msgpack, os

os.chdir(os.path.dirname(os.path.abspath(__file__)))
P = lambda o: msgpack.packb(o, use_bin_type=True)
def req(i, m, *params): return P([0, i, m, list(params)])
def w(t, name, data):
    d = os.path.join('corpus', t); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), 'wb').write(data)

hello = req(1, "ward.hello")
create = req(2, "instance.create", {"name": "web", "argv": ["/bin/true", "--port", "8080"],
    "env": {"LANG": "C"}, "cwd": "/", "detect_hangup": True, "hangup_timeout_ms": 3000,
    "exit_codes": {33: "CRASH"}, "profile": "crosvm", "notify": "systemd", "watchdog_ms": 500})
run_captured = req(3, "instance.run", {"name": "cap", "argv": ["true"], "capture_output": True,
    "log_ring_bytes": 4096, "log_overflow": "drop"})
# fuzz_codec: the bytes a client writes.
w('fuzz_codec', 'hello', hello)
w('fuzz_codec', 'create', create)
w('fuzz_codec', 'pipelined', hello + req(2, "instance.list", {"state": "running"}) +
  req(3, "instance.kill", {"name": "web", "signal": "SIGTERM", "group": True}))
w('fuzz_codec', 'kill-by-number', req(4, "instance.kill", {"id": 7, "signal": 9}))
w('fuzz_codec', 'notification', P([2, "ward.event", [{"type": "created"}]]))
w('fuzz_codec', 'bin-method', P([0, 5, b"ward.stats", []]))
w('fuzz_codec', 'huge-map-header', b'\xdd\xff\xff\xff\xff')     # msgpack-c issue 1013
w('fuzz_codec', 'deep', b'\x91' * 40 + b'\xc0')
w('fuzz_codec', 'types', P([0, 6, "x", [{"a": -1, "b": 1.5, "c": None, "d": b"\x00\x01",
    "e": msgpack.ExtType(1, b"abcd"), "f": 2**64 - 1, "g": -2**63}]]))
w('fuzz_codec', 'truncated', create[:-5])

# fuzz_dispatch: a flags byte (bit 0 admin, bit 1 pass an fd), then the stream.
A, N, FD = b'\x01', b'\x00', b'\x02'
w('fuzz_dispatch', 'hello-admin', A + hello)
w('fuzz_dispatch', 'hello-nobody', N + hello + req(2, "ward.stats"))
w('fuzz_dispatch', 'create-status-remove', N + create + req(3, "instance.status", {"name": "web"}) +
  req(4, "instance.list") + req(5, "instance.start", {"name": "web"}) +
  req(6, "instance.history", {"name": "web", "limit": 5}) + req(7, "instance.remove", {"name": "web"}))
w('fuzz_dispatch', 'run-captured-log', A + run_captured +
  req(4, "instance.log", {"name": "cap", "stream": "stdout", "bytes": 100}) +
  req(5, "instance.logrotate") + req(6, "instance.remove", {"id": 1}))
w('fuzz_dispatch', 'subscribe-create', N + req(1, "events.subscribe", {"types": ["created", "died", "removed"]}) +
  create + req(3, "instance.run", {"name": "web"}) + req(4, "events.unsubscribe"))
w('fuzz_dispatch', 'passed-fd', bytes([1 | 2]) + req(1, "instance.create", {"name": "fds",
  "argv": ["/bin/cat"], "stdin": 0, "fds": [{"fd": 0, "target": 7}]}) +
  req(2, "instance.start", {"name": "fds"}))
w('fuzz_dispatch', 'not-running', N + create + req(3, "instance.kill", {"name": "web"}) +
  req(4, "instance.stop", {"name": "web", "timeout_ms": 10}) + req(5, "instance.suspend", {"name": "web"}) +
  req(6, "instance.resume", {"name": "web"}) + req(7, "instance.payload", {"name": "web", "state": "ready"}))
w('fuzz_dispatch', 'admin-only', N + req(1, "ward.shutdown", {"kill_instances": False}) +
  req(2, "ward.reread") + req(3, "ward.update"))
w('fuzz_dispatch', 'admin-config', A + req(1, "ward.reread") + req(2, "ward.update") +
  req(3, "ward.reload") + req(4, "ward.shutdown", {"kill_instances": False}))
w('fuzz_dispatch', 'execenv', A + req(1, "instance.run", {"name": "env", "argv": ["sh"], "user": 65534,
  "group": 65534, "umask": "027", "nice": 5, "oom_score_adj": 100,
  "rlimits": {"nofile": [64, 128], "core": 0}, "clean_env": True}))
w('fuzz_dispatch', 'bad-utf8-method', N + P([0, 1, b"\xff\xfe instance.\xc3", []]))
w('fuzz_dispatch', 'protocol-error', N + hello + b'\xc1')
w('fuzz_dispatch', 'split-frame', bytes([0 | (32 << 2)]) + create)

# fuzz_notify: flags, fd 4 lines, 0x1f, datagrams split by 0x1e.
w('fuzz_notify', 'lines', b'\x00STATE=started\nSTATUS=booting\nREADY=1\nSTATE=finished\n')
w('fuzz_notify', 'watchdog', b'\x01WATCHDOG=1\nWATCHDOG=trigger\nSTATUS=still here\r\n')
w('fuzz_notify', 'bad-lines', b'\x00READY=0\nSTATE=starting\nSTATE=hangup\nfoo\n\n' +
  b'STATUS=\xff\xfe\xc3\n' + b'x' * 5000 + b'\nREADY=1')
w('fuzz_notify', 'sd-notify', b'\x00STATE=started\n\x1fREADY=1\nSTATUS=serving\x1eSTOPPING=1' +
  b'\x1eERRNO=5\x1eEXIT_STATUS=3\x1eMAINPID=1\nRELOADING=1\x1e\x1eWATCHDOG=1')
w('fuzz_notify', 'sd-foreign', b'\x04\x1fREADY=1\nSTATUS=forged\x1eERRNO=1')
w('fuzz_notify', 'sd-fdstore', b'\x02\x1fFDSTORE=1\nFDNAME=x\x1eBARRIER=1')
w('fuzz_notify', 'sd-nul', b'\x00\x1fREADY=1\x00\x1eSTATUS=ok')
# bit 3: the datagrams are writes to fd 3 (bit 2: by a socket not the child's).
w('fuzz_notify', 'fd3-failure', b'\x0a\x1fDISK_FULL|/var\x1e\x1e has 0 bytes\n\xff\x00')
w('fuzz_notify', 'fd3-foreign', b'\x0c\x1fCRASH|forged\x1eanything')

# fuzz_failure: 4 header bytes (killed_by, flags, code, states), then fd 3.
w('fuzz_failure', 'microdroid', b'\x00\x02\x21\x08MICRODROID_PAYLOAD_HAS_CHANGED|info')
w('fuzz_failure', 'crash', b'\x00\x12\x21\x10CRASH|segfault at 0x0\n\n')
w('fuzz_failure', 'free-text', b'\x00\x02\x01\x00disk full: /var is 100%  \t\n')
w('fuzz_failure', 'hangup', b'\x01\x00\x00\x01')
w('fuzz_failure', 'crosvm-code', b'\x00\x0a\x24\x00')
w('fuzz_failure', 'bad-name', b'\x00\x02\x00\x00crash|lower case is text\xff\xc3\x00')
w('fuzz_failure', 'signal', b'\x00\x00\x00\x00SIGRTMIN+3')
w('fuzz_failure', 'signal-number', b'\x02\x01\x00\x00015')

# fuzz_conf: flags (bit 0 apply, bit 1 split commands), then the files' text.
sup = b'''[supervisord]
logfile = /tmp/supervisord.log

[program:web]
command = /usr/bin/my-server --port 8080 "quoted arg" 'single' back\\ slash
directory = /
autostart = true
autorestart = unexpected
startsecs = 1
startretries = 3
exitcodes = 0,2
stopsignal = INT
stopwaitsecs = 5
environment = A="1",B="%(program_name)s"
user = nobody
redirect_stderr = true
stdout_logfile = /var/log/web.log
'''
w('fuzz_conf', 'supervisord', b'\x00' + sup)
w('fuzz_conf', 'supervisord-apply', b'\x03' + sup)
w('fuzz_conf', 'ward', b'\x01[ward]\nlog_level = debug\nmetrics_interval_ms = 500\n\n'
  b'[program:db]\ncommand = /bin/sleep 60\nreadiness = notify\nnotify = systemd\n'
  b'restart = on-failure\nbackoff_initial_ms = 100\nrestart_on = CRASH, HANGUP\n\n'
  b'[program:app]\ncommand = app\nrequires = db\nafter = db\nexit_codes = 33:CRASH\n'
  b'rlimit_nofile = 1024\nwatchdog_ms = 1000\ndetect_hangup = true\n')
w('fuzz_conf', 'two-files', b'\x01[program:x]\ncommand = /bin/true\n\x00\x00[program:x]\ncommand = /bin/false\n')
w('fuzz_conf', 'long-line', b'\x02[program:long]\ncommand = /bin/echo ' + b'word ' * 100 + b'\n')
w('fuzz_conf', 'bad', b'\x00[program:1]\n[program:]\nnot a line\n[other]\nk=v\n[program:x\ncommand = "open\n')

# fuzz_history: STATE_DIR/history's bytes: the header, then exit records.
hist_hdr = P({"ward_history": 1})
rec = lambda i, uid, **kw: P(dict({"id": i, "name": "web%d" % i, "owner_uid": uid,
    "started_at_ms": 1700000000000, "uptime_ms": 1500, "metrics": {"cpu_user_ms": 3,
    "cpu_percent": 1.5, "samples": 2, "cgroup_memory_kb": None, "cgroup_cpu_usage_ms": 7},
    "state": "dead", "death_reason": "CRASH", "exit_code": 3, "exit_signal": None,
    "signal_name": None, "core_dumped": False, "failure_reason": None,
    "failure_info": "disk on fire", "failure_discarded": 0, "dump_dir": None,
    "died_at_ms": 1700000001500}, **kw))
w('fuzz_history', 'two', hist_hdr + rec(1, 0) + rec(2, 65534, exit_code=None, exit_signal=9,
  death_reason="KILLED", core_dumped=True))
w('fuzz_history', 'cut', hist_hdr + rec(1, 0) + rec(2, 0)[:-7])
w('fuzz_history', 'garbage-tail', hist_hdr + rec(1, 0) + b'\xdf\xff\xff\xff\xff\xc1junk')
w('fuzz_history', 'mistyped', hist_hdr + rec(1, 0, name=5, exit_code="x", death_reason="lower",
  failure_info=b"\xff\xfe", metrics=[1]) + P({"id": 0}) + P([1, 2]) + rec(3, 2**32 - 1))
w('fuzz_history', 'no-header', rec(1, 0))
w('fuzz_history', 'empty', b'')

# fuzz_state: a flags byte (bit 0: a re-exec's state, by_list; bit 2:
# STATE_DIR/state, snapshot_recover; bit 1: run the loop after), then the state.
RLIM = [[r, 1024, 4096] for r in range(16)]
def spec(name, **kw):
    return dict({"name": name, "argv": ["/bin/sleep", "60"], "exec_path": "/bin/sleep",
        "env": ["LANG=C", "A=1"], "cwd": "/", "detect_hangup": True,
        "hangup_timeout_ms": 3000, "exit_codes": [[33, "CRASH"], [34, "HANGUP"]],
        "profile": "crosvm", "rss_mapping": None, "fds": [{"fd": 7, "target": 3}],
        "passed_fds": True, "notify_systemd": True, "watchdog_ms": 500,
        "has_user": False, "user_uid": 0, "user_gid": 0,
        "output": {"stdout_logfile": None, "stderr_logfile": None, "journal": False,
            "drop": False, "ring_bytes": 65536, "rate_lines": 1000, "backups": 3,
            "maxbytes": 1 << 20, "captured": True},
        "rlimits": [[7, 64, 128]], "rlimit_mask": 1 << 7, "has_group": False,
        "group_gid": 0, "has_umask": True, "umask": 0o22, "has_nice": True, "nice": 5,
        "has_oom_score_adj": False, "oom_score_adj": 0, "clean_env": False,
        "user_limits": {"rlimits": RLIM, "nice": 0, "policy": 0, "ioprio": 0}}, **kw)
stream = lambda fd: {"fd": fd, "ring_fd": None, "ring": b"hello\nwor", "mid_line": True,
    "dropping": False, "window": 1.5, "window_lines": 3, "dropped": 0, "jline": b"wor",
    "carry": b"", "follows": [], "has_file": False}
ofile = lambda fd: {"fd": fd, "dirfd": None, "opens": 1, "as_user": False, "size": 10,
    "failed": False}
# state: 0 not started, 1 running, 2 dead, 3 failed (enum instance_state).
def inst(i, name, state, fb=0, **kw):
    return dict({"id": i, "runs": 1, "spec": spec(name), "state": state, "payload": 2,
        "suspended": False, "status_text": "serving", "stop_requested": False,
        "stop_signal": 15, "stop_timeout_ms": 5000, "owner_uid": 0, "owner_gid": 0,
        "fds_held": 1, "groups": [0, 4], "requester_pid": 1, "run_as_owner": False,
        "created_at_ms": 1700000000000, "started_at_ms": 1700000000100,
        "started_mono": 12.5, "pid": 2**22 + 17, "start_time": 123456, "not_child": False,
        "pidfd": 10 + 10 * i + fb, "failure_fd": 11 + 10 * i + fb, "notify_fd": 12 + 10 * i + fb,
        "spawn_fd": None, "spawn_report": b"", "hangup_t": 2.5, "stop_t": None,
        "watchdog_t": 0.0, "sd_fd": 13 + 10 * i + fb, "sd_dropped": 0, "failure_note": None,
        "killed_by": 0, "failure": b"boom", "failure_discarded": 0,
        "notify_line": b"STATUS=hal", "notify_skipping": False, "notify_dropped": 0,
        "runtime_dir": "/run/ward/instances/%d" % i,
        "metrics": {"cpu_user_ms": 3, "rss_kb": 100, "cpu_percent": 1.5, "last_at": 3.0,
            "samples": 2, "has_cgroup_memory": False, "has_cgroup_cpu": False},
        "exit": None,
        "output": {"reserved": True, "ring_reserved": 65536,
            "streams": [stream(14 + 10 * i + fb), stream(15 + 10 * i + fb)],
            "files": [ofile(None), ofile(None)]},
        "cgroup_made": False, "cgroup_killed": False, "saved_at_ms": 1700000001000,
        "version": 1, "spawn_got": 0}, **kw)
exitrec = {"id": 2, "name": "done", "owner_uid": 0, "started_at_ms": 1700000000000,
    "uptime_ms": 1500, "metrics": {"cpu_user_ms": 3, "samples": 2}, "state": "dead",
    "death_reason": "CRASH", "exit_code": 33, "exit_signal": None, "signal_name": None,
    "core_dumped": False, "failure_reason": None, "failure_info": "disk on fire",
    "failure_discarded": 0, "dump_dir": None, "died_at_ms": 1700000001500}
def prog(name, inst_id, state, **kw):
    conf = {"name": name, "file": "/etc/ward.d/a.conf", "line": 3,
        "spec": P({"name": name, "argv": ["/bin/sleep", "60"]}), "autostart": True,
        "restart": 1, "restart_on": ["CRASH"], "backoff_initial_ms": 100,
        "backoff_max_ms": 1000, "backoff_reset_ms": 0, "max_restarts": 2,
        "restart_window_ms": 60000, "startsecs_ms": 0, "readiness_notify": False,
        "after": ["db"], "requires": None, "success_codes": [0, 0, 0, 0, 0, 0, 0, 0],
        "stop_signal": 15, "stop_timeout_ms": 1000, "version": 1, "declared": True,
        "speclen": 0}
    return dict({"conf": conf, "next_conf": None, "state": state, "inst": inst_id,
        "name_holder": 0, "attempt": 1, "restarts": [1.0, 2.0, 0.0], "restarts_head": 1,
        "restart_count": 1, "fatal_reason": None, "removing": False,
        "backoff_t": 0.0, "startsecs_t": None, "apply_t": None}, **kw)
crash_state = {"ward_state": 1, "pid": 1234, "boot_id": "0" * 32,
    "stats": {"created": 3, "started": 3, "died": 1, "spawn_failed": 0, "removed": 0},
    "instances": [inst(1, "web", 1), inst(2, "done", 2, exit=exitrec, pid=0),
        inst(3, "db", 1, not_child=True)],
    "programs": [prog("web", 1, 3), prog("done", 2, 5), prog("gone", 99, 1)]}
# A re-exec's fds are numbers no harness has open (900 on): see fuzz_state.c.
reexec_state = dict(crash_state, reexecs=2, t0_ns=10**9,
    instances=[inst(1, "web", 1, fb=900), inst(2, "done", 2, fb=900, exit=exitrec),
        inst(3, "db", 1, fb=900, not_child=True)],
    server={"fd": 903, "path": "/run/ward.sock", "unlink_at_exit": False,
        "conns": [{"fd": 905, "uid": 0, "gid": 0, "pid": 1, "groups": [0], "in_base": 0,
            "in": b"\x94\x00\x01", "out": b"", "fds": [[0, [906]]], "fds_lost": False,
            "fds_over": False, "closing": False}]},
    events=[{"fd": 905, "types": 7, "ids": [1, 3]}, {"fd": 905, "types": 1, "ids": None}],
    fdstore={"state_a": 908, "state_b": 909, "seq": 4, "gen": 7,
        "stored": [[910, 1, 2, 3, 4], [911, 2, 2, 4, 5]]},
    fds=[903, 905, 906, 908, 909, 910, 911, 912, 913, 914, 915, 907, 907, 912])
w('fuzz_state', 'crash', b'\x00' + P(crash_state))
w('fuzz_state', 'crash-loop', b'\x02' + P(crash_state))
w('fuzz_state', 'reexec', b'\x01' + P(reexec_state))
w('fuzz_state', 'snapshot', b'\x04' + P(crash_state))
w('fuzz_state', 'snapshot-loop', b'\x06' + P(crash_state))
w('fuzz_state', 'newer-version', b'\x00' + P(dict(crash_state, ward_state=99)))
# This wardd's: fd 3 placed by its address (chan_addr, an autobound name),
# no per-instance failure pipe or NOTIFY_SOCKET, the shared sockets in
# "channel" (the crash's name fds nothing hands over).
chan = lambda i, name, state, fb=0, **kw: inst(i, name, state, fb, failure_fd=None,
    sd_fd=None, chan_addr=b"\x00" + b"%05x" % (0xa1b0 + i), **kw)
w('fuzz_state', 'crash-channel', b'\x02' + P(dict(crash_state,
    instances=[chan(1, "web", 1), chan(3, "db", 1, not_child=True)],
    channel={"failure_fd": 16, "notify_fd": 17})))
w('fuzz_state', 'reexec-channel', b'\x01' + P(dict(reexec_state,
    instances=[chan(1, "web", 1, fb=900), chan(2, "done", 2, fb=900, exit=exitrec),
        chan(3, "db", 1, fb=900, not_child=True)],
    channel={"failure_fd": 916, "notify_fd": 917},
    fds=reexec_state["fds"] + [916, 917])))
w('fuzz_state', 'mistyped', b'\x02' + P({"ward_state": 1, "stats": [1],
    "instances": [{"id": "x"}, inst(4, "m", "running", spec={"name": 1}),
        inst(5, "m", 9, groups=["a"], exit=[1], output=[], metrics=None, hangup_t=-1.0),
        inst(5, "dup", 2)],
    "programs": [{"conf": None}, prog("p", 5, 99, restarts="x"), prog("p", 0, 0)]}))

# Regression seeds: inputs that once found a bug (named for it).
w('fuzz_failure', 'regress-sig32', b'\x00\x00\x00\x00SIG32')
w('fuzz_dispatch', 'regress-notify-runtime-dir', b'\x00' + req(1, "instance.run",
  {"name": "n", "argv": ["/bin/true"], "notify": "systemd"}))
# regress-clean-name-grows (fuzz_history), kept as found: a name of bad
# bytes within 64 grew past it once made UTF-8, and no longer read back.
# regress-trash-in-progress (fuzz_dispatch) is kept as the fuzzer found it:
# creates, rereads and a shutdown that leave trash.c removing a tree, whose
# open directory once counted as a leaked fd.
# fuzz_state: a relative log file path in a spec read back (output-file.c
# took the name after a '/' that was not there); a re-exec's listed fd that
# is not open (a listener's fcntl on it was fatal); a count no byte backs
# (msgpack-c allocated it: 2^32 objects); two programs naming one instance
# (the first kept it after its removal); a re-exec's fd store entry for an
# fd number no process has (its table was sized by it: 80 GB); a start
# time after now (a death's uptime out of range); an adopted instance
# whose pidfd did not come back from the fd store (its pid, never checked,
# was what its watchdog killed); a running instance with an exit record
# (its death's record replaced it, never freed).
small = lambda i, name, **kw: dict({"id": i, "spec": {"name": name, "argv": ["/bin/true"],
    "exec_path": "/bin/true"}, "state": 3}, **kw)
w('fuzz_state', 'regress-logfile-relative', b'\x00' + P({"ward_state": 1, "instances": [
  small(1, "r", spec={"name": "r", "argv": ["/bin/true"], "exec_path": "/bin/true",
  "output": {"stdout_logfile": "out.log"}}, output={"streams": []})]}))
w('fuzz_state', 'regress-snapshot-count-unbacked', b'\x04\x82' + P("ward_state") + P(1) +
  P("instances") + b'\xdd\xff\xff\xff\xff')
w('fuzz_state', 'regress-started-mono', b'\x00' + P({"ward_state": 1, "instances": [
  small(1, "u", state=1, pid=0, started_mono=1e81)]}))
w('fuzz_state', 'regress-adopted-unchecked', b'\x02' + P({"ward_state": 1, "instances": [
  small(1, "w", state=1, pid=2**22 + 17, start_time=1, not_child=True, watchdog_t=0.0,
  spec={"name": "w", "argv": ["/bin/true"], "exec_path": "/bin/true", "watchdog_ms": 500})]}))
w('fuzz_state', 'regress-running-exit', b'\x00' + P({"ward_state": 1, "instances": [
  small(1, "x", state=1, exit=exitrec)]}))
w('fuzz_state', 'regress-listed-fd-closed', b'\x01' + P({"ward_state": 1,
  "server": {"fd": 950, "conns": []}, "fds": [950, 950]}))
w('fuzz_state', 'regress-count-unbacked', b'\x00\x82' + P("ward_state") + P(1) +
  P("instances") + b'\xdd\xff\xff\xff\xff')
w('fuzz_state', 'regress-program-shared-instance', b'\x00' + P({"ward_state": 1,
  "instances": [small(1, "a")], "programs": [prog("a", 1, 0), prog("b", 1, 0)]}))
w('fuzz_state', 'regress-fdstore-index', b'\x01' + P({"ward_state": 1,
  "fdstore": {"stored": [[2**31 - 2, 1, 2, 3, 4]]}}))
w('fuzz_conf', 'regress-notify-runtime-dir', b'\x01[program:n]\ncommand = /bin/true\nnotify = systemd\n')

# fuzz_http: a flags byte (bit 0: the client shuts its write side), then
# chunks, each a length byte and that many bytes (0: 1024 bytes of 'a').
def chunks(*parts): return b''.join(bytes([len(p)]) + p for p in parts)
prom = (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9101\r\nUser-Agent: Prometheus/2.45.0\r\n"
    b"Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    b"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n")
w('fuzz_http', 'prometheus', b'\x00' + chunks(prom[:200], prom[200:]))
w('fuzz_http', 'curl-split', b'\x00' + chunks(b"GET /met", b"rics?x=1 HTTP/1.0\r", b"\nAccept: */*\r\n\r", b"\n"))
w('fuzz_http', 'head-lf', b'\x01' + chunks(b"HEAD /metrics HTTP/1.1\naccept: application/openmetrics-text; q=0\n\n"))
w('fuzz_http', 'post', b'\x00' + chunks(b"POST /metrics HTTP/1.1\r\n\r\n"))
w('fuzz_http', 'too-large', b'\x00' + chunks(b"GET /metrics HTTP/1.1\r\nX: ") + b'\x00' * 9)
w('fuzz_http', 'nul-split', b'\x01' + chunks(b"GET /metrics HTTP/1.1\r\n", b"X\x00: y\r\n\r\n"))

# fuzz_limits: a flags byte (bit 0 admin, bit 1 one raw value for key
# bits 2-4 (SPEC_LIMIT_* order), bit 5 as bin, bit 6 no cgroup), then that
# value or a msgpack map of the limit keys.
w('fuzz_limits', 'all-keys', b'\x01' + P({"memory_max": "512M", "memory_high": 400000000,
  "cpu_max": "50000 100000", "cpu_weight": 200, "pids_max": "max", "io_weight": "50",
  "cpus": "0"}))
w('fuzz_limits', 'nonadmin-percent', b'\x00' + P({"cpu_max": "150%", "cpu_weight": 100,
  "memory_max": "max", "pids_max": 64}))
w('fuzz_limits', 'no-cgroup-cpus', b'\x40' + P({"cpus": "0-1,3\n", "memory_high": None}))
w('fuzz_limits', 'state', b'\x00' + P({"memory_max": 1048576, "memory_high": None,
  "cpu_max": "max 250000", "cpu_weight": None, "pids_max": 4194304, "io_weight": 10000,
  "cpus": "0", "later_key": 1}))
w('fuzz_limits', 'raw-cpus', bytes([0x02 | 6 << 2]) + b"0-1,0,1-1")
w('fuzz_limits', 'raw-size', bytes([0x03 | 0 << 2]) + b"18014398509481983G")
w('fuzz_limits', 'raw-cpu-max', bytes([0x02 | 2 << 2]) + b"1000 1000")
# fuzz_limits: a value with a NUL byte was read up to the NUL ("512M\0junk"
# taken as 512M), by instance.create and from a state.
w('fuzz_limits', 'regress-nul-byte', bytes([0x03 | 0 << 2]) + b"512M\0junk")
w('fuzz_http', 'busy', b'\x02' + chunks(prom))
