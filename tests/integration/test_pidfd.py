#!/usr/bin/python3
"""instance.pidfd (issue 13, item 9): a pidfd for the running main process
comes with the answer by SCM_RIGHTS, for the owner or an admin only; and
ward.hello's protocol handshake (item 11)."""
import array
import os
import select
import signal
import socket
import subprocess
import time

import wardtest
from wardtest import (Client, Ward, WardError, as_nobody, payload, retry,
                      wait_dead)

W = None
WARDCTL = wardtest.WARDCTL


class FdClient(Client):
    """A client that keeps the fds answers carry (recvmsg), in order."""

    def __init__(self, path):
        super().__init__(path)
        self.fds = []

    def _recv(self):
        data, anc, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(16 * 4))
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(raw[:len(raw) - len(raw) % 4])
                self.fds.extend(fds)
        return data


def fd_pid(fd):
    """The pid a pidfd names, from its fdinfo."""
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise AssertionError("fd %d is not a pidfd" % fd)


def readable(fd, timeout=0):
    return bool(select.select([fd], [], [], timeout)[0])


def setup_module():
    global W
    W = Ward()
    W.start()
    return W


def test_pidfd_names_the_payload_and_wakes_at_its_exit():
    c = FdClient(W.sock)
    st = c.call("instance.run", {"name": "p1", "argv": payload("hang")})
    r = c.call("instance.pidfd", {"name": "p1"})
    assert len(c.fds) == 1, c.fds
    fd = c.fds.pop()
    try:
        assert r["pid"] == st["pid"] and fd_pid(fd) == st["pid"]
        assert not readable(fd)
        c.call("instance.kill", {"name": "p1", "signal": "KILL"})
        assert readable(fd, wardtest.TIMEOUT), "no wake-up at the exit"
        wait_dead(c, "p1")
    finally:
        os.close(fd)


def test_client_signals_through_its_pidfd():
    c = FdClient(W.sock)
    c.call("instance.run", {"name": "p2", "argv": payload("hang")})
    c.call("instance.pidfd", {"name": "p2"})
    fd = c.fds.pop()
    try:
        signal.pidfd_send_signal(fd, signal.SIGTERM)
        st = wait_dead(c, "p2")
        assert st["exit_signal"] == signal.SIGTERM, st
    finally:
        os.close(fd)


def test_pipelined_requests_get_their_own_fds_in_order():
    c = FdClient(W.sock)
    pids = []
    for k in range(3):
        pids.append(c.call("instance.run", {"name": "pp%d" % k,
                                            "argv": payload("hang")})["pid"])
    ids = [c.request("instance.pidfd", {"name": "pp%d" % k}) for k in (2, 0, 1)]
    for msgid in ids:
        err, _ = c.response(msgid)
        assert err is None, err
    assert [fd_pid(fd) for fd in c.fds] == [pids[2], pids[0], pids[1]]
    for fd in c.fds:
        os.close(fd)
    for k in range(3):
        c.call("instance.kill", {"name": "pp%d" % k, "signal": "KILL"})


def test_not_running_is_refused_without_fd():
    c = FdClient(W.sock)
    c.call("instance.create", {"name": "idle", "argv": payload("hang")})
    e = c.error("instance.pidfd", {"name": "idle"})
    assert e["code"] == "invalid_state", e
    assert c.fds == []


def test_other_users_cannot_have_it():
    c = FdClient(W.sock)
    c.call("instance.run", {"name": "roots", "argv": payload("hang")})
    out = as_nobody(W, r'''
import array, socket
r = attempt("instance.pidfd", {"name": "roots"})
mine = attempt("instance.run", {"name": "nobodys", "argv": ["/bin/sleep", "30"]})
got = attempt("instance.pidfd", {"name": "nobodys"})
done({"roots": r, "mine": got})
''')
    assert out["roots"]["code"] == "not_found", out
    assert out["mine"]["ok"]["pid"] > 0, out
    c.call("instance.kill", {"name": "roots", "signal": "KILL"})
    c.call("instance.kill", {"name": "nobodys", "signal": "KILL"})


