#!/usr/bin/python3
"""Declared programs: the config directory, supervisord's keys, restart
policies with backoff and an intensity limit, start order by readiness,
reread and update."""
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import textwrap

import wardtest
from wardtest import Ward, WardError, payload, read_report, retry, \
    wait_dead, wait_file

P = wardtest.PAYLOAD


def ward_with(files, args=()):
    """A wardd whose config dir holds files {name: text}."""
    w = Ward(args=list(args))
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    for name, text in files.items():
        with open(os.path.join(conf, name), "w") as f:
            f.write(textwrap.dedent(text))
    w.conf = conf
    w.extra += ["--config-dir", conf]
    return w.start()


def write(w, name, text):
    with open(os.path.join(w.conf, name), "w") as f:
        f.write(textwrap.dedent(text))


def status(c, name):
    return c.call("instance.status", {"name": name})


def ctl(w, *a):
    """wardctl on w's socket."""
    return subprocess.run([wardtest.WARDCTL, "--socket", w.sock] +
                          [str(x) for x in a], capture_output=True,
                          text=True, timeout=wardtest.TIMEOUT)


def prog_state(c, name, want):
    return retry(lambda: (lambda s: s if s["program"]["state"] == want
                          else None)(status(c, name)),
                 what="%s to be %s" % (name, want))


def test_load_autostart_and_shell_words():
    w = ward_with({"10-a.conf": """
        [program:quoted]
        command = %s report %s/rep echo "two words" echo 'single $HOME' echo esc\\ aped
        startsecs = 0
        [program:lazy]
        command = sleep 1000
        autostart = false
        """ % (P, "%(here)s")})
    try:
        c = w.client()
        st = wait_dead(c, "quoted")
        assert st["argv"] == [P, "report", w.conf + "/rep", "echo",
                              "two words", "echo", "single $HOME", "echo",
                              "esc aped"], st["argv"]
        assert st["program"]["file"].endswith("10-a.conf"), st["program"]
        assert st["program"]["line"] == 2, st["program"]
        # exit 0 under on-failure (the default): stays down.
        assert prog_state(c, "quoted", "exited")
        lazy = status(c, "lazy")
        assert lazy["state"] == "not_started", lazy
        assert lazy["program"]["state"] == "stopped", lazy
        c.call("instance.start", {"name": "lazy"})
        assert status(c, "lazy")["state"] == "running"
        err = c.error("instance.remove", {"name": "quoted"})
        assert err["code"] == "invalid_state" and "10-a.conf:2" in \
            err["message"], err
    finally:
        w.stop()


def test_errors_name_file_line_key_and_spare_the_good():
    w = ward_with({
        "10-good.conf": """
            [program:good]
            command = sleep 1000
            """,
        "20-bad.conf": """
            [program:broken]
            command = "unterminated
            [program:typo]
            comand = sleep 1
            [program:badval]
            command = sleep 1
            startsecs = soon
            """})
    try:
        c = w.client()
        assert status(c, "good")["state"] == "running"
        for name in ("broken", "typo", "badval"):
            assert c.error("instance.status", {"name": name})["code"] == \
                "not_found", name
        errs = c.call("ward.reread")["errors"]
        text = "\n".join(errs)
        assert "20-bad.conf:3: [program:broken] command: unterminated" in text, errs
        assert "20-bad.conf:4: [program:typo]: no command=" in text, errs
        warns = "\n".join(c.call("ward.reread")["warnings"])
        assert "20-bad.conf:5: [program:typo] comand: unknown key; ignored" \
            in warns, warns
        assert "20-bad.conf:8: [program:badval] startsecs: bad value 'soon'" \
            in text, errs
    finally:
        w.stop()


