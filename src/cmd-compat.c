/*
 * cmd-compat.c: the methods supervisorctl's habits needed that ward had
 * no word for: instance.clear_log (supervisorctl's clear: forget an
 * instance's captured output) and ward.maintail (supervisorctl's
 * maintail: wardd's own recent log, logring.c's).
 *
 * layer: commands
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "output.h"

static const struct arg_spec cmd_clear_log_args[] = {
	{ "id", ARG_UINT },		/* CMD_INSTANCE: id, name first */
	{ "name", ARG_STR },
	{ NULL, 0 }
};

/*
 * Empty both rings (what instance.log and its followers read from now
 * on); the log files are the user's, and stay as they are. The header of
 * a memfd ring follows (output_ring_commit publishes it), so a crash
 * does not bring the cleared bytes back.
 */
static void
cmd_clear_log_exec(struct request *req)
{
	struct instance *i = req->inst;
	struct output_stream *st;
	msgpack_packer pk;
	int k;

	if (i->spec.output == NULL) {
		cmd_error(req, WARD_E_INVALID_STATE, "instance '%s' does not "
		    "capture its output; create it with capture_output: true",
		    i->spec.name);
		return;
	}
	for (k = 0; i->output != NULL && k < OUTPUT_NSTREAMS; k++) {
		st = &i->output->s[k];
		if (st->ring == NULL)
			continue;
		st->ring_start = st->ring_len = 0;
		output_ring_commit(st, 0);
	}
	log_info("instance %s: captured output cleared", i->spec.name);
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 1);
	codec_pack_kv_bool(&pk, "ok", 1);
}

const struct cmd_entry cmd_clear_log_entry = {
	.name = WARD_M_CLEAR_LOG,
	.args = cmd_clear_log_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_clear_log_exec,
};

static const struct arg_spec cmd_maintail_args[] = {
	{ "bytes", ARG_UINT },
	{ "since", ARG_UINT },
	{ NULL, 0 }
};

/*
 * The end of wardd's log, or what came after since (maintail -f asks
 * with the end it was given last): admins only, as it names everyone's
 * instances.
 */
static void
cmd_maintail_exec(struct request *req)
{
	uint64_t bytes = req->args[0] ? req->args[0]->via.u64 : 1600;
	uint64_t since = req->args[1] ? req->args[1]->via.u64 : 0, end;
	msgpack_packer pk;
	char *raw, *data;

	/* Valid UTF-8 for any client: a log line may quote a payload's bytes. */
	if ((raw = logring_tail(bytes, since, &end)) == NULL ||
	    (data = utf8_clean(raw, strlen(raw))) == NULL) {
		free(raw);
		cmd_error(req, WARD_E_INTERNAL, "out of memory");
		return;
	}
	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_str(&pk, "data", data);
	codec_pack_kv_uint(&pk, "end", end);
	free(data);
	free(raw);
}

const struct cmd_entry cmd_maintail_entry = {
	.name = WARD_M_MAINTAIL,
	.args = cmd_maintail_args,
	.flags = CMD_ADMIN,
	.exec = cmd_maintail_exec,
};
