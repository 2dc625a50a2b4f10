/*
 * cmd-instance.c: the instance.* commands. cmd.c has already checked the
 * arguments' types and, for CMD_INSTANCE commands, found the instance and
 * checked that the peer may touch it; what is left here is each command's
 * own rule about state.
 *
 * layer: commands
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

/* Every CMD_INSTANCE spec starts with these two (cmd_resolve_instance). */
#define INSTANCE_ARGS	{ "id", ARG_UINT }, { "name", ARG_STR }

static const struct arg_spec cmd_instance_args[] = {
	INSTANCE_ARGS,
	{ NULL, 0 }
};

static void
cmd_state_error(struct request *req, const char *what)
{
	cmd_error(req, WARD_E_INVALID_STATE, "instance '%s' is %s; %s",
	    req->inst->spec.name, instance_state_name(req->inst->state), what);
}

/* create and run share this: parse, check the name, make the instance. */
static struct instance *
cmd_create_instance(struct request *req)
{
	struct instance_spec cfg;
	struct instance *i;
	struct ward_err e = WARD_ERR_INIT;

	/* A shutdown waits for every instance: none may start meanwhile. */
	if (shutdown_pending()) {
		cmd_error(req, WARD_E_INVALID_STATE, "wardd is shutting down");
		return NULL;
	}
	/* First: whether c may create at all, before its paths are looked at. */
	if (instance_may_create(&req->c->peer, &e) == -1) {
		cmd_fail(req, &e);
		return NULL;
	}
	if (spec_parse_args(&cfg, req->args, &req->c->peer, &e) == -1 ||
	    spec_parse_fds(&cfg, req->args, req->fds, req->nfds, &e) == -1) {
		spec_free(&cfg);
		cmd_fail(req, &e);
		return NULL;
	}
	/*
	 * Names are shared by all users, so a taken one must be refused; the
	 * answer is the same whoever holds it and names neither owner nor id.
	 */
	if (cfg.name != NULL && instance_find_name(cfg.name) != NULL) {
		cmd_error(req, WARD_E_EXISTS, "an instance named '%s' already "
		    "exists; remove it first or choose another name", cfg.name);
		spec_free(&cfg);
		return NULL;
	}
	/* confdir.c: declared names are the programs', admins' requests too. */
	if (cfg.name != NULL &&
	    confdir_name_reserved(cfg.name, req->c->peer.admin, &e) == -1) {
		cmd_fail(req, &e);
		spec_free(&cfg);
		return NULL;
	}
	/* A non-admin's payload: no more than its requester's own limits. */
	if (!req->c->peer.admin &&
	    userlimits_read(&req->c->peer, &cfg.user_limits, &e) == -1) {
		cmd_fail(req, &e);
		spec_free(&cfg);
		return NULL;
	}
	if ((i = instance_new(&cfg, &req->c->peer, &e)) == NULL) {
		spec_free(&cfg);
		/* Out of memory, or the id counter could not be persisted. */
		cmd_fail(req, &e);
		return NULL;
	}
	return i;
}

/* What "state" says: "starting" while hooks.c's pre_start runs. */
static const char *
cmd_state_name(const struct instance *i)
{
	return hooks_starting(i) ? "starting" : instance_state_name(i->state);
}

static void
cmd_reply_id(struct request *req, const struct instance *i)
{
	msgpack_packer pk;

	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 4);
	codec_pack_kv_uint(&pk, "id", i->id);
	codec_pack_kv_str(&pk, "name", i->spec.name);
	codec_pack_kv_str(&pk, "state", cmd_state_name(i));
	codec_pack_key(&pk, "pid");
	if (i->state == INSTANCE_RUNNING)
		msgpack_pack_int64(&pk, i->pid);
	else
		msgpack_pack_nil(&pk);
}

static void
cmd_create_exec(struct request *req)
{
	struct instance *i;

	if ((i = cmd_create_instance(req)) != NULL)
		cmd_reply_id(req, i);
}

const struct cmd_entry cmd_create_entry = {
	.name = WARD_M_CREATE,
	.args = spec_args,
	.flags = 0,
	.exec = cmd_create_exec,
};

