#!/usr/bin/python3
"""Issue 15: a single-node Pacemaker cluster runs a ward instance through
the OCF agent (ocf:ward:instance), and restarts it after a crash.

corosync (knet on 127.0.0.1, one node, its own config and log in a temp
dir) and pacemakerd (its daemons as Debian builds them) run in the
foreground under this test, with no systemd; the agent is installed under
a provider of the test's own (/usr/lib/ocf/resource.d/wardtest-PID), so a
real install of ocf:ward:instance is never touched. The cluster gets
stonith-enabled=false (one node, nothing to fence) and one resource; a
SIGKILL of the payload is seen by the recurring monitor (7) and Pacemaker
stops and starts it again: wardd runs it anew. Every wait is bounded.

Needs root, corosync and pacemaker (Debian packages corosync, pacemaker);
skipped otherwise, and when a cluster stack already runs on this machine
(corosync's IPC names are machine-wide).
"""
import os
import shutil
import signal
import subprocess
import tempfile

import wardtest
from wardtest import Skip, retry

AGENT = os.path.join(wardtest.SRCDIR, "contrib", "ocf", "ward")
PROVIDER = "wardtest-%d" % os.getpid()
PROVIDER_DIR = "/usr/lib/ocf/resource.d/" + PROVIDER
CLUSTER_WAIT = 90		# s: corosync membership, DC election, CIB

COROSYNC_CONF = """totem {
	version: 2
	cluster_name: wardtest
	transport: knet
	crypto_cipher: none
	crypto_hash: none
	token: 1000
}
nodelist {
	node {
		ring0_addr: 127.0.0.1
		name: node1
		nodeid: 1
	}
}
quorum {
	provider: corosync_votequorum
}
logging {
	to_logfile: yes
	logfile: %s
	to_stderr: no
	to_syslog: no
}
"""


