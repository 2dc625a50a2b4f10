/*
 * cmd.c: the command table and the path every request takes: check the
 * msgpack-RPC envelope, find the method, check who may call it, match the
 * params against the command's spec, resolve the target instance, run it.
 * Authorization is asked here, once per request, not in each command: the
 * decision itself is peer.c's (peer_may: admin-only commands, instances the
 * peer may see); so is the check of the per-uid budgets a request can hit
 * at once (budget.c).
 *
 * The error convention, for the whole daemon: a function that can fail for
 * a reason the client should read takes a struct ward_err (util.c) and
 * returns 0 (or a pointer) on success, -1 (or NULL) on failure with both
 * the WARD_E_* code and the message set, out of memory included; a
 * system-level helper (util.c, spawn_pidfd_open, ...) returns -1 and sets
 * errno instead. Handlers keep one struct ward_err, starting WARD_ERR_INIT,
 * and reply with cmd_fail (or cmd_error for their own words), the belt: an
 * empty message becomes "CODE (no details)" and every message is made
 * valid UTF-8, so no reply can carry uninitialised or invalid bytes.
 *
 * layer: commands
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_hello_entry,
	&cmd_stats_entry,
	&cmd_shutdown_entry,
	&cmd_fds_entry,
	&cmd_reexec_entry,
	&cmd_create_entry,
	&cmd_start_entry,
	&cmd_run_entry,
	&cmd_status_entry,
	&cmd_list_entry,
	&cmd_kill_entry,
	&cmd_stop_entry,
	&cmd_suspend_entry,
	&cmd_resume_entry,
	&cmd_payload_entry,
	&cmd_remove_entry,
	&cmd_history_entry,
	&cmd_subscribe_entry,
	&cmd_unsubscribe_entry,
	&cmd_reread_entry,
	&cmd_update_entry,
	&cmd_reload_entry,
	&cmd_log_entry,		/* cmd-log.c */
	&cmd_logrotate_entry,
	&cmd_pidfd_entry,
	&cmd_metrics_entry,	/* cmd-ward.c */
	&cmd_call_entry,	/* cmd-control.c */
	&cmd_clear_log_entry,	/* cmd-compat.c */
	&cmd_maintail_entry,
	NULL
};

uint64_t cmd_requests;	/* requests dispatched (openmetrics.c) */

/* Start a success response; the caller packs exactly one object after. */
msgpack_packer *
cmd_result(struct request *req, msgpack_packer *pk)
{
	conn_packer(req->c, pk);
	msgpack_pack_array(pk, 4);
	msgpack_pack_int(pk, WARD_MSG_RESPONSE);
	msgpack_pack_uint32(pk, req->msgid);
	msgpack_pack_nil(pk);
	req->replied = 1;
	return pk;
}

/* Reply {"ok": true}: for commands whose effect is the answer. */
void
cmd_ok(struct request *req)
{
	msgpack_packer pk;

	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 1);
	codec_pack_kv_bool(&pk, "ok", 1);
}

/*
 * Reply with an error. The message may quote the client's input (cut at a
 * byte count, maybe inside a character) or come from a callee that failed
 * to write one: it goes out as valid UTF-8 and never empty.
 */
void
cmd_error(struct request *req, const char *code, const char *fmt, ...)
{
	msgpack_packer pk;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (msg[0] == '\0')
		snprintf(msg, sizeof msg, "%s (no details)", code);
	conn_packer(req->c, &pk);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_RESPONSE);
	msgpack_pack_uint32(&pk, req->msgid);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_str(&pk, "code", code);
	codec_pack_kv_text(&pk, "message", msg);	/* may quote the client */
	msgpack_pack_nil(&pk);
	req->replied = 1;
}

/* Reply with the error a callee filled in (cmd_error's belt included). */
void
cmd_fail(struct request *req, const struct ward_err *e)
{
	cmd_error(req, e->code != NULL ? e->code : WARD_E_INTERNAL, "%s",
	    e->msg);
}

static const struct cmd_entry *
cmd_find(const msgpack_object *method)
{
	int k;

	for (k = 0; cmd_table[k] != NULL; k++) {
		if (codec_streq(method, cmd_table[k]->name))
			return cmd_table[k];
	}
	return NULL;
}

/*
 * args[0] is "id", args[1] "name" in every CMD_INSTANCE spec. An instance
 * the peer may not see is not_found, word for word as a missing one, so no
 * one learns another user's ids or names by probing (names are shared by
 * all users: only create's `exists` tells that one is taken, and by whom it
 * does not say).
 */