static void
cmd_start_exec(struct request *req)
{
	struct ward_err e = WARD_ERR_INIT;

	if (shutdown_pending()) {
		cmd_error(req, WARD_E_INVALID_STATE, "wardd is shutting down");
		return;
	}
	if (instance_can_start(req->inst, &e) == -1) {
		cmd_fail(req, &e);
		return;
	}
	/* Its rings, from its owner's budget: refused before any spawn. */
	if (output_reserve(req->inst, &e) == -1) {
		cmd_fail(req, &e);
		return;
	}
	/* A declared program: its policy starts it (and clears fatal). */
	if (req->inst->program != NULL) {
		if (program_start(req->inst->program, &e) == -1)
			cmd_fail(req, &e);
		else
			cmd_reply_id(req, req->inst);
		snapshot_dirty();	/* its policy's state changed */
		return;
	}
	if (instance_start(req->inst, &e) == -1) {
		cmd_fail(req, &e);
		return;
	}
	cmd_reply_id(req, req->inst);
}

const struct cmd_entry cmd_start_entry = {
	.name = WARD_M_START,
	.args = cmd_instance_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_start_exec,
};

/* create + start. A spawn failure leaves the instance there, failed; a
 * start refused before it began (no room), nothing. */
static void
cmd_run_exec(struct request *req)
{
	struct instance *i;
	struct ward_err e = WARD_ERR_INIT;

	if ((i = cmd_create_instance(req)) == NULL)
		return;
	/* Over its ring budget: as if never created (it never ran). */
	if (output_reserve(i, &e) == -1) {
		instance_remove(i);
		cmd_fail(req, &e);
		return;
	}
	if (instance_start(i, &e) == -1) {
		/* Refused before anything ran (capacity.c): as if never
		 * created, as over its ring budget. */
		if (i->state == INSTANCE_NOT_STARTED) {
			instance_remove(i);
			cmd_fail(req, &e);
			return;
		}
		cmd_error(req, e.code, "%s (instance %" PRIu64
		    " is left in state failed)", e.msg, i->id);
		return;
	}
	cmd_reply_id(req, i);
}

const struct cmd_entry cmd_run_entry = {
	.name = WARD_M_RUN,
	.args = spec_args,
	.flags = 0,
	.exec = cmd_run_exec,
};

static void
cmd_pack_argv(msgpack_packer *pk, char **argv)
{
	size_t n;

	for (n = 0; argv[n] != NULL; n++)
		;
	codec_pack_key(pk, "argv");
	msgpack_pack_array(pk, n);
	for (n = 0; argv[n] != NULL; n++)
		codec_pack_str(pk, argv[n]);
}

/*
 * The status map of proto/PROTOCOL.md, with room for extra more pairs the
 * caller packs after it (the program's). A row packer (instance.list's
 * compact form) gets every column: the exit record's nil while there is
 * none.
 */
