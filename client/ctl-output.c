/*
 * ctl-output.c: how wardctl prints, for every command: colours, sizes
 * and durations, text from payloads made safe for a terminal, the
 * daemon's msgpack results as JSON, column widths. Part of the shared core
 * (ctl.h); it calls nothing of wardctl's, only stdio.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* An escape sequence, or nothing when colour is off (C_RED and the like). */
const char *
ctl_c(struct ctl *c, const char *code)
{
	return c->color ? code : "";
}

/* "512K", "1.2M", "3.4G" from KiB. */
const char *
ctl_size(uint64_t kb, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	double v = kb;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 10)
		snprintf(buf, len, "%.0f%c", v, units[u]);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

/* "45s", "12m3s", "3h2m", "3d4h" from milliseconds. */
const char *
ctl_duration(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", s / 3600,
		    s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400,
		    s % 86400 / 3600);
	return buf;
}

/* Length of a valid UTF-8 sequence at p, or 0 (overlongs not checked). */
size_t
ctl_utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 :
	    p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	size_t k;

	if (len == 0 || len > n)
		return 0;
	for (k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

/*
 * Text from a payload, fit for a terminal: control characters (escape
 * sequences could take over the admin's terminal) and bytes that are not
 * UTF-8 become '?'. Returns buf.
 */
const char *
ctl_clean(const char *s, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t o = 0, n = strlen((const char *)p), k;

	while (*p != '\0' && o + 5 < len) {
		k = ctl_utf8_len(p, n);
		if (k == 0 || (k == 1 && (*p < 0x20 || *p == 0x7f)) ||
		    (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			buf[o++] = '?';
			k = k ? k : 1;
		} else {
			memcpy(buf + o, p, k);
			o += k;
		}
		p += k;
		n -= k;
	}
	buf[o] = '\0';
	return buf;
}

static void
ctl_json_str(const char *p, size_t n)
{
	size_t i, k;

	putchar('"');
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (ch >= 0x80) {
			/* Only UTF-8 passes; anything else is U+FFFD. */
			k = ctl_utf8_len((const unsigned char *)p + i, n - i);
			if (k == 0)
				fputs("\\ufffd", stdout);
			else
				fwrite(p + i, 1, k, stdout);
			i += k ? k - 1 : 0;
		} else if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* A msgpack object as JSON: what the daemon said, unchanged. */
void
ctl_json(const msgpack_object *o)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", stdout);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", stdout);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		printf("%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		printf("%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (o->via.f64 != o->via.f64 || o->via.f64 > 1e308 ||
		    o->via.f64 < -1e308)
			fputs("null", stdout);
		else
			printf("%.17g", o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		ctl_json_str(o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		ctl_json_str(o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		putchar('[');
		for (i = 0; i < o->via.array.size; i++) {
			if (i > 0)
				putchar(',');
			ctl_json(&o->via.array.ptr[i]);
		}
		putchar(']');
		break;
	case MSGPACK_OBJECT_MAP:
		putchar('{');
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			if (i > 0)
				putchar(',');
			if (k->type == MSGPACK_OBJECT_STR)
				ctl_json(k);
			else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				printf("\"%" PRIu64 "\"", k->via.u64);
			else
				fputs("\"?\"", stdout);
			putchar(':');
			ctl_json(&o->via.map.ptr[i].val);
		}
		putchar('}');
		break;
	default:
		fputs("null", stdout);
		break;
	}
}

/* One result per line, flushed: a reader of a pipe sees each at once. */
void
ctl_json_line(const msgpack_object *o)
{
	ctl_json(o);
	putchar('\n');
	fflush(stdout);
}

/* A column's width w, widened to fit cell. */
int
ctl_width(int w, const char *cell)
{
	int n = strlen(cell);

	return n > w ? n : w;
}
