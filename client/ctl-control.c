/*
 * ctl-control.c: wardctl call, a request relayed to an instance's payload
 * over its control channel (instance.call), and the JSON reader its
 * params come in: the whole of RFC 8259's grammar (objects, arrays,
 * strings with every escape, numbers, true, false, null), packed as
 * msgpack; integers stay integers, other numbers are doubles. The result
 * is printed as JSON (ctl_json_line), whatever --json says.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CTL_JSON_DEPTH	32

struct ctl_json {
	const char	*p;
	const char	*err;		/* what was wrong, at p */
	int		 depth;
};

static int ctl_json_value(struct ctl_json *, msgpack_sbuffer *);

static void
ctl_json_ws(struct ctl_json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int
ctl_json_fail(struct ctl_json *j, const char *why)
{
	if (j->err == NULL)
		j->err = why;
	return -1;
}

static int
ctl_json_hex4(struct ctl_json *j, unsigned *u)
{
	int k;

	*u = 0;
	for (k = 0; k < 4; k++, j->p++) {
		if (!isxdigit((unsigned char)*j->p))
			return ctl_json_fail(j, "bad \\u escape");
		*u = *u * 16 + (isdigit((unsigned char)*j->p) ? *j->p - '0' :
		    (tolower((unsigned char)*j->p) - 'a' + 10));
	}
	return 0;
}

/* Code point u as UTF-8 into s. */
static size_t
ctl_json_utf8(unsigned u, char *s)
{
	if (u < 0x80)
		return s[0] = u, 1;
	if (u < 0x800)
		return s[0] = 0xc0 | u >> 6, s[1] = 0x80 | (u & 0x3f), 2;
	if (u < 0x10000)
		return s[0] = 0xe0 | u >> 12, s[1] = 0x80 | (u >> 6 & 0x3f),
		    s[2] = 0x80 | (u & 0x3f), 3;
	return s[0] = 0xf0 | u >> 18, s[1] = 0x80 | (u >> 12 & 0x3f),
	    s[2] = 0x80 | (u >> 6 & 0x3f), s[3] = 0x80 | (u & 0x3f), 4;
}

/* A string at j->p (its opening quote), packed. */
static int
ctl_json_string(struct ctl_json *j, msgpack_packer *pk)
{
	static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	msgpack_sbuffer s;
	unsigned u, lo;
	char utf[4];
	const char *e;

	msgpack_sbuffer_init(&s);
	for (j->p++; *j->p != '"'; ) {
		if (*j->p == '\0' || (unsigned char)*j->p < 0x20) {
			msgpack_sbuffer_destroy(&s);
			return ctl_json_fail(j, "unterminated string");
		}
		if (*j->p != '\\') {
			msgpack_sbuffer_write(&s, j->p++, 1);
			continue;
		}
		j->p++;
		if (*j->p == 'u') {
			j->p++;
			if (ctl_json_hex4(j, &u) == -1)
				goto fail;
			if (u >= 0xd800 && u < 0xdc00 && j->p[0] == '\\' &&
			    j->p[1] == 'u') {
				j->p += 2;
				if (ctl_json_hex4(j, &lo) == -1)
					goto fail;
				if (lo < 0xdc00 || lo > 0xdfff) {
					ctl_json_fail(j, "bad surrogate pair");
					goto fail;
				}
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			}
			msgpack_sbuffer_write(&s, utf, ctl_json_utf8(u, utf));
			continue;
		}
		for (e = esc; *e != '\0' && *e != *j->p; e += 2)
			;
		if (*e == '\0' || *j->p == '\0') {
			ctl_json_fail(j, "bad escape");
			goto fail;
		}
		msgpack_sbuffer_write(&s, e + 1, 1);
		j->p++;
	}
	j->p++;
	msgpack_pack_str(pk, s.size);
	msgpack_pack_str_body(pk, s.data, s.size);
	msgpack_sbuffer_destroy(&s);
	return 0;
fail:
	msgpack_sbuffer_destroy(&s);
	return -1;
}

static int
ctl_json_number(struct ctl_json *j, msgpack_packer *pk)
{
	const char *start = j->p;
	char *end;
	int real = 0;
	double d;

	if (*j->p == '-')
		j->p++;
	if (!isdigit((unsigned char)*j->p))
		return ctl_json_fail(j, "unexpected character");
	while (isdigit((unsigned char)*j->p) || strchr(".eE+-", *j->p) != NULL) {
		real |= strchr(".eE", *j->p) != NULL;
		j->p++;
	}
	errno = 0;
	if (!real && *start == '-') {
		long long v = strtoll(start, &end, 10);

		if (errno == 0 && end == j->p)
			return msgpack_pack_int64(pk, v);
	} else if (!real) {
		unsigned long long v = strtoull(start, &end, 10);

		if (errno == 0 && end == j->p)
			return msgpack_pack_uint64(pk, v);
	}
	d = strtod(start, &end);
	if (end != j->p)
		return ctl_json_fail(j, "bad number");
	return msgpack_pack_double(pk, d);
}

/* An array or object: its members into a buffer of their own, counted. */
static int
ctl_json_container(struct ctl_json *j, msgpack_packer *pk)
{
	char close = *j->p == '[' ? ']' : '}';
	msgpack_sbuffer body;
	msgpack_packer bpk;
	size_t n = 0;
	int rc = -1;

	if (++j->depth > CTL_JSON_DEPTH)
		return ctl_json_fail(j, "nested too deep");
	msgpack_sbuffer_init(&body);
	msgpack_packer_init(&bpk, &body, msgpack_sbuffer_write);
	j->p++;
	ctl_json_ws(j);
	while (*j->p != close) {
		if (n > 0) {
			if (*j->p != ',') {
				ctl_json_fail(j, "expected ',' or a closing bracket");
				goto out;
			}
			j->p++;
			ctl_json_ws(j);
		}
		if (close == '}') {
			if (*j->p != '"' || ctl_json_string(j, &bpk) == -1) {
				ctl_json_fail(j, "expected a string key");
				goto out;
			}
			ctl_json_ws(j);
			if (*j->p++ != ':') {
				j->p--;
				ctl_json_fail(j, "expected ':'");
				goto out;
			}
		}
		if (ctl_json_value(j, &body) == -1)
			goto out;
		n++;
	}
	j->p++;
	if (close == ']')
		msgpack_pack_array(pk, n);
	else
		msgpack_pack_map(pk, n);
	msgpack_sbuffer_write(pk->data, body.data, body.size);
	rc = 0;
out:
	msgpack_sbuffer_destroy(&body);
	j->depth--;
	return rc;
}

static int
ctl_json_value(struct ctl_json *j, msgpack_sbuffer *out)
{
	msgpack_packer pk;
	int rc;

	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	ctl_json_ws(j);
	if (*j->p == '{' || *j->p == '[')
		rc = ctl_json_container(j, &pk);
	else if (*j->p == '"')
		rc = ctl_json_string(j, &pk);
	else if (strncmp(j->p, "true", 4) == 0) {
		rc = msgpack_pack_true(&pk);
		j->p += 4;
	} else if (strncmp(j->p, "false", 5) == 0) {
		rc = msgpack_pack_false(&pk);
		j->p += 5;
	} else if (strncmp(j->p, "null", 4) == 0) {
		rc = msgpack_pack_nil(&pk);
		j->p += 4;
	} else
		rc = ctl_json_number(j, &pk);
	ctl_json_ws(j);
	return rc;
}

/* text as one JSON value, packed into out; -1 after saying what is wrong. */
static int
ctl_json_parse(const char *text, msgpack_sbuffer *out)
{
	struct ctl_json j = { text, NULL, 0 };

	if (ctl_json_value(&j, out) == 0 && *j.p == '\0')
		return 0;
	fprintf(stderr, "wardctl: params are not JSON: %s at offset %zu\n",
	    j.err != NULL ? j.err : "text after the value", (size_t)(j.p - text));
	return -1;
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