def test_supervisord_conf_as_is():
    w = ward_with({"supervisord.conf": """
        [supervisord]
        logfile = /var/log/supervisord.log

        [unix_http_server]
        file = /tmp/supervisor.sock

        [program:svc]
        command = %s report %%(here)s/svc.rep hang
        directory = /tmp
        environment = A="1",B="two, three",C=plain
        autostart = true
        autorestart = unexpected
        startsecs = 0
        startretries = 7
        stopsignal = INT
        stopwaitsecs = 2
        priority = 999
        numprocs = 1
        """ % P})
    try:
        c = w.client()
        rep = os.path.join(w.conf, "svc.rep")
        wardtest.wait_file(rep)
        r = wardtest.read_report(rep)
        assert r["cwd"] == "/tmp", r
        st = status(c, "svc")
        assert st["state"] == "running", st
        log = w.read_log()
        # priority and numprocs are understood; the sections ward has no
        # use for are warnings (ward.conf(5)).
        assert "priority:" not in log and "numprocs:" not in log, log
        assert "[supervisord] logfile: supervisord's own" in log, log
        assert "[unix_http_server]: supervisord's control socket" in log, log
        # stopsignal = INT: a stop ends it with SIGINT.
        c.call("instance.stop", {"name": "svc"})
        st = wait_dead(c, "svc")
        assert st["exit_signal"] == signal.SIGINT, st
    finally:
        w.stop()


def crashloop(extra=""):
    return """
        [program:crashy]
        command = /bin/sh -c "exit 3"
        backoff_initial_ms = 20
        backoff_max_ms = 80
        max_restarts = 5
        restart_window_ms = 60000
        startsecs = 0
        autostart = false
        %s
        """ % extra


def test_backoff_doubles_then_fatal_then_start_clears():
    w = ward_with({"10.conf": crashloop()})
    try:
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["restarting", "fatal"]})
        c.call("instance.start", {"name": "crashy"})
        delays = []
        while True:
            ev = sub.event(lambda e: e["name"] == "crashy")
            if ev["type"] == "fatal":
                break
            delays.append((ev["attempt"], ev["delay_ms"]))
        attempts = [a for a, _ in delays]
        assert attempts == [1, 2, 3, 4, 5], delays
        # The delay doubles from 20 ms and stops at 80 ms.
        assert [d for _, d in delays][:1][0] <= 20, delays
        assert all(d <= 80 for _, d in delays), delays
        assert delays[2][1] > delays[0][1], delays
        assert "5 restarts within 60000 ms" in ev["reason"], ev
        st = status(c, "crashy")
        assert st["program"]["state"] == "fatal", st
        assert st["program"]["restarts"] == 5, st
        # Every run's exit record stays in history.
        assert len(c.call("instance.history", {"name": "crashy"})) == 6
        # wardctl start clears fatal: it runs (and crash-loops) again.
        c.call("instance.start", {"name": "crashy"})
        ev = sub.event(lambda e: e["name"] == "crashy")
        assert ev["type"] == "restarting" and ev["attempt"] == 1, ev
    finally:
        w.stop()


def test_stop_calls_off_a_pending_restart():
    """supervisorctl stop in BACKOFF: the restart is called off, the program
    is stopped, and start runs it again."""
    w = ward_with({"10.conf": """
        [program:slowback]
        command = /bin/sh -c "exit 3"
        backoff_initial_ms = 600000
        backoff_max_ms = 600000
        startsecs = 0
        autostart = false
        """})
    try:
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["restarting", "started"]})
        c.call("instance.start", {"name": "slowback"})
        ev = sub.event(lambda e: e["type"] == "restarting")
        assert ev["attempt"] == 1 and ev["delay_ms"] > 500000, ev
        assert status(c, "slowback")["program"]["state"] == "backoff"
        r = ctl(w, "stop", "slowback")
        assert r.returncode == 0, r.stderr
        assert "backoff start called off" in r.stdout, r.stdout
        assert status(c, "slowback")["program"]["state"] == "stopped"
        # Nothing pending any more: a second stop is refused.
        e = c.error("instance.stop", {"name": "slowback"})
        assert e["code"] == "invalid_state", e
        r = ctl(w, "start", "slowback")
        assert r.returncode == 0, r.stderr
        ev = sub.event(lambda e: e["type"] == "started")
        ev = sub.event(lambda e: e["type"] == "restarting")
        assert ev["attempt"] == 1, ev
    finally:
        w.stop()


