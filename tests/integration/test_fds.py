#!/usr/bin/python3
"""Issue 10: every fd wardd holds is reachable from the object that owns it.

ward.fds lists them, each owner through its own *_fds function; this test
holds the list against /proc/PID/fd while wardd holds one of nearly every
kind: a running instance with captured output into a log file, a systemd
NOTIFY_SOCKET and a passed fd, a dead one, a follower, a subscriber, an
unhandled request's fds. Whatever /proc shows that the list does not is a
leak (only libev's own epoll and wakeup fds are allowed), and nothing is
listed that is not open. Non-admins may not ask.
"""
import array
import os
import socket

import msgpack

import wardtest
from wardtest import Ward, as_nobody, retry, uniq, wait_dead


def setup_module():
    w = Ward()
    w.start()
    w.root = w.client()
    return w


def listed(w):
    return {e["fd"]: e["owner"] for e in w.root.call("ward.fds")}


def create_with_fd(c, method, params, fd):
    """method (instance.create or .run) with one fd passed (SCM_RIGHTS) as
    the child's fd 7."""
    c.msgid += 1
    params = dict(params, fds=[{"fd": 0, "target": 7}])
    data = msgpack.packb([0, c.msgid, method, [params]],
                         use_bin_type=True)
    c.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                             array.array("i", [fd]))])
    err, res = c.response(c.msgid)
    assert err is None, err
    return res


def unix_dgram_inodes():
    """Inodes of unnamed UNIX datagram sockets (/proc/net/unix type 0002)."""
    out = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[4] == "0002" and len(parts) == 7:
                out.add(parts[6])
    return out


def check_no_leak(w):
    """Every open fd is listed, every listed one open. Not listed, as the
    libraries own them: libev's epoll and wakeup fds, and libsystemd's
    journal socket (sd_journal_send keeps one unnamed datagram socket)."""
    # trash.c holds directories open across loop turns: they are listed,
    # but /proc and the list must be read at one moment, so wait for none.
    retry(lambda: wardtest.fds_settled(w, w.root), what="wardd's fds to settle")
    have = listed(w)
    proc = wardtest.wardd_fds(w)
    stale = sorted(set(have) - set(proc))
    assert not stale, ("listed but not open", stale, have)
    unowned = {fd: what for fd, what in proc.items() if fd not in have}
    libev = {fd: what for fd, what in unowned.items()
             if what in ("anon_inode:[eventpoll]", "anon_inode:[eventfd]")}
    assert len(libev) <= 2, libev
    dgram = unix_dgram_inodes()
    journal = {fd: what for fd, what in unowned.items()
               if what.startswith("socket:[") and what[8:-1] in dgram}
    assert len(journal) <= 1, journal
    leaked = {fd: what for fd, what in unowned.items()
              if fd not in libev and fd not in journal}
    assert not leaked, ("open but owned by nobody", leaked, have)
    return have


def test_every_fd_has_an_owner(w):
    name = uniq("fds")
    log = os.path.join(w.dir, name + ".log")
    r, wfd = os.pipe()
    try:
        create_with_fd(w.root, "instance.run", {
            "name": name, "notify": "systemd", "capture_output": True,
            "stdout_logfile": log,
            "argv": wardtest.payload("notify", "READY=1", "hang")}, r)
        # Not started: it holds its passed fd until it runs.
        waiting = uniq("waiting")
        create_with_fd(w.root, "instance.create", {
            "name": waiting, "argv": ["/bin/true"]}, r)
    finally:
        os.close(r)
    retry(lambda: w.root.call("instance.status", {"name": name})
          ["payload_state"] == "ready", what="ready")
    # A dead one holds nothing; a follower and a subscriber hold a conn.
    dead = uniq("dead")
    w.root.call("instance.run", {"name": dead, "argv": ["/bin/true"]})
    wait_dead(w.root, dead)
    follower = w.client()
    follower.call("instance.log", {"name": name, "follow": True})
    sub = w.client()
    sub.call("events.subscribe", {})
    have = check_no_leak(w)
    owners = sorted(have.values())
    # The kinds this state must show, each from its own owner.
    for what in ("instance: pidfd", "instance: notify stream (fd 4)",
                 "channel: STATE_DIR/failure (fd 3)",
                 "channel: STATE_DIR/notify",
                 "instance: passed fd", "output: pipe", "output: log file",
                 "server: listener", "conn", "statedir", "trash", "dumps"):
        assert what in owners, (what, owners)
    # Issue 12: fd 3 and NOTIFY_SOCKET are shared, not the instance's.
    assert not [o for o in owners if "older wardd" in o], owners
    # One pidfd: the dead instance's is closed.
    assert owners.count("instance: pidfd") == 1, owners
    # root's client, the follower, the subscriber (and ward.fds' own).
    assert owners.count("conn") == len(w.clients), (owners, w.clients)
    os.close(wfd)
    w.root.call("instance.remove", {"name": waiting})
    w.root.call("instance.stop", {"name": name, "timeout_ms": 1000})
    wait_dead(w.root, name)
    follower.close()
    sub.close()
    w.clients.remove(follower)
    w.clients.remove(sub)
    retry(lambda: listed(w) and
          sorted(listed(w).values()).count("conn") == len(w.clients),
          what="the closed clients' conns to go")
    have = check_no_leak(w)
    assert "instance: pidfd" not in have.values(), have
    assert "instance: passed fd" not in have.values(), have
    assert "output: log file" not in have.values(), have


def test_nobody_may_not_list(w):
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root to act as nobody through setpriv")
    r = as_nobody(w, 'done(attempt("ward.fds"))')
    assert r.get("code") == "permission_denied", r


if __name__ == "__main__":
    wardtest.run(globals())