static void
cmd_pack_instance(const struct instance *i, msgpack_packer *pk, int extra)
{
	static const struct exit_record no_exit;
	const struct exit_record *r = i->exit;
	int nfields = 21 + extra;

	if (r != NULL)
		nfields += EXIT_RECORD_PAIRS;
	nfields += OUTPUT_PACK_FIELDS;	/* output.c: capture_output, log_dropped */
	nfields += 1;			/* cgroup.c: cgroup */
	nfields += 1;			/* spec-limits.c: limits */
	nfields += 1;			/* control.c: control */
	codec_pack_record(pk, nfields);
	codec_pack_kv_uint(pk, "id", i->id);
	codec_pack_kv_str(pk, "name", i->spec.name);
	codec_pack_kv_str(pk, "state", cmd_state_name(i));
	codec_pack_kv_str(pk, "payload_state", payload_state_name(i->payload));
	codec_pack_kv_str(pk, "status_text", INSTANCE_STATUS_TEXT(i));
	codec_pack_key(pk, "pid");
	if (i->state == INSTANCE_RUNNING)
		msgpack_pack_int64(pk, i->pid);
	else
		msgpack_pack_nil(pk);
	cmd_pack_argv(pk, i->spec.argv);
	codec_pack_kv_uint(pk, "owner_uid", i->owner_uid);
	codec_pack_kv_int(pk, "requester_pid", i->requester_pid);
	codec_pack_kv_int(pk, "created_at_ms", i->created_at_ms);
	codec_pack_key(pk, "started_at_ms");
	if (i->started_at_ms != 0)
		msgpack_pack_int64(pk, i->started_at_ms);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "uptime_ms");
	if (i->state == INSTANCE_RUNNING)
		msgpack_pack_uint64(pk,
		    (ev_now(ward_loop) - i->started_mono) * 1000);
	else if (r != NULL)
		msgpack_pack_uint64(pk, r->uptime_ms);
	else
		msgpack_pack_nil(pk);
	codec_pack_kv_bool(pk, "suspended", i->suspended);
	codec_pack_kv_bool(pk, "detect_hangup", i->spec.detect_hangup);
	codec_pack_kv_uint(pk, "hangup_timeout_ms", i->spec.hangup_timeout_ms);
	codec_pack_kv_uint(pk, "notify_dropped", i->notify_dropped);
	codec_pack_kv_str(pk, "notify", i->spec.notify_systemd ? "systemd" : "fd");
	codec_pack_kv_uint(pk, "sd_notify_dropped", i->sd_dropped);
	codec_pack_kv_uint(pk, "watchdog_ms", i->spec.watchdog_ms);
	codec_pack_kv_str(pk, "runtime_dir",
	    i->state == INSTANCE_RUNNING ? i->runtime_dir : NULL);
	codec_pack_key(pk, "metrics");
	metrics_pack(&i->metrics, pk);
	/* cgroup.c: its cgroup directory while there is one (nil otherwise). */
	{
		char cg[PATH_MAX];

		codec_pack_kv_str(pk, "cgroup", cgroup_path(i, cg, sizeof cg));
	}
	codec_pack_key(pk, "limits");
	spec_limits_pack(pk, i->spec.limits);	/* spec-limits.c: nil if not given */
	codec_pack_kv_bool(pk, "control", i->spec.control);	/* instance.call */
	output_pack(i, pk);
	if (r != NULL)
		exit_record_pack(r, pk, 0);
	else if (codec_row_mode(pk)) {
		codec_row_nils(pk, 1);
		exit_record_pack(&no_exit, pk, 0);
		codec_row_nils(pk, 0);
	}
}

/*
 * The status map: the instance's, and its program's when it runs one (a
 * row packer: program.* nil when it runs none).
 */
static void
cmd_pack_status(const struct instance *i, msgpack_packer *pk)
{
	int row = codec_row_mode(pk);

	cmd_pack_instance(i, pk, i->program != NULL);
	if (i->program != NULL || row) {
		if (i->program == NULL)
			codec_row_nils(pk, 1);
		codec_pack_key(pk, "program");
		program_pack(i->program, pk);
		if (i->program == NULL)
			codec_row_nils(pk, 0);
	}
}

static void
cmd_status_exec(struct request *req)
{
	msgpack_packer pk;

	cmd_result(req, &pk);
	cmd_pack_status(req->inst, &pk);
}

const struct cmd_entry cmd_status_entry = {
	.name = WARD_M_STATUS,
	.args = cmd_instance_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_status_exec,
};

static const struct arg_spec cmd_list_args[] = {
	{ "state", ARG_STR },
	{ "compact", ARG_BOOL },
	{ NULL, 0 }
};

#define CMD_LIST_CHUNK	65536	/* the compact form's first buffer */

/* Whether the peer sees i and it is in state (NULL: any). */
static int
cmd_list_match(struct request *req, const struct instance *i,
    const char *state)
{
	return peer_may(&req->c->peer, PEER_SEE, i->owner_uid) &&
	    (state == NULL || strcmp(cmd_state_name(i), state) == 0);
}

/*
 * The compact form: {fields, rows}, each status map's values alone as a
 * row, its nested maps flattened ("metrics.rss_kb"), in the order of
 * fields, which the first instance's names pass packs (every row has the
 * same columns; none when there are no rows).
 */