def test_wardd_holds_no_fd_once_sent():
    c = FdClient(W.sock)
    c.call("instance.run", {"name": "held", "argv": payload("hang")})
    retry(lambda: wardtest.fds_settled(W, c), what="wardd's fds settled")
    before = wardtest.wardd_fds(W)
    for _ in range(20):
        c.call("instance.pidfd", {"name": "held"})
    assert len(c.fds) == 20
    for fd in c.fds:
        os.close(fd)
    retry(lambda: wardtest.fds_settled(W, c), what="wardd's fds settled")
    assert wardtest.wardd_fds(W) == before
    c.call("instance.kill", {"name": "held", "signal": "KILL"})


def test_unsent_answers_keep_their_fds_across_reexec():
    """A client that does not read: answers and their pidfds pile up in
    wardd (past what its socket takes), a re-exec carries them, and each
    arrives with its own answer afterwards."""
    c = FdClient(W.sock)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    pid = c.call("instance.run", {"name": "piled", "argv": payload("hang")})["pid"]
    n = 600
    ids = [c.request("instance.pidfd", {"name": "piled"}) for _ in range(n)]
    other = Client(W.sock)
    # Some answers are still wardd's when the re-exec happens.
    retry(lambda: any(v == "conn: answer's" for v in
                      (f["owner"] for f in other.call("ward.fds"))),
          what="answers' fds queued in wardd")
    other.call("ward.reexec")
    W.wait_ready()
    for msgid in ids:
        err, r = c.response(msgid)
        assert err is None and r["pid"] == pid, err
    assert len(c.fds) == n and {fd_pid(fd) for fd in c.fds} == {pid}
    for fd in c.fds:
        os.close(fd)
    c.call("instance.kill", {"name": "piled", "signal": "KILL"})


def test_wardctl_wait():
    c = Client(W.sock)
    c.call("instance.run", {"name": "w1", "argv": payload("hang")})
    p = subprocess.run([WARDCTL, "--socket", W.sock, "wait", "-t", "0.2", "w1"],
                       capture_output=True, text=True, timeout=wardtest.TIMEOUT)
    assert p.returncode == 4 and "w1: still running" in p.stdout, p
    p = subprocess.Popen([WARDCTL, "--socket", W.sock, "wait", "w1"],
                         stdout=subprocess.PIPE, text=True)
    # Once it holds the pidfd, wardd has answered: the kill comes after.
    def holds_pidfd():
        for f in os.listdir("/proc/%d/fd" % p.pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (p.pid, f)) == \
                        "anon_inode:[pidfd]":
                    return True
            except FileNotFoundError:   # closed meanwhile (its connect)
                pass
        return False
    retry(holds_pidfd, what="wardctl wait holding its pidfd")
    c.call("instance.kill", {"name": "w1", "signal": "KILL"})
    out, _ = p.communicate(timeout=wardtest.TIMEOUT)
    assert p.returncode == 0 and "w1: exited" in out, (p.returncode, out)


def test_hello_protocol_handshake():
    c = Client(W.sock)
    h = c.call("ward.hello", {"protocol": 1})
    assert h["protocol"] == 1 and h["protocols"] == [1], h
    assert "protocols" in c.call("ward.hello")
    e = c.error("ward.hello", {"protocol": 2})
    assert e["code"] == "unsupported_protocol" and "1" in e["message"], e
    e = c.error("ward.hello", {"protocol": "one"})
    assert e["code"] == "invalid_argument", e
    # libward sends its version: wardctl info goes through ward_hello.
    p = subprocess.run([WARDCTL, "--socket", W.sock, "info"],
                       capture_output=True, text=True, timeout=wardtest.TIMEOUT)
    assert p.returncode == 0, p


if __name__ == "__main__":
    wardtest.run(globals())
