"""fdstore: systemd's side of sd_notify and the fd store, emulated exactly
as systemd implements them, so tests run without systemd as PID 1.

What systemd does (src/core/service.c, src/core/manager.c, sd_notify(3),
systemd.service(5) FileDescriptorStoreMax=), and so does FdStore:
  - a datagram socket at $NOTIFY_SOCKET receives messages with credentials
    (SO_PASSCRED); with NotifyAccess=main only the main pid is heard;
  - FDSTORE=1 keeps every fd passed with the message (SCM_RIGHTS) under
    FDNAME= (default "stored"), up to FileDescriptorStoreMax= in all: past
    it, fds are closed; names need not be unique;
  - FDSTOREREMOVE=1 with FDNAME= closes and forgets every fd of that name;
  - FDPOLL=0 keeps an fd whose other end hung up (systemd would otherwise
    drop it on EPOLLHUP/EPOLLERR: the emulator never drops, so a wardd that
    forgets FDPOLL=0 is not caught here; test_fdstore checks the messages);
  - at the next start of the service, the socket units' fds come first,
    then the stored ones, newest first, with LISTEN_FDS, LISTEN_FDNAMES
    (colon-separated) and LISTEN_PID set to the new main pid.
"""
import array
import os
import select
import socket
import struct
import subprocess
import threading
import time


class FdStore:
    def __init__(self, path, max_fds=100000):
        self.path = path
        self.max = max_fds
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(path)
        self.main_pid = None
        self.stored = []		# [name, fd], oldest first
        self.messages = []	# every assignment list heard, in order
        self.refused = 0		# fds closed past max_fds
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stop = False
        self.busy = False	# the pump holds a message not yet handled
        r, self.wake = os.pipe()
        self.thread = threading.Thread(target=self._pump, args=(r,),
                                       daemon=True)
        self.thread.start()

    def _pump(self, wake):
        while not self.stop:
            rd, _, _ = select.select([self.sock, wake], [], [])
            if wake in rd:
                break
            with self.lock:
                self.busy = True
            try:
                data, anc, _, _ = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(253 * 4) +
                    socket.CMSG_SPACE(12))
            except BlockingIOError:
                with self.lock:
                    self.busy = False
                continue
            fds, pid = [], None
            for level, typ, d in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(d[:len(d) - len(d) % 4])
                    fds.extend(a)
                elif level == socket.SOL_SOCKET and \
                        typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", d[:12])[0]
            self._handle(data.decode(errors="replace"), fds, pid)
        os.close(wake)

    def settle(self, timeout=20):
        """Wait until every message sent so far is handled (the service's
        main process is gone: nothing more comes)."""
        def idle():
            with self.lock:
                return not self.busy and not select.select(
                    [self.sock], [], [], 0)[0]
        deadline = time.monotonic() + timeout
        while not idle():
            if time.monotonic() > deadline:
                raise AssertionError("fd store: messages not handled")
            select.select([], [], [], 0.005)	# the pump runs meanwhile

    def _handle(self, text, fds, pid):
        with self.cond:
            if self.main_pid is not None and pid != self.main_pid:
                for fd in fds:		# NotifyAccess=main: not heard
                    os.close(fd)
                self.busy = False
                return
            kv = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    kv[k] = v
            self.messages.append(kv)
            if kv.get("FDSTORE") == "1":
                name = kv.get("FDNAME", "stored")
                for fd in fds:
                    if len(self.stored) >= self.max:
                        os.close(fd)
                        self.refused += 1
                    else:
                        self.stored.append([name, fd])
                fds = []
            if kv.get("FDSTOREREMOVE") == "1" and "FDNAME" in kv:
                keep = []
                for name, fd in self.stored:
                    if name == kv["FDNAME"]:
                        os.close(fd)
                    else:
                        keep.append([name, fd])
                self.stored = keep
            for fd in fds:			# fds not to be stored: closed
                os.close(fd)
            self.busy = False
            self.cond.notify_all()

    def names(self):
        with self.lock:
            return [n for n, _ in self.stored]

    def wait(self, pred, timeout=20):
        """Wait until pred(self) holds (called under the lock)."""
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self), timeout):
                raise AssertionError("fd store: timed out")

    def popen(self, cmd, listeners=(), env=None, **kw):
        """Start cmd as the service's main process: its LISTEN_* fds are the
        listeners (socket units' fds: (name, fd)) then the stored fds,
        newest first; NOTIFY_SOCKET is this store."""
        self.settle()
        with self.lock:
            passed = list(listeners) + [tuple(s) for s in
                                        reversed(self.stored)]
        n = len(passed)
        env = dict(env if env is not None else os.environ)
        env["NOTIFY_SOCKET"] = self.path
        for k in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"):
            env.pop(k, None)
        if n:
            env["LISTEN_FDS"] = str(n)
            env["LISTEN_FDNAMES"] = ":".join(name for name, _ in passed)
        srcs = [fd for _, fd in passed]

        def child():
            # Out of the way first, then into 3, 4, ...: a source may sit
            # where another one goes. Then nothing else is inherited.
            for k, fd in enumerate(srcs):
                os.dup2(fd, 10000 + k)
            for k in range(n):
                os.dup2(10000 + k, 3 + k)
            os.closerange(3 + n, 1 << 20)
        full = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + list(cmd)
        p = subprocess.Popen(full, env=env, close_fds=False,
                             preexec_fn=child, **kw)
        with self.lock:
            self.main_pid = p.pid
        return p

    def close(self):
        self.stop = True
        os.write(self.wake, b"x")
        self.thread.join(5)
        with self.lock:
            for _, fd in self.stored:
                os.close(fd)
            self.stored = []
        self.sock.close()
