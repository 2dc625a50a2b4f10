/*
 * ctl-control.c: wardctl call, a request relayed to an instance's payload
 * over its control channel (instance.call). Its params are JSON, read
 * by jansson (a maintained parser of RFC 8259: escapes, surrogate pairs,
 * number syntax and its error positions are its to get right, not ours)
 * and packed as msgpack; integers stay integers, other numbers are
 * doubles. The result is printed as JSON (ctl_json_line: json.c's
 * emitter, shared with wardd), whatever --json says.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

#define CTL_JSON_DEPTH	32	/* what wardd's codec would take anyway */

/* v as msgpack: integers stay integers, reals are doubles; -1 past
 * CTL_JSON_DEPTH levels. */
static int
ctl_json_pack(json_t *v, msgpack_packer *pk, int depth)
{
	const char *k;
	json_t *m;
	size_t i;

	if (depth > CTL_JSON_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(v));
		json_object_foreach(v, k, m) {
			msgpack_pack_str(pk, strlen(k));
			msgpack_pack_str_body(pk, k, strlen(k));
			if (ctl_json_pack(m, pk, depth + 1) == -1)
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(v));
		json_array_foreach(v, i, m) {
			if (ctl_json_pack(m, pk, depth + 1) == -1)
				return -1;
		}
		return 0;
	case JSON_STRING:
		msgpack_pack_str(pk, json_string_length(v));
		return msgpack_pack_str_body(pk, json_string_value(v),
		    json_string_length(v));
	case JSON_INTEGER:
		return msgpack_pack_int64(pk, json_integer_value(v));
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(v));
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	default:
		return msgpack_pack_nil(pk);
	}
}

/*
 * text as one JSON value (any, not only an object or array; "\u0000" kept),
 * packed into out; -1 after saying what is wrong and where.
 */
static int
ctl_json_parse(const char *text, msgpack_sbuffer *out)
{
	msgpack_packer pk;
	json_error_t err;
	json_t *v;
	int rc;

	if ((v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err)) ==
	    NULL) {
		fprintf(stderr, "wardctl: params are not JSON: %s at offset "
		    "%d\n", err.text, err.position);
		return -1;
	}
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	rc = ctl_json_pack(v, &pk, 0);
	json_decref(v);
	if (rc == -1)
		fprintf(stderr, "wardctl: params are not JSON wardd takes: nested "
		    "more than %d deep\n", CTL_JSON_DEPTH);
	return rc;
}

/* ---- call: relay METHOD(PARAMS) to an instance's payload */

static int
ctl_call_exec(struct ctl *c, int argc, char **argv)
{
	msgpack_sbuffer params;
	struct ward_reply r;
	unsigned long timeout = 0;
	char *end;
	int rc;

	if (argc >= 2 && strcmp(argv[0], "--timeout") == 0) {
		errno = 0;
		timeout = strtoul(argv[1], &end, 10);
		if (errno != 0 || *end != '\0' || end == argv[1] ||
		    timeout == 0 || timeout > 60000)
			return ctl_usage_error("--timeout takes 1 to 60000 "
			    "milliseconds");
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || argc > 3)
		return EX_USAGE;
	msgpack_sbuffer_init(&params);
	if (argc == 3 && ctl_json_parse(argv[2], &params) == -1) {
		msgpack_sbuffer_destroy(&params);
		return EX_USAGE;
	}
	if (ctl_connect(c) == -1) {
		msgpack_sbuffer_destroy(&params);
		return EX_UNREACHABLE;
	}
	rc = ward_instance_call(c->w, argv[0], argv[1],
	    argc == 3 ? params.data : NULL, params.size, timeout, &r);
	msgpack_sbuffer_destroy(&params);
	if (rc == -1) {
		ward_reply_free(&r);
		return ctl_failed(c, argv[0]);
	}
	ctl_json_line(&r.result);
	ward_reply_free(&r);
	return 0;
}

const struct ctl_entry ctl_call_entry = {
	.name = "call",
	.usage = "call [--timeout MS] NAME METHOD [JSON]",
	.help = "Relay METHOD with params JSON (an array, or one value) to the "
	    "payload's control socket (control: true); print its result as "
	    "JSON.",
	.exec = ctl_call_exec,
};