static void
cmd_list_compact(struct request *req, const char *state)
{
	struct instance *i, *first = NULL;
	msgpack_packer pk, rpk, npk;
	msgpack_sbuffer names;
	struct codec_row row;
	struct buf rows = { 0 };
	size_t width = 0, n = 0;

	msgpack_sbuffer_init(&names);
	msgpack_packer_init(&npk, &names, msgpack_sbuffer_write);
	TAILQ_FOREACH(i, &instances, entry) {
		if (cmd_list_match(req, i, state)) {
			first = i;
			break;
		}
	}
	if (first != NULL) {
		codec_row_init(&rpk, &row, NULL, &npk);
		cmd_pack_status(first, &rpk);
		width = codec_row_end(&rpk);
	}
	/* Room for some 300 rows at once, to spare small reallocs. */
	if ((rows.data = malloc(CMD_LIST_CHUNK)) != NULL)
		rows.cap = CMD_LIST_CHUNK;
	codec_row_init(&rpk, &row, &rows, NULL);
	for (i = first; i != NULL && !row.failed; i = TAILQ_NEXT(i, entry)) {
		if (!cmd_list_match(req, i, state))
			continue;
		n++;
		msgpack_pack_array(&rpk, width);
		cmd_pack_status(i, &rpk);
		if (codec_row_end(&rpk) != width)
			log_warnx("instance.list: instance %" PRIu64 " packed a "
			    "row of another width", i->id);
	}
	if (row.failed || (first != NULL && names.data == NULL))
		cmd_error(req, WARD_E_INTERNAL, "out of memory");
	else {
		cmd_result(req, &pk);
		msgpack_pack_map(&pk, 2);
		codec_pack_key(&pk, "fields");
		msgpack_pack_array(&pk, width);
		conn_queue(req->c, names.data, names.size);	/* packed */
		codec_pack_key(&pk, "rows");
		msgpack_pack_array(&pk, n);
		conn_queue(req->c, rows.data, rows.len);
	}
	msgpack_sbuffer_destroy(&names);
	buf_free(&rows);
}

/* Every instance the peer may see, by id; optionally of one state. */
static void
cmd_list_exec(struct request *req)
{
	struct instance *i;
	msgpack_packer pk;
	char *state = NULL;
	size_t n = 0;

	if (req->args[0] != NULL) {
		state = codec_strdup(req->args[0]);
		if (state == NULL || (strcmp(state, "not_started") != 0 &&
		    strcmp(state, "running") != 0 && strcmp(state, "dead") != 0 &&
		    strcmp(state, "failed") != 0)) {
			cmd_error(req, WARD_E_INVALID_ARGUMENT, "'state' must be "
			    "not_started, running, dead or failed");
			free(state);
			return;
		}
	}
	if (req->args[1] != NULL && req->args[1]->via.boolean) {
		cmd_list_compact(req, state);
		free(state);
		return;
	}
	TAILQ_FOREACH(i, &instances, entry) {
		if (cmd_list_match(req, i, state))
			n++;
	}
	cmd_result(req, &pk);
	msgpack_pack_array(&pk, n);
	TAILQ_FOREACH(i, &instances, entry) {
		if (cmd_list_match(req, i, state))
			cmd_pack_status(i, &pk);
	}
	free(state);
}

const struct cmd_entry cmd_list_entry = {
	.name = WARD_M_LIST,
	.args = cmd_list_args,
	.flags = 0,
	.exec = cmd_list_exec,
};

/* A signal given as a number or a name; -1 (after replying) when invalid. */
static int
cmd_signal_arg(struct request *req, const msgpack_object *o, int def)
{
	char *s;
	int sig;

	if (o == NULL)
		return def;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		sig = o->via.u64 >= 1 && o->via.u64 <= (uint64_t)SIGRTMAX ?
		    (int)o->via.u64 : -1;
	else {
		s = codec_strdup(o);
		sig = s == NULL ? -1 : signal_parse(s);
		free(s);
	}
	if (sig == -1)
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "'signal' must be a signal "
		    "number (1-%d) or name such as TERM or SIGKILL", SIGRTMAX);
	return sig;
}