def test_restart_modes():
    w = ward_with({"10.conf": """
        [program:never]
        command = /bin/sh -c "exit 3"
        restart = no
        startsecs = 0
        [program:always]
        command = %s exit 0
        restart = always
        backoff_initial_ms = 10
        startsecs = 0
        max_restarts = 100
        [program:only-crash]
        command = %s fail "CRASH|x" exit 1
        restart_on = CRASH
        backoff_initial_ms = 10
        startsecs = 0
        max_restarts = 2
        [program:not-crash]
        command = %s exit 1
        restart_on = CRASH
        startsecs = 0
        [program:expected]
        command = /bin/sh -c "exit 5"
        exitcodes = 0,5
        startsecs = 0
        """ % (P, P, P)})
    try:
        c = w.client()
        assert prog_state(c, "never", "exited")
        assert prog_state(c, "not-crash", "exited")
        assert prog_state(c, "expected", "exited")
        assert status(c, "expected")["exit_code"] == 5
        # restart = always restarts even clean exits.
        retry(lambda: status(c, "always")["program"]["restarts"] >= 3,
              what="always to restart")
        # restart_on = CRASH restarts crashes (till fatal).
        assert prog_state(c, "only-crash", "fatal")
        assert len(c.call("instance.history", {"name": "only-crash"})) == 3
        assert len(c.call("instance.history", {"name": "never"})) == 1
    finally:
        w.stop()


def test_startsecs_counts_early_exit_as_failure():
    w = ward_with({"10.conf": """
        [program:quick]
        command = %s exit 0
        startsecs = 30
        backoff_initial_ms = 10
        max_restarts = 2
        [program:ready-first]
        command = %s notify READY=1 exit 0
        readiness = notify
        startsecs = 30
        """ % (P, P)})
    try:
        c = w.client()
        # exit 0 before startsecs, never ready: failed to start, restarted.
        assert prog_state(c, "quick", "fatal")
        # ready first: a clean exit is just an exit.
        assert prog_state(c, "ready-first", "exited")
        assert status(c, "ready-first")["program"]["restarts"] == 0
    finally:
        w.stop()


def test_backoff_resets_after_ready():
    flagdir = "%(here)s"
    w = ward_with({"10.conf": """
        [program:flappy]
        command = %s notify READY=1 exit 1
        readiness = notify
        backoff_initial_ms = 10
        backoff_max_ms = 1000
        max_restarts = 100
        """ % P})
    try:
        sub = w.client()
        sub.call("events.subscribe", {"types": ["restarting"]})
        for _ in range(4):
            ev = sub.event(lambda e: e["name"] == "flappy")
            # It reached ready every run: the backoff never grows.
            assert ev["attempt"] == 1 and ev["delay_ms"] <= 10, ev
    finally:
        w.stop()
    del flagdir


def test_start_order_and_requires():
    w = Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    flag = os.path.join(w.dir, "db-up")
    with open(os.path.join(conf, "10.conf"), "w") as f:
        f.write(textwrap.dedent("""
            [program:db]
            command = %s wait-file %s notify READY=1 hang
            readiness = notify
            [program:web]
            command = %s hang
            requires = db
            startsecs = 0.05
            [program:worker]
            command = %s hang
            after = web
            """ % (P, flag, P, P)))
    w.extra += ["--config-dir", conf]
    w.start()
    try:
        c = w.client()
        assert status(c, "db")["state"] == "running"
        for name in ("web", "worker"):
            st = status(c, name)
            assert st["state"] == "not_started", st
            assert st["program"]["state"] == "waiting", st
        open(flag, "w").close()
        assert prog_state(c, "web", "running")
        retry(lambda: status(c, "worker")["state"] == "running",
              what="worker after web")
        assert status(c, "db")["started_at_ms"] <= \
            status(c, "web")["started_at_ms"] <= \
            status(c, "worker")["started_at_ms"]
    finally:
        w.stop()


