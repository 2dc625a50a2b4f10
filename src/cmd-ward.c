/*
 * cmd-ward.c: commands about the daemon itself: ward.hello (the version
 * handshake), ward.stats and ward.shutdown.
 *
 * layer: commands
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

static const struct arg_spec cmd_no_args[] = { { NULL, 0 } };

/*
 * The handshake, as dinit's: the client says which protocol it speaks
 * (optional: clients older than the key say nothing and get protocol 1),
 * and wardd refuses one it does not speak with unsupported_protocol, so
 * that neither side misreads the other. The result lists all it speaks.
 */
static const struct arg_spec cmd_hello_args[] = {
	{ "protocol", ARG_UINT },
	{ NULL, 0 }
};

static const unsigned cmd_protocols[] = { WARD_PROTOCOL_VERSION };
#define CMD_NPROTOCOLS	(sizeof cmd_protocols / sizeof cmd_protocols[0])

static void
cmd_hello_exec(struct request *req)
{
	msgpack_packer pk;
	uint64_t want;
	size_t k;

	if (req->args[0] != NULL) {
		want = req->args[0]->via.u64;
		for (k = 0; k < CMD_NPROTOCOLS && cmd_protocols[k] != want; k++)
			;
		if (k == CMD_NPROTOCOLS) {
			cmd_error(req, WARD_E_UNSUPPORTED_PROTOCOL, "wardd %s "
			    "speaks protocol %u, not %" PRIu64, PACKAGE_VERSION,
			    WARD_PROTOCOL_VERSION, want);
			return;
		}
	}
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 7);
	codec_pack_kv_str(&pk, "server", "wardd");
	codec_pack_kv_str(&pk, "version", PACKAGE_VERSION);
	codec_pack_kv_uint(&pk, "protocol", WARD_PROTOCOL_VERSION);
	codec_pack_key(&pk, "protocols");
	msgpack_pack_array(&pk, CMD_NPROTOCOLS);
	for (k = 0; k < CMD_NPROTOCOLS; k++)
		msgpack_pack_uint32(&pk, cmd_protocols[k]);
	codec_pack_kv_int(&pk, "pid", getpid());
	codec_pack_kv_uint(&pk, "uid", req->c->peer.uid);
	codec_pack_kv_bool(&pk, "admin", req->c->peer.admin);
}

const struct cmd_entry cmd_hello_entry = {
	.name = WARD_M_HELLO,
	.args = cmd_hello_args,
	.flags = 0,
	.exec = cmd_hello_exec,
};

/* wardd's own resident memory, for ward.stats. */
static uint64_t
cmd_self_rss_kb(void)
{
	unsigned long long size, res;
	FILE *f;
	int ok;

	if ((f = fopen("/proc/self/statm", "re")) == NULL)
		return 0;
	ok = fscanf(f, "%llu %llu", &size, &res) == 2;
	fclose(f);
	return ok ? res * (sysconf(_SC_PAGESIZE) / 1024) : 0;
}

static void	cmd_fds_walk(fd_visit_fn, void *);

static void
cmd_fds_count(int fd, const char *what, void *arg)
{
	(*(uint64_t *)arg)++;
}

static void
cmd_stats_exec(struct request *req)
{
	msgpack_packer pk;
	uint64_t nfds = 0;

	cmd_fds_walk(cmd_fds_count, &nfds);
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 19);
	codec_pack_kv_uint(&pk, "instances",
	    instance_stats.created - instance_stats.removed);
	codec_pack_kv_uint(&pk, "running", instances_running_count);
	codec_pack_kv_uint(&pk, "clients", conn_count);
	codec_pack_kv_uint(&pk, "subscribers", event_subscribers);
	codec_pack_kv_uint(&pk, "created", instance_stats.created);
	codec_pack_kv_uint(&pk, "started", instance_stats.started);
	codec_pack_kv_uint(&pk, "died", instance_stats.died);
	codec_pack_kv_uint(&pk, "spawn_failed", instance_stats.spawn_failed);
	codec_pack_kv_uint(&pk, "removed", instance_stats.removed);
	codec_pack_kv_uint(&pk, "metrics_ticks", metrics_ticks);
	codec_pack_kv_uint(&pk, "rss_kb", cmd_self_rss_kb());
	codec_pack_kv_uint(&pk, "reexecs", reexec_count);	/* reexec.c */
	codec_pack_key(&pk, "reexec_ms");
	msgpack_pack_double(&pk, reexec_last_ms);
	codec_pack_key(&pk, "fd_store");		/* fdstore.c */
	msgpack_pack_map(&pk, 4);
	codec_pack_kv_bool(&pk, "enabled", fdstore_enabled());
	codec_pack_kv_uint(&pk, "stored", fdstore_stores - fdstore_removes);
	codec_pack_kv_uint(&pk, "writes", fdstore_writes);
	codec_pack_kv_uint(&pk, "removed", fdstore_removes);
	codec_pack_key(&pk, "snapshot");		/* snapshot.c */
	msgpack_pack_map(&pk, 4);
	codec_pack_kv_bool(&pk, "pending", snapshot_pending);
	codec_pack_kv_uint(&pk, "writes", snapshot_writes);
	codec_pack_kv_uint(&pk, "slices", snapshot_slices);
	codec_pack_key(&pk, "ms");
	msgpack_pack_double(&pk, snapshot_ms);
	codec_pack_key(&pk, "capacity");		/* capacity.c */
	capacity_pack(&pk, nfds);
	codec_pack_key(&pk, "channel");		/* channel.c */
	msgpack_pack_map(&pk, 3);
	codec_pack_kv_uint(&pk, "failure_dropped", channel_stats.failure_dropped);
	codec_pack_kv_uint(&pk, "notify_dropped", channel_stats.notify_dropped);
	codec_pack_kv_uint(&pk, "closer_sent", closer_sent);	/* closer.c */
	codec_pack_key(&pk, "limits");		/* budget.c */
	budget_pack_limits(&pk);
	codec_pack_key(&pk, "budgets");
	budget_pack(&pk, &req->c->peer);
}

