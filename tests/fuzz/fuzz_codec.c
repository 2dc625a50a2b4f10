/*
 * fuzz_codec.c: msgpack-RPC framing. The input is what a client wrote on
 * its socket: a stream of messages, cut as conn.c cuts it. Invariants:
 * - codec_scan never reads past what it is given, and whatever it calls
 *   complete, msgpack-c unpacks whole, to exactly the length it found;
 * - what it calls incomplete, msgpack-c does not call complete either
 *   (checked when no array16/32 or map16/32 makes msgpack-c slow);
 * - msgpack-c's own packing of an accepted object is accepted again, at
 *   its length (the limits count what is written, not how);
 * - codec_args against every command's real argument spec hands back only
 *   values of the types the spec names, or an error with a message.
 * No I/O; nothing is kept between inputs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const struct cmd_entry *const fuzz_codec_cmds[] = {
	&cmd_hello_entry, &cmd_stats_entry, &cmd_shutdown_entry,
	&cmd_create_entry, &cmd_start_entry, &cmd_run_entry, &cmd_status_entry,
	&cmd_list_entry, &cmd_kill_entry, &cmd_stop_entry, &cmd_suspend_entry,
	&cmd_resume_entry, &cmd_payload_entry, &cmd_remove_entry,
	&cmd_history_entry, &cmd_subscribe_entry, &cmd_unsubscribe_entry,
	&cmd_log_entry, &cmd_logrotate_entry, &cmd_reread_entry,
	&cmd_update_entry, &cmd_reload_entry,
};
#define FUZZ_CODEC_NCMDS (sizeof fuzz_codec_cmds / sizeof fuzz_codec_cmds[0])

/* The msgpack types each argument type admits (codec_args' promise). */
#define T(x)	(1U << MSGPACK_OBJECT_##x)
static const unsigned fuzz_codec_admits[] = {
	[ARG_STR] = T(STR) | T(BIN),
	[ARG_UINT] = T(POSITIVE_INTEGER),
	[ARG_INT] = T(POSITIVE_INTEGER) | T(NEGATIVE_INTEGER),
	[ARG_BOOL] = T(BOOLEAN),
	[ARG_MAP] = T(MAP),
	[ARG_ARRAY] = T(ARRAY),
	[ARG_SIGNAL] = T(POSITIVE_INTEGER) | T(STR) | T(BIN),
	[ARG_ANY] = ~T(NIL),	/* nil counts as absent */
};
#undef T

/* params against one spec: the types promised, or an error said. */
static void
fuzz_codec_args(const msgpack_object *params, const struct arg_spec *spec)
{
	const msgpack_object *out[ARG_MAX];
	struct ward_err err = WARD_ERR_INIT;
	int j;

	if (codec_args(params, spec, out, &err) == -1) {
		harness_assert(err.code != NULL && err.msg[0] != '\0',
		    "codec_args failed without a message");
		return;
	}
	for (j = 0; spec[j].name != NULL; j++) {
		harness_assert(j < ARG_MAX, "a spec longer than ARG_MAX");
		if (out[j] == NULL)
			continue;
		harness_assert(fuzz_codec_admits[spec[j].type] &
		    (1U << out[j]->type),
		    "'%s' came back as msgpack type %d", spec[j].name,
		    (int)out[j]->type);
		if (codec_is_str(out[j])) {
			char *s = codec_strdup(out[j]);

			harness_assert(s == NULL || codec_streq(out[j], s),
			    "codec_strdup of '%s' is not equal to it", spec[j].name);
			free(s);
		}
	}
}

/* One message, as cmd_dispatch would take it apart. */
static void
fuzz_codec_message(const msgpack_object *o, unsigned pick)
{
	const msgpack_object *params = NULL;
	size_t k;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
	    o->via.array.ptr[3].type != MSGPACK_OBJECT_ARRAY ||
	    o->via.array.ptr[3].via.array.size > 1)
		return;
	if (o->via.array.ptr[3].via.array.size == 1)
		params = &o->via.array.ptr[3].via.array.ptr[0];
	/* The method's own spec if it names one, and one other. */
	for (k = 0; k < FUZZ_CODEC_NCMDS; k++) {
		if (codec_streq(&o->via.array.ptr[2], fuzz_codec_cmds[k]->name))
			fuzz_codec_args(params, fuzz_codec_cmds[k]->args);
	}
	fuzz_codec_args(params, fuzz_codec_cmds[pick % FUZZ_CODEC_NCMDS]->args);
	fuzz_codec_args(params, spec_args);
}