def test_required_fatal_stops_dependents():
    w = ward_with({"10.conf": """
        [program:base]
        command = %s notify READY=1 wait-file %%(here)s/die exit 9
        readiness = notify
        restart = always
        backoff_initial_ms = 10
        max_restarts = 0
        [program:app]
        command = %s hang
        requires = base
        startsecs = 0.05
        """ % (P, P)})
    try:
        c = w.client()
        assert prog_state(c, "app", "running")
        retry(lambda: status(c, "app")["program"]["ready"], what="app ready")
        open(os.path.join(w.conf, "die"), "w").close()
        assert prog_state(c, "base", "fatal")
        st = wait_dead(c, "app")
        assert st["death_reason"] == "DEPENDENCY", st
        assert st["failure_info"] == "required program 'base' is fatal", st
        assert st["program"]["state"] == "fatal", st
    finally:
        w.stop()


def test_cycles_refused():
    w = ward_with({"10.conf": """
        [program:a]
        command = sleep 1000
        after = b
        [program:b]
        command = sleep 1000
        requires = c
        [program:c]
        command = sleep 1000
        after = a
        [program:free]
        command = sleep 1000
        """})
    try:
        c = w.client()
        assert status(c, "free")["state"] == "running"
        for n in "abc":
            assert c.error("instance.status", {"name": n})["code"] == "not_found"
        errs = "\n".join(c.call("ward.reread")["errors"])
        assert "dependency cycle a -> b -> c -> a" in errs, errs
    finally:
        w.stop()


def test_reread_update_and_sighup():
    w = ward_with({"10.conf": """
        [program:keep]
        command = sleep 1000
        [program:change]
        command = sleep 1000
        [program:drop]
        command = sleep 1000
        """})
    try:
        c = w.client()
        keep = status(c, "keep")
        change = status(c, "change")
        drop = status(c, "drop")
        write(w, "10.conf", """
            [program:keep]
            command = sleep 1000
            [program:change]
            command = sleep 2000
            [program:new]
            command = sleep 1000
            """)
        r = c.call("ward.reread")
        assert r == {"added": ["new"], "changed": ["change"],
                     "removed": ["drop"], "errors": [], "warnings": []}, r
        # reread changed nothing.
        assert status(c, "drop")["pid"] == drop["pid"]
        r = c.call("ward.update")
        assert r["added"] == ["new"], r
        retry(lambda: status(c, "new")["state"] == "running", what="new")
        retry(lambda: c.call("instance.list") and
              all(x["name"] != "drop" for x in c.call("instance.list")),
              what="drop to go")
        st = retry(lambda: (lambda s: s if s["state"] == "running" and
                            s["argv"] == ["sleep", "2000"] else None)(
            status(c, "change")), what="change to restart")
        assert st["id"] != change["id"], st
        # Untouched: same instance, same pid.
        k = status(c, "keep")
        assert k["pid"] == keep["pid"] and k["id"] == keep["id"], k
        # SIGHUP applies too.
        write(w, "20.conf", """
            [program:hupped]
            command = sleep 1000
            """)
        w.proc.send_signal(signal.SIGHUP)
        retry(lambda: (lambda l: any(x["name"] == "hupped" and
                                     x["state"] == "running" for x in l))(
            c.call("instance.list")), what="hupped")
        r = c.call("ward.reread")
        assert r == {"added": [], "changed": [], "removed": [],
                     "errors": [], "warnings": []}, r
        # ward.reload applies as ward.update does.
        write(w, "20.conf", """
            [program:reloaded]
            command = sleep 1000
            """)
        r = c.call("ward.reload")
        assert r["added"] == ["reloaded"] and r["removed"] == ["hupped"], r
        retry(lambda: status(c, "reloaded")["state"] == "running",
              what="reloaded")
        retry(lambda: all(x["name"] != "hupped" for x in
                          c.call("instance.list")), what="hupped to go")
    finally:
        w.stop()


