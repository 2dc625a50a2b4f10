#!/usr/bin/python3
"""A supervisord.conf read as supervisord reads it (wardd --supervisord-conf
FILE, and the same sections in the config dir): numprocs and process_name,
[group:x] names, [include] with %(here)s, [supervisord] environment,
multi-line environment=, SUPERVISOR_* variables, priority order,
stdout_logfile=/dev/stdout reaching wardd's own stdout, unknown keys
warned (never fatal), and reread/update of all of it."""
import os
import signal
import textwrap

import wardtest
from wardtest import Ward, read_report, retry, wait_file

P = wardtest.PAYLOAD


def ward_sv(text, files=None, args=()):
    """A wardd reading supervisord.conf (text) with --supervisord-conf;
    files {relative path: text} beside it (for [include])."""
    w = Ward(args=list(args))
    w.conf = os.path.join(w.dir, "sv")
    os.makedirs(w.conf)
    for name, body in dict(files or {}).items():
        path = os.path.join(w.conf, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(body))
    w.svconf = os.path.join(w.conf, "supervisord.conf")
    with open(w.svconf, "w") as f:
        f.write(textwrap.dedent(text))
    w.extra += ["--supervisord-conf", w.svconf,
                "--config-dir", os.path.join(w.dir, "no-such-dir")]
    return w.start()


def read_env(path):
    with open(path) as f:
        return dict(line.rstrip("\n").partition("=")[::2] for line in f
                    if "=" in line)


def names(c):
    r = c.call("instance.list")
    lst = r["instances"] if isinstance(r, dict) else r
    return {i["name"]: i for i in lst}


def test_numprocs_groups_env_and_here():
    w = ward_sv("""
        [unix_http_server]
        file = /tmp/supervisor.sock

        [supervisord]
        nodaemon = true
        logfile = /dev/null
        environment = GLOBAL_A="g a",
            GLOBAL_B=gb

        [include]
        files = conf.d/*.ini

        [program:worker]
        command = /bin/sh -c 'env > %%(here)s/%%(process_num)02d.env.tmp &&
            mv %%(here)s/%%(process_num)02d.env.tmp %%(here)s/%%(process_num)02d.env &&
            exec sleep 1000'   ; a comment
        process_name = %%(program_name)s_%%(process_num)02d
        numprocs = 3
        environment =
            W="%%(ENV_GLOBAL_B)s-%%(process_num)d",
            LINE2='two, words'
        loglevel = debug

        [group:grp]
        programs = a,b
        """ % {"P": P}, files={
        "conf.d/ab.ini": """
            [program:a]
            command = %s report %%(here)s/a.rep hang
            environment = TEST_GROUP="%%(group_name)s",TEST_PROG=%%(program_name)s
            directory = %%(here)s
            [program:b]
            command = sleep 1000
            """ % P})
    try:
        c = w.client()
        r = c.call("ward.reread")
        assert r["errors"] == [], r
        have = names(c)
        assert set(have) == {"worker:worker_00", "worker:worker_01",
                             "worker:worker_02", "grp:a", "grp:b"}, have
        # The unknown key: one warning for the section, not one a process.
        unknown = [m for m in r["warnings"] if "loglevel" in m]
        line = [n for n, t in enumerate(open(w.svconf), 1)
                if t.startswith("loglevel")][0]
        assert unknown == ["%s:%d: [program:worker] loglevel: unknown key; "
                           "ignored" % (w.svconf, line)], r["warnings"]
        assert any("[unix_http_server]" in m for m in r["warnings"]), r
        for k in range(3):
            rep = os.path.join(w.conf, "%02d.env" % k)
            wait_file(rep)
            env = read_env(rep)
            assert env["W"] == "gb-%d" % k, env
            assert env["LINE2"] == "two, words", env
            assert env["GLOBAL_A"] == "g a", env
            assert env["SUPERVISOR_ENABLED"] == "1", env
            assert env["SUPERVISOR_PROCESS_NAME"] == "worker_%02d" % k, env
            assert env["SUPERVISOR_GROUP_NAME"] == "worker", env
            assert env["SUPERVISOR_SERVER_URL"] == "unix://" + w.sock, env
        # %(here)s in an included file is that file's directory.
        inc = os.path.join(w.conf, "conf.d")
        wait_file(os.path.join(inc, "a.rep"))
        rep = read_report(os.path.join(inc, "a.rep"))
        assert rep["cwd"] == inc, rep
        # %(group_name)s inside a [group:] is the group's name.
        assert rep["env"]["TEST_GROUP"] == "grp", rep
        assert rep["env"]["TEST_PROG"] == "a", rep

        # The same file again: nothing to change.
        r = c.call("ward.update")
        assert (r["added"], r["changed"], r["removed"]) == ([], [], []), r
    finally:
        w.stop()


