#!/usr/bin/python3
"""instance.history survives wardd: a clean stop, a SIGKILL, a corrupt or
cut STATE_DIR/history, its rewrites, and a symlink planted in its place
(history-file.c)."""
import os
import signal

import msgpack

import wardtest
from wardtest import TIMEOUT, Ward, as_nobody, payload, retry, uniq, wait_dead

NOBODY = 65534


def need_root():
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root (STATE_DIR is root's)")


def restart(w, sig=signal.SIGTERM):
    """Stop w's wardd with sig and start a new one on the same state dir."""
    for c in w.clients:
        c.close()
    w.clients = []
    w.proc.send_signal(sig)
    w.proc.wait(timeout=TIMEOUT)
    w.log.close()
    Ward.started.remove(w)
    return w.start()


def crash(w):
    """SIGKILL w's wardd and wait for it: its files are what a crash left."""
    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait(timeout=TIMEOUT)


def history(w):
    c = w.client()
    return c.call("instance.history", {"limit": 5000})


def die(w, argv, **kw):
    c = w.client()
    r = c.call("instance.run", dict(name=uniq("hp"), argv=argv, **kw))
    wait_dead(c, r["id"])
    return r["id"]


def several_deaths(w):
    """Deaths of every kind: codes, signals, failure pipe text (a reason
    with info, free text, more than is kept), a spawn that fails."""
    die(w, payload("exit", 0))
    die(w, payload("fail", "CRASH|disk on fire \u00e9", "exit", 3))
    die(w, payload("signal", 9))
    die(w, payload("fail", "no reason given here", "exit", 1))
    die(w, payload("failbytes", 60000, "exit", 2))
    die(w, payload("exit", 7), exit_codes={"7": "MY_REASON"})
    die(w, ["/bin/sh", "-c", "exec 3>&-; exit 0"], user="65534:65534")
    h = history(w)
    assert len(h) == 7, h
    assert {r["death_reason"] for r in h} >= {"CRASH", "MY_REASON"}, h
    assert any(r["exit_signal"] == 9 for r in h), h
    assert any(r["failure_discarded"] > 0 for r in h), h
    return h


def history_path(w, name="history"):
    return os.path.join(w.state, name)


def test_clean_stop():
    with Ward() as w:
        before = several_deaths(w)
        restart(w)
        assert history(w) == before
        # New deaths go after the old ones, and a second restart keeps all.
        die(w, payload("exit", 4))
        after = history(w)
        assert after[:-1] == before and after[-1]["exit_code"] == 4, after
        restart(w)
        assert history(w) == after


def test_sigkill():
    with Ward() as w:
        before = several_deaths(w)
        restart(w, signal.SIGKILL)
        assert history(w) == before
        assert "corrupt" not in w.read_log()


def history_fds(w):
    return [fd for fd, path in wardtest.wardd_fds(w).items()
            if path == history_path(w)]


def test_reexec():
    """A re-exec reads the file back like any start, and does not carry
    the old image's history fd (close-on-exec): one is open, not two."""
    with Ward() as w:
        before = several_deaths(w)
        c = w.client()
        assert c.call("ward.reexec") == {"ok": True}
        retry(lambda: c.call("ward.stats")["reexecs"] == 1,
              what="the re-exec to finish")
        assert history(w) == before
        assert len(history_fds(w)) == 1, wardtest.wardd_fds(w)
        die(w, payload("exit", 4))
        restart(w)
        assert history(w)[:-1] == before


def test_cut_last_record():
    with Ward() as w:
        before = several_deaths(w)
        crash(w)
        # A crash in the middle of the last write.
        size = os.path.getsize(history_path(w))
        os.truncate(history_path(w), size - 5)
        restart(w)
        assert history(w) == before[:-1]
        assert "is corrupt at byte" in w.read_log()
        die(w, payload("exit", 5))
        after = history(w)
        assert after[:-1] == before[:-1] and after[-1]["exit_code"] == 5
        restart(w)
        assert history(w) == after


def test_garbage_tail():
    with Ward() as w:
        before = several_deaths(w)
        crash(w)
        good = os.path.getsize(history_path(w))
        with open(history_path(w), "ab") as f:
            # A map claiming more bytes than there are, then junk.
            f.write(b"\xdf\xff\xff\xff\xff" + os.urandom(300))
        restart(w)
        assert history(w) == before
        assert os.path.getsize(history_path(w)) == good
        # A map that is no exit record is skipped, not fatal.
        die(w, payload("exit", 6))
        after = history(w)
        restart(w, signal.SIGKILL)
        with open(history_path(w), "ab") as f:
            f.write(msgpack.packb({"id": "x", "owner_uid": -1}))
            f.write(msgpack.packb([1, 2, 3]))
        restart(w)
        assert history(w) == after
        die(w, payload("exit", 8))
        restart(w)
        assert history(w)[:-1] == after


def test_no_header():
    with Ward() as w:
        several_deaths(w)
        crash(w)
        with open(history_path(w), "wb") as f:
            f.write(b"not a history file at all\n")
        restart(w)
        assert history(w) == []
        with open(history_path(w, "history.rejected"), "rb") as f:
            assert f.read() == b"not a history file at all\n"
        die(w, payload("exit", 9))
        restart(w)
        assert [r["exit_code"] for r in history(w)] == [9]


def test_rewrite_keeps_quiet_owner():
    """A rewrite (here after 3 records memory dropped) keeps what memory
    holds: root's one old death, which per-owner limits keep while nobody
    dies 1000 times more, and nobody's last 1000 only."""
    need_root()
    w = Ward(env=dict(os.environ, WARD_TEST_HISTORY_GARBAGE="3"))
    with w:
        rid = die(w, payload("exit", 3))
        out = as_nobody(w, r'''
i = c.call("instance.create", {"argv": ["/bin/true"],
                               "capture_output": False})["id"]
c.call("events.subscribe", {"ids": [i], "types": ["died"]})
for k in range(1010):
    c.call("instance.start", {"id": i})
    c.event(lambda e: e["type"] == "died")
done({"id": i})
''', timeout=TIMEOUT * 10)
        before = history(w)
        assert len(before) == 1001 and before[0]["id"] == rid, before[:2]
        assert before[-1]["id"] == out["id"], before[-1]
        assert sum(r["owner_uid"] == NOBODY for r in before) == 1000
        assert "history rewritten" in w.read_log()
        # A rewritten file holds memory and at most 3 more.
        assert os.path.getsize(history_path(w)) < 1.1 * len(
            msgpack.packb(before)), os.path.getsize(history_path(w))
        restart(w, signal.SIGKILL)
        assert history(w) == before
        c = as_nobody(w, 'done(c.call("instance.history", {"limit": 5000}))')
        assert len(c) == 1000 and c == before[1:]
        restart(w)
        assert history(w) == before


def test_symlink_not_followed():
    need_root()
    w = Ward()
    os.makedirs(w.state, mode=0o755)
    target = os.path.join(w.dir, "precious")
    with open(target, "wb") as f:
        f.write(b"precious\n")
    os.symlink(target, history_path(w))
    with w:
        die(w, payload("exit", 1))
        with open(target, "rb") as f:
            assert f.read() == b"precious\n"
        assert os.path.islink(history_path(w, "history.rejected"))
        assert not os.path.islink(history_path(w))
        assert "is a symlink" in w.read_log()
        before = history(w)
        restart(w)
        assert history(w) == before and len(before) == 1
        with open(target, "rb") as f:
            assert f.read() == b"precious\n"


def test_directory_in_its_place():
    """A directory (or anything not wardd's regular file) is renamed
    aside, not used; history then works as usual."""
    w = Ward()
    os.makedirs(os.path.join(w.state, "history", "sub"))
    with w:
        assert os.path.isdir(history_path(w, "history.rejected"))
        die(w, payload("exit", 2))
        before = history(w)
        restart(w)
        assert history(w) == before and len(before) == 1


def test_fd_listed():
    """The history fd is wardd's, listed by ward.fds."""
    with Ward() as w:
        die(w, payload("exit", 0))
        fds = w.client().call("ward.fds")
        listed = {f["fd"]: f["owner"] for f in fds}
        mine = history_fds(w)
        assert len(mine) == 1 and mine[0] in listed, (mine, fds)


if __name__ == "__main__":
    wardtest.run(globals())