def test_wardctl_reread_update():
    w = ward_with({"10.conf": """
        [program:one]
        command = sleep 1000
        """})
    try:
        write(w, "20.conf", """
            [program:two]
            command = sleep 1000
            """)
        p = ctl(w, "reread")
        assert p.returncode == 0 and "two: would be added" in p.stdout, p
        p = ctl(w, "update")
        assert p.returncode == 0 and "two: added" in p.stdout, p
        p = ctl(w, "update")
        assert p.stdout.strip() == "no changes", p
        # Only admins.
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", wardtest.WARDCTL, "--socket",
                            w.sock, "update"], capture_output=True, text=True,
                           timeout=20)
        assert p.returncode == 1 and "root or wardd's own user" in p.stderr, p
    finally:
        w.stop()


def test_stop_is_not_restarted():
    w = ward_with({"10.conf": """
        [program:svc]
        command = sleep 1000
        restart = always
        backoff_initial_ms = 10
        """})
    try:
        c = w.client()
        c.call("instance.stop", {"name": "svc"})
        wait_dead(c, "svc")
        assert prog_state(c, "svc", "stopped")
        # A kill is a death like any other: restarted.
        c.call("instance.start", {"name": "svc"})
        first = status(c, "svc")["pid"]
        c.call("instance.kill", {"name": "svc"})
        retry(lambda: (lambda s: s["state"] == "running" and
                       s["pid"] != first)(status(c, "svc")),
              what="restart after kill")
    finally:
        w.stop()


# ---- supervisord users migrating: output, ignored keys ----------------------

def test_output_captured_by_default():
    w = ward_with({"10.conf": """
        [program:talker]
        command = %s echo hello-from-talker hang
        [program:mute]
        command = %s echo mute-line hang
        capture_output = false
        """ % (P, P)})
    try:
        c = w.client()
        # No output key at all: captured, so wardctl tail works.
        assert status(c, "talker")["capture_output"] is True
        p = retry(lambda: (lambda p: p if "hello-from-talker" in p.stdout
                           else None)(ctl(w, "tail", "talker")),
                  what="wardctl tail talker")
        assert p.returncode == 0, p
        # capture_output = false: the line goes to wardd's own stdout.
        assert status(c, "mute")["capture_output"] is False
        retry(lambda: "mute-line" in w.read_log(), what="mute in wardd's log")
        assert c.error("instance.log", {"name": "mute"})["code"] == \
            "invalid_state"
        assert ctl(w, "tail", "mute").returncode != 0
    finally:
        w.stop()


def test_logfile_auto_and_none():
    sh = "/bin/sh -c \"echo %s-out; echo %s-err >&2; exec " + P + " hang\""
    w = ward_with({"10.conf": """
        [program:auto]
        command = %s
        stdout_logfile = AUTO
        stderr_logfile = auto
        [program:none]
        command = %s
        stdout_logfile = NONE
        stderr_logfile = NONE
        [program:auto-redirect]
        command = %s
        stdout_logfile = AUTO
        redirect_stderr = true
        """ % (sh % ("auto", "auto"), sh % ("none", "none"),
               sh % ("redir", "redir"))})
    try:
        c = w.client()
        logs = os.path.join(w.state, "logs")

        def content(name):
            path = os.path.join(logs, name)
            return open(path).read() if os.path.exists(path) else ""
        # AUTO: a file per stream in wardd's state dir.
        retry(lambda: content("auto-stdout.log") == "auto-out\n",
              what="auto's stdout file")
        retry(lambda: content("auto-stderr.log") == "auto-err\n",
              what="auto's stderr file")
        # redirect_stderr: both streams in stdout's file.
        retry(lambda: sorted(content("auto-redirect-stdout.log").split()) ==
              ["redir-err", "redir-out"], what="the redirected file")
        assert not os.path.exists(os.path.join(logs,
                                               "auto-redirect-stderr.log"))
        # NONE: no file, but captured into the ring.
        retry(lambda: c.call("instance.log", {"name": "none"})["data"] ==
              "none-out\n", what="none's ring")
        retry(lambda: c.call("instance.log", {"name": "none",
                                              "stream": "stderr"})["data"] ==
              "none-err\n", what="none's stderr ring")
        assert not any(f.startswith("none") for f in os.listdir(logs)), \
            os.listdir(logs)
        assert c.call("ward.reread")["errors"] == []
    finally:
        w.stop()