def sh(*argv, check=True):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError("%s: %d\n%s" % (" ".join(argv), p.returncode,
                                             out))
    return out


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ward-pcmk-")
        self.procs = []

    def start(self):
        conf = os.path.join(self.dir, "corosync.conf")
        with open(conf, "w") as f:
            f.write(COROSYNC_CONF % os.path.join(self.dir, "corosync.log"))
        self.log = open(os.path.join(self.dir, "out.log"), "ab")
        self.procs.append(subprocess.Popen(
            ["corosync", "-f", "-c", conf], stdout=self.log,
            stderr=self.log, start_new_session=True))
        retry(lambda: "node1" in sh("corosync-quorumtool", "-l",
                                    check=False), CLUSTER_WAIT,
              what="corosync's membership")
        env = dict(os.environ, PCMK_logfile=os.path.join(self.dir,
                                                         "pacemaker.log"))
        self.procs.append(subprocess.Popen(
            ["pacemakerd", "-f"], stdout=self.log, stderr=self.log,
            env=env, start_new_session=True))
        retry(lambda: "partition with quorum" in sh("crm_mon", "-1",
                                                     check=False) and
              "Online: [ node1 ]" in sh("crm_mon", "-1", check=False),
              CLUSTER_WAIT, what="Pacemaker's DC and node1 online")
        # A CIB left by an earlier run must not bring its resources.
        sh("cibadmin", "--erase", "--force")
        sh("crm_attribute", "--type", "crm_config", "--name",
           "stonith-enabled", "--update", "false")
        sh("crm_attribute", "--type", "crm_config", "--name",
           "no-quorum-policy", "--update", "ignore")
        return self

    def stop(self):
        sh("cibadmin", "--erase", "--force", check=False)
        for p in reversed(self.procs):	# pacemakerd first, corosync last
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.log.close()

    def logs(self):
        out = []
        for name in ("out.log", "corosync.log", "pacemaker.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    out.append(f.read().decode(errors="replace")[-3000:])
            except FileNotFoundError:
                pass
        return "\n".join(out)


def preconditions():
    if os.geteuid() != 0:
        raise Skip("not root (Pacemaker's daemons run as root)")
    for tool in ("corosync", "pacemakerd", "cibadmin", "crm_mon",
                 "corosync-quorumtool", "crm_resource", "jq"):
        if not shutil.which(tool):
            raise Skip("%s missing (Debian packages corosync, pacemaker, "
                       "jq)" % tool)
    for daemon in ("corosync", "pacemakerd"):
        if subprocess.run(["pgrep", "-x", daemon],
                          stdout=subprocess.DEVNULL).returncode == 0:
            raise Skip("a cluster stack already runs on this machine")


def resource_xml(w, name):
    params = {"name": name, "socket": w.sock, "wardctl": wardtest.WARDCTL,
              "command": "%s notify READY=1 hang" % wardtest.PAYLOAD,
              "wait_ready": "true"}
    nv = "".join('<nvpair id="wr-%s" name="%s" value="%s"/>' % (k, k, v)
                 for k, v in params.items())
    return ('<primitive id="wr" class="ocf" provider="%s" type="instance">'
            '<instance_attributes id="wr-ia">%s</instance_attributes>'
            '<operations>'
            '<op id="wr-mon" name="monitor" interval="1s" timeout="20s"/>'
            '<op id="wr-start" name="start" interval="0" timeout="30s"/>'
            '<op id="wr-stop" name="stop" interval="0" timeout="30s"/>'
            '</operations></primitive>' % (PROVIDER, nv))


def test_pacemaker_starts_monitors_and_restarts_after_a_crash():
    preconditions()
    os.makedirs(PROVIDER_DIR)
    shutil.copy(AGENT, os.path.join(PROVIDER_DIR, "instance"))
    os.chmod(os.path.join(PROVIDER_DIR, "instance"), 0o755)
    w = wardtest.Ward()
    os.chmod(w.dir, 0o755)
    cl = Cluster()
    try:
        w.start()
        c = w.client()
        cl.start()
        sh("cibadmin", "--create", "--scope", "resources", "--xml-text",
           resource_xml(w, "pcmk1"))

        def running():
            try:
                st = c.call("instance.status", {"name": "pcmk1"})
            except wardtest.WardError:
                return None
            return st if st["state"] == "running" and \
                st["payload_state"] == "ready" else None
        # Started once Pacemaker has the start's result (a kill before
        # that fails the start, and a failed start is fatal by default).
        first = retry(lambda: "Started node1" in sh("crm_mon", "-1") and
                      running(), CLUSTER_WAIT, what="Pacemaker's start")
        assert "node1" in sh("crm_resource", "--locate", "--resource", "wr")

        # A crash: the monitor sees it, Pacemaker recovers it on node1.
        os.kill(first["pid"], signal.SIGKILL)
        again = retry(lambda: (lambda st: st if st and st["pid"] !=
                               first["pid"] else None)(running()),
                      CLUSTER_WAIT, what="Pacemaker's restart")
        assert again["id"] != first["id"] or again["pid"] != first["pid"]
        hist = c.call("instance.history", {"name": "pcmk1"})
        assert any(r["killed_by"] == "external" and
                   r["exit_signal"] == 9 for r in hist), hist
        fails = sh("crm_failcount", "--query", "--resource", "wr",
                   "--node", "node1", check=False)
        assert "value=0" not in fails, fails

        # Stopped through the cluster: wardd says stopped by a stop.
        sh("crm_resource", "--resource", "wr", "--meta", "--set-parameter",
           "target-role", "--parameter-value", "Stopped")
        st = wardtest.wait_dead(c, "pcmk1", CLUSTER_WAIT)
        assert st["killed_by"] == "stop", st
    except Exception:
        print("# " + cl.logs().replace("\n", "\n# "))
        raise
    finally:
        cl.stop()
        w.stop()
        shutil.rmtree(PROVIDER_DIR, ignore_errors=True)
        shutil.rmtree(cl.dir, ignore_errors=True)


if __name__ == "__main__":
    wardtest.run(globals())