const struct cmd_entry cmd_stats_entry = {
	.name = WARD_M_STATS,
	.args = cmd_no_args,
	.flags = 0,
	.exec = cmd_stats_exec,
};

static const struct arg_spec cmd_shutdown_args[] = {
	{ "kill_instances", ARG_BOOL },
	{ NULL, 0 }
};

#define CMD_SHUTDOWN_NAMES	6	/* instances named in a refusal */

/*
 * Names (up to CMD_SHUTDOWN_NAMES) and count of the instances whose
 * captured output wardd reads: they would die of SIGPIPE once it exits.
 */
static unsigned
cmd_shutdown_captured(char *names, size_t len)
{
	const struct instance *i;
	unsigned n = 0;
	size_t used = 0;
	int w;

	names[0] = '\0';
	TAILQ_FOREACH(i, &instances, entry) {
		if (!output_capturing(i))
			continue;
		if (n++ >= CMD_SHUTDOWN_NAMES)
			continue;
		w = snprintf(names + used, len - used, "%s'%s' (id %" PRIu64 ")",
		    used > 0 ? ", " : "", i->spec.name, i->id);
		if (w > 0 && (size_t)w < len - used)
			used += w;
	}
	return n;
}

/*
 * Default: stop every instance as instance.stop does, then exit (what a
 * supervisord user expects). kill_instances: false leaves them running,
 * and is refused while wardd reads an instance's captured output: its
 * payload would die of SIGPIPE (until output survives a restart).
 */
static void
cmd_shutdown_exec(struct request *req)
{
	int kill = req->args[0] == NULL || req->args[0]->via.boolean;
	char names[CMD_SHUTDOWN_NAMES * (SPEC_MAX_NAME + 32)];
	unsigned n;

	if (!kill && (n = cmd_shutdown_captured(names, sizeof names)) > 0) {
		cmd_error(req, WARD_E_INVALID_STATE, "kill_instances: false "
		    "would leave %u instance%s whose output wardd captures to "
		    "die of SIGPIPE once wardd exits: %s%s; stop %s first, or "
		    "shut down with kill_instances: true", n, n == 1 ? "" : "s",
		    names, n > CMD_SHUTDOWN_NAMES ? ", ..." : "",
		    n == 1 ? "it" : "them");
		return;
	}

	log_notice("ward.shutdown from uid %u pid %d%s", (unsigned)req->c->peer.uid,
	    (int)req->c->peer.pid, kill ? "" : " (leaving instances running)");
	cmd_ok(req);
	conn_flush(req->c);
	shutdown_begin(kill);
}

const struct cmd_entry cmd_shutdown_entry = {
	.name = WARD_M_SHUTDOWN,
	.args = cmd_shutdown_args,
	.flags = CMD_ADMIN,
	.exec = cmd_shutdown_exec,
};

/* ---- ward.fds: every fd wardd holds, and its owner (admins). */

struct cmd_fds_list {
	msgpack_packer	*pk;		/* NULL: counting */
	unsigned	 n;
};

static void
cmd_fds_visit(int fd, const char *what, void *arg)
{
	struct cmd_fds_list *l = arg;

	l->n++;
	if (l->pk == NULL)
		return;
	msgpack_pack_map(l->pk, 2);
	codec_pack_kv_int(l->pk, "fd", fd);
	codec_pack_kv_str(l->pk, "owner", what);
}