def test_ignored_and_unknown_keys_are_warnings_bad_values_errors():
    # supervisord ignores keys it does not know; so does ward, with a word.
    w = ward_with({"10.conf": """
        [program:svc]
        command = sleep 1000
        numprocs = 1
        stderr_logfile_maxbytes = 1MB
        [program:typo]
        command = sleep 1000
        stderr_logfle = /tmp/x.log
        [program:bad]
        command = sleep 1000
        startsecs = soon
        """})
    try:
        c = w.client()
        conf = os.path.join(w.conf, "10.conf")
        assert status(c, "svc")["state"] == "running"
        assert status(c, "typo")["state"] == "running"
        assert c.error("instance.status", {"name": "bad"})["code"] == \
            "not_found"
        warnings = ["%s:5: [program:svc] stderr_logfile_maxbytes: "
                    "supervisord's key has no ward equivalent; ignored" % conf,
                    "%s:8: [program:typo] stderr_logfle: unknown key; "
                    "ignored" % conf]
        error = "%s:11: [program:bad] startsecs: bad value 'soon'" % conf
        for method in ("ward.reread", "ward.update"):
            r = c.call(method)
            assert r["warnings"] == warnings, (method, r)
            assert r["errors"] == [error], (method, r)
        p = ctl(w, "reread")
        assert p.returncode == 0 and "wardctl: " + error in p.stderr, p
        # Warnings go to stderr and, alone, still mean no changes.
        write(w, "10.conf", open(conf).read().split("[program:bad]")[0])
        p = ctl(w, "update")
        assert p.returncode == 0 and p.stdout == "no changes\n", p
        assert p.stderr == "".join("wardctl: warning: %s\n" % m
                                   for m in warnings), p
    finally:
        w.stop()


# ---- restart policies, reload, removal -------------------------------------

def kill_and_restart(c, sub, name):
    """instance.kill name; the restarting event, once it runs again."""
    pid = status(c, name)["pid"]
    c.call("instance.kill", {"name": name})
    ev = sub.event(lambda e: e["name"] == name and e["type"] == "restarting")
    retry(lambda: (lambda s: s["state"] == "running" and s["pid"] != pid)(
        status(c, name)), what="%s to run again" % name)
    return ev


def test_backoff_resets_after_stable_uptime():
    prog = """
        [program:%s]
        command = %s hang
        restart = always
        backoff_initial_ms = 10
        backoff_max_ms = 10000
        backoff_reset_ms = %d
        startsecs_ms = 400
        max_restarts = 100
        """
    # Both count as ready at 400 ms; only settles resets its backoff then.
    w = ward_with({"10.conf": prog % ("settles", P, 300) +
                   prog % ("keeps", P, 86400000)})
    try:
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["restarting"]})
        for name in ("settles", "keeps"):
            # Quick deaths: the backoff grows.
            for attempt in (1, 2, 3):
                ev = kill_and_restart(c, sub, name)
                assert ev["attempt"] == attempt, ev
        for name in ("settles", "keeps"):
            retry(lambda: status(c, name)["program"]["ready"],
                  what="%s up past startsecs" % name)
        ev = kill_and_restart(c, sub, "settles")
        assert ev["attempt"] == 1 and ev["delay_ms"] <= 10, ev
        ev = kill_and_restart(c, sub, "keeps")
        assert ev["attempt"] == 4 and ev["delay_ms"] > 40, ev
    finally:
        w.stop()


