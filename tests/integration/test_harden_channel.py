#!/usr/bin/python3
"""The shared fd 3 and NOTIFY_SOCKET sockets (issue 12, channel.c),
attacked as uid nobody (65534) through setpriv, and as any input:

- C2: a datagram on STATE_DIR/failure from a socket with no address (only
  root can connect one there, but every input is hostile) must not crash
  wardd.

wardd runs as root; every test needs root and skips without it.
"""
import os
import socket

import wardtest
from wardtest import Ward, payload, uniq


def need_root():
    if os.geteuid() != 0:
        raise wardtest.Skip("needs root to act as nobody through setpriv")


def test_c2_unnamed_sender_on_failure_socket():
    need_root()
    w = Ward().start()
    try:
        c = w.client()
        # A running instance: its fd 3 address is in channel.c's table.
        c.call("instance.run", {"name": uniq("hang"), "argv": payload("hang")})
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.connect(os.path.join(w.state, "failure"))
        s.send(b"who am I")
        s.close()
        assert c.call("ward.hello"), "wardd answers"
        assert w.proc.poll() is None, w.read_log()[-2000:]
        st = c.call("ward.stats")
        assert st["channel"]["failure_dropped"] >= 1, st["channel"]
    finally:
        w.stop()


if __name__ == "__main__":
    wardtest.run(globals())
