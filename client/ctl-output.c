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
#include "json.h"

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
	return json_utf8_len(p, n);
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

/* A msgpack object as JSON on stdout: json.c's emitter, shared with wardd. */
void
ctl_json(const msgpack_object *o)
{
	json_value(o, json_stdio_write, stdout);
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