def test_restart_window_slides():
    prog = """
        [program:%s]
        command = /bin/sh -c "exit 3"
        backoff_initial_ms = 60
        backoff_max_ms = 60
        max_restarts = 1
        restart_window_ms = %d
        startsecs = 0
        autostart = false
        """
    # Deaths come >= 60 ms apart: never 2 within 30 ms, always within 60 s.
    w = ward_with({"10.conf": prog % ("spaced", 30) + prog % ("tight", 60000)})
    try:
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["restarting", "fatal"]})
        for name in ("spaced", "tight"):
            c.call("instance.start", {"name": name})
        seen = {"spaced": 0, "tight": 0}
        fatal = set()
        while seen["spaced"] < 6:
            ev = sub.event()
            if ev["type"] == "fatal":
                fatal.add(ev["name"])
            else:
                seen[ev["name"]] += 1
        assert "spaced" not in fatal, fatal
        assert prog_state(c, "tight", "fatal")
        assert seen["tight"] == 1, seen
        assert status(c, "spaced")["program"]["state"] != "fatal"
    finally:
        w.stop()


def test_restart_on_hangup_and_killed():
    w = ward_with({"10.conf": """
        [program:on-hangup]
        command = %s hang
        detect_hangup = true
        hangup_timeout_ms = 30
        restart_on = HANGUP
        backoff_initial_ms = 10
        startsecs = 0
        max_restarts = 2
        [program:on-killed]
        command = %s wait-file %%(here)s/crash fail "CRASH|x" exit 1
        restart_on = KILLED
        backoff_initial_ms = 10
        startsecs = 0
        """ % (P, P)})
    try:
        c = w.client()
        # Every HANGUP is restarted, till the intensity limit.
        assert prog_state(c, "on-hangup", "fatal")
        hist = c.call("instance.history", {"name": "on-hangup"})
        assert [h["death_reason"] for h in hist] == ["HANGUP"] * 3, hist
        # KILLED is restarted; a CRASH is not.
        sub = w.client()
        sub.call("events.subscribe", {"types": ["restarting"]})
        kill_and_restart(c, sub, "on-killed")
        assert status(c, "on-killed")["program"]["restarts"] == 1
        open(os.path.join(w.conf, "crash"), "w").close()
        assert prog_state(c, "on-killed", "exited")
        st = status(c, "on-killed")
        assert st["death_reason"] == "CRASH", st
        assert st["program"]["restarts"] == 1, st
    finally:
        w.stop()


def test_removed_program_dies():
    w = ward_with({"10.conf": """
        [program:doomed]
        command = %s ignore-term hang
        stopsignal = INT
        stopwaitsecs = 60
        [program:stays]
        command = sleep 1000
        """ % P})
    try:
        c = w.client()
        pid = status(c, "doomed")["pid"]
        write(w, "10.conf", """
            [program:stays]
            command = sleep 1000
            """)
        assert c.call("ward.update")["removed"] == ["doomed"]

        retry(lambda: wardtest.gone(pid), what="the removed program's pid to die")
        retry(lambda: all(x["name"] != "doomed" for x in
                          c.call("instance.list")), what="doomed to go")
    finally:
        w.stop()


# ---- an existing supervisord.conf, end to end -------------------------------