static const struct arg_spec cmd_kill_args[] = {
	INSTANCE_ARGS,
	{ "signal", ARG_SIGNAL },
	{ "group", ARG_BOOL },
	{ NULL, 0 }
};

static void
cmd_kill_exec(struct request *req)
{
	int sig, group = req->args[3] != NULL && req->args[3]->via.boolean;

	if ((sig = cmd_signal_arg(req, req->args[2], SIGKILL)) == -1)
		return;
	if (req->inst->state != INSTANCE_RUNNING) {
		cmd_state_error(req, "only a running instance can be signalled");
		return;
	}
	if (instance_signal(req->inst, sig, group) == -1) {
		cmd_error(req, WARD_E_INTERNAL, "cannot send %s to instance '%s'",
		    signal_name(sig), req->inst->spec.name);
		return;
	}
	/* exit.c's exit_killed_by: a death by this signal is this client's. */
	req->inst->kill_signal = sig;
	req->inst->kill_uid = req->c->peer.uid;
	req->inst->kill_run = req->inst->runs;
	cmd_ok(req);
}

const struct cmd_entry cmd_kill_entry = {
	.name = WARD_M_KILL,
	.args = cmd_kill_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_kill_exec,
};

static const struct arg_spec cmd_stop_args[] = {
	INSTANCE_ARGS,
	{ "timeout_ms", ARG_UINT },
	{ NULL, 0 }
};

/* SIGTERM to the group, SIGKILL after timeout_ms. Answers at once; the
 * death comes as a "died" event and in status. */
static void
cmd_stop_exec(struct request *req)
{
	uint64_t t = req->args[2] ? req->args[2]->via.u64 : req->inst->program ?
	    req->inst->program->conf->policy.stop_timeout_ms : STOP_TIMEOUT_MS;

	if (t > 3600 * 1000) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT,
		    "'timeout_ms' must be at most 3600000");
		return;
	}
	if (req->inst->state != INSTANCE_RUNNING) {
		/* A program backing off or waiting: its next start is called off. */
		if (req->inst->program != NULL &&
		    program_cancel(req->inst->program) == 0) {
			snapshot_dirty();	/* no instance event says it */
			cmd_ok(req);
			return;
		}
		if (hooks_cancel_start(req->inst) == 0) {	/* pre_start */
			cmd_ok(req);
			return;
		}
		cmd_state_error(req, "only a running instance can be stopped");
		return;
	}
	if (instance_stop(req->inst, t) == -1) {
		cmd_error(req, WARD_E_INTERNAL, "cannot stop instance '%s'",
		    req->inst->spec.name);
		return;
	}
	cmd_ok(req);
}

const struct cmd_entry cmd_stop_entry = {
	.name = WARD_M_STOP,
	.args = cmd_stop_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_stop_exec,
};

static const struct arg_spec cmd_payload_args[] = {
	INSTANCE_ARGS,
	{ "state", ARG_STR },
	{ NULL, 0 }
};

static void
cmd_payload_exec(struct request *req)
{
	enum payload_state s;
	struct ward_err e = WARD_ERR_INIT;
	char *name;

	if (req->args[2] == NULL) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "'state' is required: "
		    "started, ready or finished");
		return;
	}
	name = codec_strdup(req->args[2]);
	if (name == NULL || payload_state_parse(name, &s) == -1 ||
	    s == PAYLOAD_STARTING || s == PAYLOAD_HANGUP) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "'state' must be started, "
		    "ready or finished");
		free(name);
		return;
	}
	free(name);
	if (req->inst->state != INSTANCE_RUNNING) {
		cmd_state_error(req, "only a running instance has a payload state");
		return;
	}
	if (instance_set_payload(req->inst, s, &e) == -1) {
		cmd_fail(req, &e);
		return;
	}
	cmd_ok(req);
}

const struct cmd_entry cmd_payload_entry = {
	.name = WARD_M_PAYLOAD,
	.args = cmd_payload_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_payload_exec,
};

