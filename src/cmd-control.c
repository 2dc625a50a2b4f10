/*
 * cmd-control.c: instance.call, a request relayed to the payload over its
 * control socket (control.c does the relaying). The answer comes later,
 * through cmd_call_reply, unless the client has gone by then.
 *
 * layer: commands
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const struct arg_spec cmd_call_args[] = {
	{ "id", ARG_UINT },		/* CMD_INSTANCE: id, name first */
	{ "name", ARG_STR },
	{ "method", ARG_STR },
	{ "params", ARG_ANY },
	{ "timeout_ms", ARG_UINT },
	{ NULL, 0 }
};

/*
 * control.c's answer to the client's request msgid on c: the payload's
 * result, wardd's error, or the payload's own error as call_failed with
 * the error object itself as the error map's "data".
 */
static void
cmd_call_reply(struct conn *c, uint32_t msgid, const char *code,
    const char *msg, const msgpack_object *obj)
{
	struct request req = { .c = c, .msgid = msgid };
	msgpack_packer pk;

	if (code == NULL) {
		cmd_result(&req, &pk);
		msgpack_pack_object(&pk, *obj);
		return;
	}
	if (obj == NULL) {
		cmd_error(&req, code, "%s", msg);
		return;
	}
	conn_packer(c, &pk);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_RESPONSE);
	msgpack_pack_uint32(&pk, msgid);
	msgpack_pack_map(&pk, 3);
	codec_pack_kv_str(&pk, "code", code);
	codec_pack_kv_text(&pk, "message", msg);	/* the payload's words */
	codec_pack_key(&pk, "data");
	msgpack_pack_object(&pk, *obj);
	msgpack_pack_nil(&pk);
}

/*
 * {id|name, method, params?, timeout_ms?}: the payload's answer to
 * method(params), within timeout_ms (1 to CONTROL_TIMEOUT_MAX_MS, default
 * CONTROL_TIMEOUT_MS). The owner's or an admin's (CMD_INSTANCE).
 */
static void
cmd_call_exec(struct request *req)
{
	struct ward_err e = WARD_ERR_INIT;
	const msgpack_object *method = req->args[2];
	uint64_t timeout = CONTROL_TIMEOUT_MS;
	uint32_t n;

	if (method == NULL) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "'method' is required");
		return;
	}
	n = method->type == MSGPACK_OBJECT_STR ? method->via.str.size :
	    method->via.bin.size;
	if (n == 0 || n > 256) {
		cmd_error(req, WARD_E_INVALID_ARGUMENT, "'method' must be 1 to "
		    "256 bytes");
		return;
	}
	if (req->args[4] != NULL) {
		timeout = req->args[4]->via.u64;
		if (timeout < 1 || timeout > CONTROL_TIMEOUT_MAX_MS) {
			cmd_error(req, WARD_E_INVALID_ARGUMENT, "'timeout_ms' "
			    "must be 1 to %d", CONTROL_TIMEOUT_MAX_MS);
			return;
		}
	}
	if (control_call(req->inst, req->c, req->msgid, req->c->peer.uid,
	    method, req->args[3], timeout, cmd_call_reply, &e) == -1)
		cmd_fail(req, &e);
	else
		req->replied = 1;	/* later, by cmd_call_reply */
}

const struct cmd_entry cmd_call_entry = {
	.name = WARD_M_CALL,
	.args = cmd_call_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_call_exec,
};
