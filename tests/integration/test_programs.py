#!/usr/bin/python3
"""Declared programs: the config directory, supervisord's keys, restart
policies with backoff and an intensity limit, start order by readiness,
reread and update."""
import os
import signal
import subprocess
import textwrap

import wardtest
from wardtest import Ward, WardError, payload, retry, wait_dead

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
        assert "20-bad.conf:5: [program:typo] unknown key 'comand'" in text, errs
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
        assert "supervisord.conf:18: [program:svc] priority: supervisord's " \
            "key has no ward equivalent" in log, log
        assert "numprocs: supervisord's key has no ward equivalent" in log
        assert "[supervisord]" not in log and "unix_http_server" not in log
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
                     "removed": ["drop"], "errors": []}, r
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
                     "errors": []}, r
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

        def ctl(*a):
            return subprocess.run([wardtest.WARDCTL, "--socket", w.sock] +
                                  list(a), capture_output=True, text=True,
                                  timeout=20)
        p = ctl("reread")
        assert p.returncode == 0 and "two: would be added" in p.stdout, p
        p = ctl("update")
        assert p.returncode == 0 and "two: added" in p.stdout, p
        p = ctl("update")
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


if __name__ == "__main__":
    wardtest.run(globals())