static void
cmd_remove_exec(struct request *req)
{
	if (req->inst->state == INSTANCE_RUNNING) {
		cmd_state_error(req, "stop it before removing it");
		return;
	}
	if (req->inst->program != NULL) {
		cmd_error(req, WARD_E_INVALID_STATE, "'%s' is declared in %s:%d; "
		    "remove it from the config and run update", req->inst->spec.name,
		    req->inst->program->conf->file, req->inst->program->conf->line);
		return;
	}
	instance_remove(req->inst);
	req->inst = NULL;
	cmd_ok(req);
}

const struct cmd_entry cmd_remove_entry = {
	.name = WARD_M_REMOVE,
	.args = cmd_instance_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_remove_exec,
};

static const struct arg_spec cmd_history_args[] = {
	{ "id", ARG_UINT },
	{ "name", ARG_STR },
	{ "limit", ARG_UINT },
	{ NULL, 0 }
};

/* Exit records, oldest first; removed instances' records included. */
static void
cmd_history_exec(struct request *req)
{
	uint64_t id = req->args[0] ? req->args[0]->via.u64 : 0;
	uint64_t limit = req->args[2] ? req->args[2]->via.u64 : HISTORY_MAX;
	msgpack_packer pk;
	char *name = NULL;

	if (req->args[1] != NULL && (name = codec_strdup(req->args[1])) == NULL) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "'name' must not hold NUL");
		return;
	}
	cmd_result(req, &pk);
	history_pack(&pk, &req->c->peer, name, id, limit);
	free(name);
}

const struct cmd_entry cmd_history_entry = {
	.name = WARD_M_HISTORY,
	.args = cmd_history_args,
	.flags = 0,
	.exec = cmd_history_exec,
};

/*
 * A pidfd for the running main process, to the caller by SCM_RIGHTS on the
 * answer's first byte: the client can poll it for the exit and signal it
 * with no pid race. A new one (pidfd_open), not a dup of wardd's: a file
 * description of the client's own, whose flags it may change freely. Held
 * by the conn until sent, in the caller's fd budget.
 */
static void
cmd_pidfd_exec(struct request *req)
{
	struct instance *i = req->inst;
	msgpack_packer pk;
	int fd;

	if (i->state != INSTANCE_RUNNING) {
		cmd_state_error(req, "only a running instance has a pidfd");
		return;
	}
	if (!req->c->peer.admin && budget_used(req->c->peer.uid, BUDGET_FDS) >=
	    budget_limit(req->c->peer.uid, BUDGET_FDS)) {
		cmd_error(req, WARD_E_RESOURCE_EXHAUSTED, "uid %u holds its whole fd budget "
		    "in wardd (%" PRIu64 ")", (unsigned)req->c->peer.uid,
		    (uint64_t)budget_limit(req->c->peer.uid, BUDGET_FDS));
		return;
	}
	/*
	 * A child of wardd's is unreaped while RUNNING: its pid names it. An
	 * adopted one (not_child) is reaped by init, and its pid may be reused
	 * once it died: the new pidfd names it only if wardd's own (checked by
	 * start time at adoption) says it was still alive after the open.
	 */
	if ((fd = sys->pidfd_open(i->pid)) != -1 && i->not_child) {
		struct pollfd pfd = { .fd = i->pidfd, .events = POLLIN };

		if (poll(&pfd, 1, 0) != 0) {
			close(fd);
			cmd_state_error(req, "the instance is exiting");
			return;
		}
	}
	if (fd == -1 || conn_queue_fd(req->c, fd) == -1) {
		cmd_error(req, WARD_E_INTERNAL, "cannot open a pidfd for "
		    "instance '%s': %s", i->spec.name, strerror(errno));
		return;
	}
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_int(&pk, "pid", i->pid);
	codec_pack_kv_uint(&pk, "fds", 1);
}

const struct cmd_entry cmd_pidfd_entry = {
	.name = WARD_M_PIDFD,
	.args = cmd_instance_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_pidfd_exec,
};