def test_priority_orders_starts():
    w = ward_sv("""
        [supervisord]
        [program:late]
        command = sleep 1000
        priority = 900
        [program:first]
        command = sleep 1000
        priority = 1
        [program:middle]
        command = sleep 1000
        """)
    try:
        c = w.client()
        have = names(c)
        order = sorted(have, key=lambda n: have[n]["id"])
        # middle has the default priority, 999: after late's 900.
        assert order == ["first", "late", "middle"], have
    finally:
        w.stop()


def test_priority_orders_stops_at_shutdown():
    # Lower priority stops last: each stage once the one above has stopped.
    # The higher, the slower to die: stopped all at once, low would be the
    # first to say so.
    def prog(name, prio, delay):
        return """
            [program:%s]
            command = /bin/sh -c 'trap "sleep %s; echo %s >> %%(here)s/stops; exit 0" TERM; echo up > %%(here)s/%s.up; while :; do sleep 0.05; done'
            priority = %d
            """ % (name, delay, name, name, prio)
    w = ward_sv("[supervisord]\n" + prog("low", 1, 0) +
                prog("high", 900, 0.4) + prog("mid", 50, 0.2))
    try:
        for n in ("low", "high", "mid"):
            wait_file(os.path.join(w.conf, n + ".up"))
        stops = os.path.join(w.conf, "stops")
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(timeout=wardtest.TIMEOUT)
        assert open(stops).read().split() == ["high", "mid", "low"], \
            open(stops).read()
    finally:
        w.stop()


def test_dev_stdout_reaches_wardds_stdout():
    # The container idiom: the payload's lines on wardd's own stdout.
    w = ward_sv("""
        [supervisord]
        nodaemon = true
        [program:talker]
        command = %s echo talker-says-hello hang
        stdout_logfile = /dev/stdout
        stdout_logfile_maxbytes = 0
        stderr_logfile = /dev/stderr
        stderr_logfile_maxbytes = 0
        """ % P)
    try:
        c = w.client()
        retry(lambda: "talker-says-hello" in w.read_log(),
              what="the payload's line in wardd's stdout")
        st = c.call("instance.status", {"name": "talker"})
        assert st["state"] == "running", st
        assert c.call("ward.reread")["errors"] == []
    finally:
        w.stop()


def test_bad_program_spares_the_rest_and_update_applies():
    w = ward_sv("""
        [supervisord]
        [program:good]
        command = sleep 1000
        [program:nonum]
        command = sleep 1000
        numprocs = 2
        [program:badfmt]
        command = date +%Y
        [group:dup]
        programs = x1,x2
        [program:x1]
        command = sleep 1000
        process_name = same
        [program:x2]
        command = sleep 1000
        process_name = same
        """)
    try:
        c = w.client()
        r = c.call("ward.reread")
        errs = "\n".join(r["errors"])
        assert "%(process_num) must be present" in errs, errs
        assert "[program:badfmt] command: badly formatted" in errs, errs
        assert "[program:x2]: process dup:same is already declared" in errs, \
            errs
        assert set(names(c)) == {"good", "dup:same"}
        # Grow good into a group of two through update.
        with open(w.svconf, "a") as f:
            f.write("[program:pair]\ncommand = sleep 1000\n"
                    "process_name = p%(process_num)d\nnumprocs = 2\n"
                    "numprocs_start = 1\n")
        r = c.call("ward.update")
        assert sorted(r["added"]) == ["pair:p1", "pair:p2"], r
        retry(lambda: {"pair:p1", "pair:p2"} <= set(names(c)),
              what="the pair to run")
    finally:
        w.stop()


def test_config_dir_takes_supervisord_sections_too():
    w = Ward()
    conf = os.path.join(w.dir, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "10.conf"), "w") as f:
        f.write(textwrap.dedent("""
            [group:g]
            programs = one
            [program:one]
            command = sleep 1000
            """))
    w.extra += ["--config-dir", conf]
    w.start()
    try:
        assert set(names(w.client())) == {"g:one"}
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