/* msgpack-c writes empty strings as (NULL, 0): no memcpy from NULL. */
static int
fuzz_codec_write(void *data, const char *p, size_t n)
{
	return n == 0 ? 0 : buf_append(data, p, n);
}

/* msgpack-c's packing of o must scan again, whole. */
static void
fuzz_codec_repack(const msgpack_object *o, size_t orig)
{
	struct buf b = { 0 };
	struct ward_err err = WARD_ERR_INIT;
	msgpack_packer pk;
	size_t len;

	msgpack_packer_init(&pk, &b, fuzz_codec_write);
	harness_assert(msgpack_pack_object(&pk, *o) == 0, "cannot repack");
	harness_assert(codec_scan(b.data, b.len, &len, &err) == SCAN_COMPLETE,
	    "the repacked message (%zu bytes, was %zu) does not scan: %s",
	    b.len, orig, err.msg);
	harness_assert(len == b.len, "the repacked message scans to %zu of %zu",
	    len, b.len);
	buf_free(&b);
}

/* Whether p may hold an array16/32 or map16/32 header (or such a byte). */
static int
fuzz_codec_big_headers(const char *p, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++) {
		if ((unsigned char)p[k] >= 0xdc && (unsigned char)p[k] <= 0xdf)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ward_err err = WARD_ERR_INIT;
	msgpack_unpacked msg;
	msgpack_unpack_return rc;
	size_t off = 0, len, used;
	char *copy;

	harness_init();
	/* A heap copy of exactly size bytes: ASan sees any read past it. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	while (off < size) {
		len = 0;
		memset(&err, 0, sizeof err);
		switch (codec_scan(copy + off, size - off, &len, &err)) {
		case SCAN_ERROR:
			harness_assert(err.code != NULL && err.msg[0] != '\0',
			    "SCAN_ERROR without a code and a message");
			harness_assert(strcmp(err.code, WARD_E_TOO_LARGE) == 0 ||
			    strcmp(err.code, WARD_E_PROTOCOL) == 0,
			    "SCAN_ERROR with code %s", err.code);
			goto out;
		case SCAN_MORE:
			/*
			 * Within limits, so msgpack-c may safely look; but it
			 * allocates every declared element up front, which a
			 * few array16/map16 headers make slow: only without.
			 */
			if (fuzz_codec_big_headers(copy + off, size - off))
				goto out;
			msgpack_unpacked_init(&msg);
			used = 0;
			rc = msgpack_unpack_next(&msg, copy + off, size - off, &used);
			harness_assert(rc != MSGPACK_UNPACK_SUCCESS,
			    "codec_scan wants more, msgpack-c found a whole "
			    "message of %zu bytes", used);
			msgpack_unpacked_destroy(&msg);
			goto out;
		case SCAN_COMPLETE:
			break;
		}
		harness_assert(len > 0 && len <= size - off,
		    "complete message of %zu bytes in %zu", len, size - off);
		harness_assert(len <= WARD_MAX_REQUEST, "a %zu-byte message", len);
		msgpack_unpacked_init(&msg);
		used = 0;
		rc = msgpack_unpack_next(&msg, copy + off, len, &used);
		harness_assert(rc == MSGPACK_UNPACK_SUCCESS && used == len,
		    "codec_scan accepted %zu bytes, msgpack-c says %d after %zu",
		    len, (int)rc, used);
		fuzz_codec_message(&msg.data, (unsigned)len + (unsigned)off);
		fuzz_codec_repack(&msg.data, len);
		msgpack_unpacked_destroy(&msg);
		off += len;
	}
out:
	free(copy);
	return 0;
}