def test_supervisord_migration_end_to_end():
    d = tempfile.mkdtemp(prefix="ward-migrate-")
    os.makedirs(os.path.join(d, "work"))
    os.makedirs(os.path.join(d, "logs"))
    # First run: crashes (SIGSEGV) once told to; the runs after: stay up.
    run = ("echo to-stderr >&2; if [ -e crashed ]; then exec %s report "
           "run2.rep echo app-line hang; fi; touch crashed; exec %s report "
           "run1.rep echo app-line wait-file go signal 11" % (P, P))
    w = ward_with({"supervisord.conf": """
        [unix_http_server]
        file = /var/run/supervisor.sock

        [supervisord]
        logfile = /var/log/supervisor/supervisord.log
        childlogdir = /var/log/supervisor

        [supervisorctl]
        serverurl = unix:///var/run/supervisor.sock

        [program:app]
        command = /bin/sh -c '%s'
        directory = %s/work
        environment = TEST_A="1",TEST_B="2"
        autostart = true
        autorestart = unexpected
        startsecs = 1
        startretries = 3
        stopsignal = INT
        stopwaitsecs = 5
        stdout_logfile = %s/logs/%%(program_name)s.log
        stdout_logfile_maxbytes = 1MB
        stdout_logfile_backups = 3
        redirect_stderr = true
        priority = 10
        ; ward's own key, to keep the test fast (the default is 1 s)
        backoff_initial_ms = 20
        """ % (run, d, d)})
    try:
        c = w.client()
        sub = w.client()
        sub.call("events.subscribe", {"types": ["died", "restarting"]})
        conf = os.path.join(w.conf, "supervisord.conf")
        r = c.call("ward.reread")
        assert r["errors"] == [], r
        line = open(conf).read().splitlines().index("priority = 10") + 1
        # priority is understood (the start order); the sections and
        # [supervisord] keys ward has no use for are warnings.
        assert not any("priority" in m for m in r["warnings"]), r
        assert "%s:%d:" % (conf, line) not in "".join(r["warnings"]), r
        work = os.path.join(d, "work")
        rep = os.path.join(work, "run1.rep")
        wait_file(rep)
        rep = read_report(rep)
        assert rep["cwd"] == work, rep
        assert rep["env"]["TEST_A"] == "1" and rep["env"]["TEST_B"] == "2", rep
        logfile = os.path.join(d, "logs", "app.log")
        retry(lambda: os.path.exists(logfile) and
              sorted(open(logfile).read().split()) ==
              ["app-line", "to-stderr"], what="both streams in app.log")
        # The crash comes back with a backoff.
        open(os.path.join(work, "go"), "w").close()
        died = sub.event(lambda e: e["name"] == "app" and e["type"] == "died")
        assert died["exit"]["exit_signal"] == signal.SIGSEGV, died
        ev = sub.event(lambda e: e["name"] == "app")
        assert ev["type"] == "restarting" and ev["attempt"] == 1, ev
        wait_file(os.path.join(work, "run2.rep"))
        assert prog_state(c, "app", "running")
        # wardctl stop: with SIGINT, and it stays down.
        p = ctl(w, "stop", "app")
        assert p.returncode == 0, p
        st = wait_dead(c, "app")
        assert st["exit_signal"] == signal.SIGINT, st
        assert prog_state(c, "app", "stopped")
        # redirect_stderr: one stream, in order, as supervisorctl tail shows.
        p = ctl(w, "tail", "app")
        assert p.returncode == 0 and \
            p.stdout == "to-stderr\napp-line\nto-stderr\napp-line\n", p
        assert ctl(w, "tail", "app", "stderr").stdout == ""
        retry(lambda: open(logfile).read().split().count("app-line") == 2,
              what="the second run in app.log")
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_execenv_keys_in_program_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    lim = lambda v: v if hard == resource.RLIM_INFINITY else min(v, hard)
    memlock = "%d:%d" % (lim(32768), lim(65536))
    with open("/proc/self/oom_score_adj") as f:
        oom = max(500, int(f.read()))
    w = ward_with({"10.conf": """
        [program:env]
        command = %s report %%(here)s/env.rep
        umask = 027
        nice = 5
        oom_score_adj = %d
        rlimit_nofile = 256:512
        rlimit_memlock = %s
        startsecs = 0
        """ % (P, oom, memlock)})
    try:
        c = w.client()
        path = os.path.join(w.conf, "env.rep")
        wait_file(path)
        assert prog_state(c, "env", "exited")
        rep = read_report(path)
        assert rep["umask"] == "0027", rep
        assert rep["nice"] == "5", rep
        assert rep["oom_score_adj"] == str(oom), rep
        assert rep["rlimit_nofile"] == "256:512", rep
        assert rep["rlimit_memlock"] == memlock, rep
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
