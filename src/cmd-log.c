/*
 * cmd-log.c: instance.log (the captured output, and following it) and
 * ward.logrotate. The capturing itself is output.c's.
 *
 * layer: commands
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const struct arg_spec cmd_log_args[] = {
	{ "id", ARG_UINT },		/* CMD_INSTANCE: id, name first */
	{ "name", ARG_STR },
	{ "stream", ARG_STR },
	{ "bytes", ARG_UINT },
	{ "follow", ARG_BOOL },
	{ "hold", ARG_BOOL },
	{ NULL, 0 }
};

/*
 * The end of a stream's ring, at most bytes (and OUTPUT_READ_MAX) of it.
 * follow true: new output comes as ward.log notifications from now on;
 * follow false: it stops; absent: as it was. hold (with follow): a
 * block-mode stream waits for this follower instead of dropping it.
 */
static void
cmd_log_exec(struct request *req)
{
	struct instance *i = req->inst;
	struct ward_err e = WARD_ERR_INIT;
	uint64_t bytes = req->args[3] ? req->args[3]->via.u64 : OUTPUT_READ_MAX;
	msgpack_packer pk;
	int stream = OUTPUT_STDOUT;
	char *s, *data;

	if (req->args[2] != NULL) {
		s = codec_strdup(req->args[2]);
		stream = s == NULL ? -1 : output_stream_parse(s);
		free(s);
		if (stream == -1) {
			cmd_error(req, WARD_E_INVALID_ARGUMENT, "'stream' is "
			    "\"stdout\" (the default) or \"stderr\"");
			return;
		}
	}
	if (i->spec.output == NULL) {
		cmd_error(req, WARD_E_INVALID_STATE, "instance '%s' does not "
		    "capture its output; create it with capture_output: true",
		    i->spec.name);
		return;
	}
	/*
	 * A follower's first answer must leave room in its output cap for what
	 * follows, or the tail alone would get it dropped as a slow reader.
	 */
	if (req->args[4] != NULL && req->args[4]->via.boolean &&
	    bytes > CONN_OUT_CAP / 2)
		bytes = CONN_OUT_CAP / 2;
	if ((data = output_tail(i, stream, bytes)) == NULL) {
		cmd_error(req, WARD_E_INTERNAL, "out of memory");
		return;
	}
	if (req->args[4] != NULL && req->args[4]->via.boolean) {
		if (output_follow(req->c, i, stream, req->args[5] != NULL &&
		    req->args[5]->via.boolean, &e) == -1) {
			cmd_fail(req, &e);
			free(data);
			return;
		}
	} else if (req->args[4] != NULL)
		output_unfollow(req->c, i, stream);
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 3);
	codec_pack_kv_str(&pk, "data", data);
	codec_pack_kv_uint(&pk, "dropped", output_dropped(i, stream));
	codec_pack_kv_str(&pk, "stream", output_stream_name(stream));
	free(data);
}

const struct cmd_entry cmd_log_entry = {
	.name = WARD_M_LOG,
	.args = cmd_log_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_log_exec,
};

static const struct arg_spec cmd_logrotate_args[] = { { NULL, 0 } };

/* Reopen every open log file (SIGUSR1 does the same). */
static void
cmd_logrotate_exec(struct request *req)
{
	msgpack_packer pk;
	unsigned n, failed;

	n = output_reopen_all(&failed);
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 3);
	codec_pack_kv_bool(&pk, "ok", 1);
	codec_pack_kv_uint(&pk, "reopened", n);
	codec_pack_kv_uint(&pk, "failed", failed);
}

const struct cmd_entry cmd_logrotate_entry = {
	.name = WARD_M_LOGROTATE,
	.args = cmd_logrotate_args,
	.flags = CMD_ADMIN,
	.exec = cmd_logrotate_exec,
};