/*
 * Each owner lists its own (the *_fds functions): stdio, the listener and
 * spare, each connection, each instance with its output and metrics
 * reads, STATE_DIR's, cgroup.c's, the fd reserve, the journal socket,
 * spawn.c's /dev/null and slots. Not listed, as the libraries own them and
 * do not say which they are: libev's epoll and wakeup fds (a new loop
 * makes its own) and libsystemd's journal socket. A re-exec must carry
 * exactly these.
 */
static void
cmd_fds_walk(fd_visit_fn fn, void *arg)
{
	struct instance *i;
	struct conn *c;
	int k;

	for (k = 0; k <= 2; k++)
		fn(k, "stdio", arg);
	server_fds(fn, arg);
	TAILQ_FOREACH(c, &conns, entry)
		conn_fds(c, fn, arg);
	TAILQ_FOREACH(i, &instances, entry) {
		instance_fds(i, fn, arg);
		metrics_fds(i, fn, arg);
		control_fds(i, fn, arg);
	}
	statedir_fds(fn, arg);
	channel_fds(fn, arg);
	closer_fds(fn, arg);
	trash_fds(fn, arg);
	dumps_fds(fn, arg);
	cgroup_fds(fn, arg);
	fdstore_fds(fn, arg);
	budget_fds(fn, arg);
	output_journal_fds(fn, arg);
	history_file_fds(fn, arg);
	snapshot_fds(fn, arg);
	spawn_fds(fn, arg);
	http_fds(fn, arg);
	hooks_orphan_fds(fn, arg);
}

static void
cmd_fds_exec(struct request *req)
{
	struct cmd_fds_list l = { NULL, 0 };
	msgpack_packer pk;

	cmd_fds_walk(cmd_fds_visit, &l);	/* count, then pack */
	cmd_result(req, &pk);
	msgpack_pack_array(&pk, l.n);
	l.pk = &pk;
	l.n = 0;
	cmd_fds_walk(cmd_fds_visit, &l);
}

const struct cmd_entry cmd_fds_entry = {
	.name = WARD_M_FDS,
	.args = cmd_no_args,
	.flags = CMD_ADMIN,
	.exec = cmd_fds_exec,
};

/* ---- ward.reexec: wardd replaces its image, keeping everything (admins). */

static const struct arg_spec cmd_reexec_args[] = {
	{ "exe", ARG_STR },
	{ NULL, 0 }
};

/* Answered by reexec.c once the new binary is checked (or at once, refused). */
static void
cmd_reexec_exec(struct request *req)
{
	struct ward_err e = WARD_ERR_INIT;
	char *exe = NULL;

	if (req->args[0] != NULL && (exe = codec_strdup(req->args[0])) == NULL) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "exe holds a NUL byte");
		return;
	}
	if (reexec_begin(exe, req->c, req->msgid, &e) == -1)
		cmd_fail(req, &e);
	else
		req->replied = 1;
	free(exe);
}

const struct cmd_entry cmd_reexec_entry = {
	.name = WARD_M_REEXEC,
	.args = cmd_reexec_args,
	.flags = CMD_ADMIN,
	.exec = cmd_reexec_exec,
};

/* ---- ward.metrics: the text exposition (openmetrics.c), as a string. */

static const struct arg_spec cmd_metrics_args[] = {
	{ "format", ARG_STR },
	{ NULL, 0 }
};

/*
 * format "openmetrics" (the default) or "text" (Prometheus' 0.0.4 format,
 * what promtool checks). Everyone may ask: the instances listed are those
 * the peer may see (openmetrics.c says what else is shown).
 */
static void
cmd_metrics_exec(struct request *req)
{
	struct openmetrics_text t = { NULL, 0, 0, 0 };
	msgpack_packer pk;
	int om = 1;

	if (req->args[0] != NULL) {
		if (codec_streq(req->args[0], "text"))
			om = 0;
		else if (!codec_streq(req->args[0], "openmetrics")) {
			cmd_error(req, WARD_E_INVALID_ARGUMENT, "'format' is "
			    "\"openmetrics\" or \"text\"");
			return;
		}
	}
	openmetrics_build(&t, &req->c->peer, om);
	if (t.failed)
		cmd_error(req, WARD_E_INTERNAL, "out of memory");
	else {
		cmd_result(req, &pk);
		msgpack_pack_str(&pk, t.len);
		msgpack_pack_str_body(&pk, t.data, t.len);
	}
	free(t.data);
}

const struct cmd_entry cmd_metrics_entry = {
	.name = WARD_M_METRICS,
	.args = cmd_metrics_args,
	.flags = 0,
	.exec = cmd_metrics_exec,
};