static int
cmd_resolve_instance(struct request *req)
{
	const msgpack_object *id = req->args[0], *name = req->args[1];
	struct instance *i = NULL;
	char *s;

	if (id != NULL && name != NULL) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "give 'id' or 'name', not both");
		return -1;
	}
	if (id != NULL) {
		if ((i = instance_find_id(id->via.u64)) == NULL ||
		    !peer_may(&req->c->peer, PEER_SEE, i->owner_uid)) {
			cmd_error(req, WARD_E_NOT_FOUND, "no instance with id %" PRIu64,
			    id->via.u64);
			return -1;
		}
	} else if (name != NULL) {
		/* A name no instance could have is a bad argument, not a miss. */
		if ((s = codec_strdup(name)) == NULL ||
		    !utf8_valid(s, strlen(s)) || s[0] == '\0' ||
		    strlen(s) > SPEC_MAX_NAME) {
			cmd_error(req, WARD_E_INVALID_ARGUMENT, "'name' must be "
			    "1 to %d bytes of UTF-8 text without NUL",
			    SPEC_MAX_NAME);
			free(s);
			return -1;
		}
		if ((i = instance_find_name(s)) == NULL ||
		    !peer_may(&req->c->peer, PEER_SEE, i->owner_uid)) {
			cmd_error(req, WARD_E_NOT_FOUND, "no instance named '%s'", s);
			free(s);
			return -1;
		}
		free(s);
	} else {
		cmd_error(req, WARD_E_INVALID_ARGUMENT,
		    "name the instance with 'id' or 'name'");
		return -1;
	}
	req->inst = i;
	return 0;
}

/*
 * Handle one unpacked message from c. Requests get exactly one response;
 * notifications from clients are ignored (some clients send one on connect);
 * an object that is not msgpack-RPC at all gets a ward.error notification.
 */
void
cmd_dispatch(struct conn *c, const msgpack_object *o, int *fds, int nfds)
{
	const msgpack_object *params = NULL, *method;
	const struct cmd_entry *ce;
	struct request req;
	struct ward_err e = WARD_ERR_INIT;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3 ||
	    o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		conn_protocol_error(c, WARD_E_PROTOCOL, "expected a msgpack-RPC "
		    "message: [0, msgid, method, params]");
		return;
	}
	switch (o->via.array.ptr[0].via.u64) {
	case WARD_MSG_NOTIFY:
	case WARD_MSG_RESPONSE:
		return;
	case WARD_MSG_REQUEST:
		break;
	default:
		conn_protocol_error(c, WARD_E_PROTOCOL, "unknown message type %" PRIu64,
		    o->via.array.ptr[0].via.u64);
		return;
	}
	if (o->via.array.size != 4 ||
	    o->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->via.array.ptr[1].via.u64 > UINT32_MAX) {
		conn_protocol_error(c, WARD_E_PROTOCOL, "a request is [0, msgid "
		    "(uint32), method, params]");
		return;
	}
	cmd_requests++;
	memset(&req, 0, sizeof req);
	req.c = c;
	req.msgid = o->via.array.ptr[1].via.u64;
	req.fds = fds;
	req.nfds = nfds;
	method = &o->via.array.ptr[2];
	if (!codec_is_str(method)) {
		cmd_error(&req, WARD_E_INVALID_ARGUMENT, "method must be a string");
		return;
	}
	if (o->via.array.ptr[3].type != MSGPACK_OBJECT_ARRAY ||
	    o->via.array.ptr[3].via.array.size > 1) {
		cmd_error(&req, WARD_E_INVALID_ARGUMENT,
		    "params must be an array holding one map (or empty)");
		return;
	}
	if (o->via.array.ptr[3].via.array.size == 1)
		params = &o->via.array.ptr[3].via.array.ptr[0];
	if ((ce = cmd_find(method)) == NULL) {
		const char *p = method->type == MSGPACK_OBJECT_STR ?
		    method->via.str.ptr : method->via.bin.ptr;
		uint32_t n = method->type == MSGPACK_OBJECT_STR ?
		    method->via.str.size : method->via.bin.size;

		cmd_error(&req, WARD_E_NO_SUCH_METHOD, "no method '%.*s'",
		    (int)(n > 64 ? 64 : n), p);
		return;
	}
	if ((ce->flags & CMD_ADMIN) && !peer_may(&c->peer, PEER_ADMIN, 0)) {
		cmd_error(&req, WARD_E_PERMISSION, "%s is for root or wardd's own "
		    "user only", ce->name);
		return;
	}
	/*
	 * Budgets (budget.c), beside authorization: fds came with it, and its
	 * uid holds more than it may (these included). Refused whatever the
	 * method; conn.c closes them after this returns.
	 */
	if (nfds > 0 && budget_check(c->peer.uid, BUDGET_FDS, 0, &e) == -1) {
		cmd_fail(&req, &e);
		return;
	}
	if (codec_args(params, ce->args, req.args, &e) == -1) {
		cmd_error(&req, e.code, "%s: %s", ce->name, e.msg);
		return;
	}
	if ((ce->flags & CMD_INSTANCE) && cmd_resolve_instance(&req) == -1)
		return;
	ce->exec(&req);
	if (!req.replied)
		cmd_error(&req, WARD_E_INTERNAL, "%s gave no answer", ce->name);
}
