/*
 * control_payload.c: a payload served by libward's ward_control_serve, for
 * test_control.py: it listens at $WARD_CONTROL_SOCKET and answers
 *   echo   its params, as given
 *   add    the sum of its params (integers)
 *   fail   the error "it failed" (a string)
 *   nil    nothing packed: a nil result
 * and any other method with the error {"message": "no method M"}.
 */
#include <stdio.h>
#include <string.h>

#include "ward.h"

static void
pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static int
serve_cb(const char *method, const msgpack_object *params,
    msgpack_packer *out, void *arg)
{
	int64_t sum = 0;
	uint32_t k;
	char msg[300];

	(void)arg;
	if (strcmp(method, "echo") == 0) {
		msgpack_pack_object(out, *params);
		return 0;
	}
	if (strcmp(method, "add") == 0) {
		for (k = 0; k < params->via.array.size; k++)
			sum += params->via.array.ptr[k].via.i64;
		msgpack_pack_int64(out, sum);
		return 0;
	}
	if (strcmp(method, "nil") == 0)
		return 0;
	if (strcmp(method, "fail") == 0) {
		pack_str(out, "it failed");
		return -1;
	}
	snprintf(msg, sizeof msg, "no method %s", method);
	msgpack_pack_map(out, 1);
	pack_str(out, "message");
	pack_str(out, msg);
	return -1;
}

int
main(void)
{
	ward_control_serve(serve_cb, NULL);
	perror("ward_control_serve");
	return 1;
}
