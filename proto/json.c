/*
 * json.c: msgpack to JSON, for both wardctl and wardd (json.h). What it
 * writes is always valid JSON, whatever the object holds: strings that
 * are not UTF-8 get U+FFFD, every control character is escaped (so a
 * value never spans lines: one SSE data line, one --json line), a map key
 * that is not a string is written as one, NaN and infinities are null.
 *
 * Why a small emitter of our own and no library: ward's data is msgpack
 * already, and writing it out is one switch over msgpack's object types;
 * a library (jansson) would mean building its tree from the msgpack tree
 * to serialize it, and linking it into wardd. Reading JSON is the
 * opposite case (a grammar with escapes, surrogates and numbers to get
 * right), which is why wardctl reads with jansson (ctl-control.c).
 *
 * layer: base (pure functions over a write callback; wardd's libwardd.a
 * and wardctl both link it)
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

/* Length of a valid UTF-8 sequence at p, or 0 (overlongs not checked). */
size_t
json_utf8_len(const unsigned char *p, size_t n)
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

/* A write function for a FILE * (wardctl's stdout). */
int
json_stdio_write(void *arg, const char *p, size_t n)
{
	return fwrite(p, 1, n, arg) == n ? 0 : -1;
}

#define JSON_LIT(s)	w(arg, s, sizeof s - 1)

/* p[0..n) as a JSON string, quotes included. */
void
json_str(const char *p, size_t n, json_write_fn w, void *arg)
{
	char esc[8];
	size_t i, k, run = 0;

	JSON_LIT("\"");
	for (i = 0; i < n; i += k) {
		unsigned char ch = p[i];

		k = 1;
		if (ch >= 0x80 && (k = json_utf8_len((const unsigned char *)p +
		    i, n - i)) > 0) {
			run += k;
			continue;
		}
		if (ch >= 0x20 && ch != 0x7f && ch != '"' && ch != '\\' &&
		    ch < 0x80) {
			run++;
			continue;
		}
		if (run > 0)
			w(arg, p + i - run, run);
		run = 0;
		k = k ? k : 1;
		if (ch >= 0x80)		/* not UTF-8 */
			JSON_LIT("\\ufffd");
		else if (ch == '"')
			JSON_LIT("\\\"");
		else if (ch == '\\')
			JSON_LIT("\\\\");
		else if (ch == '\n')
			JSON_LIT("\\n");
		else if (ch == '\t')
			JSON_LIT("\\t");
		else {
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			w(arg, esc, 6);
		}
	}
	if (run > 0)
		w(arg, p + n - run, run);
	JSON_LIT("\"");
}

/* A msgpack object as JSON: what it holds, unchanged. */
void
json_value(const msgpack_object *o, json_write_fn w, void *arg)
{
	char num[32];
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN:
		if (o->via.boolean)
			JSON_LIT("true");
		else
			JSON_LIT("false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		w(arg, num, snprintf(num, sizeof num, "%" PRIu64, o->via.u64));
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		w(arg, num, snprintf(num, sizeof num, "%" PRId64, o->via.i64));
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (o->via.f64 != o->via.f64 || o->via.f64 > 1e308 ||
		    o->via.f64 < -1e308)
			JSON_LIT("null");
		else
			w(arg, num, snprintf(num, sizeof num, "%.17g",
			    o->via.f64));
		break;
	case MSGPACK_OBJECT_STR:
		json_str(o->via.str.ptr, o->via.str.size, w, arg);
		break;
	case MSGPACK_OBJECT_BIN:
		json_str(o->via.bin.ptr, o->via.bin.size, w, arg);
		break;
	case MSGPACK_OBJECT_ARRAY:
		JSON_LIT("[");
		for (i = 0; i < o->via.array.size; i++) {
			if (i > 0)
				JSON_LIT(",");
			json_value(&o->via.array.ptr[i], w, arg);
		}
		JSON_LIT("]");
		break;
	case MSGPACK_OBJECT_MAP:
		JSON_LIT("{");
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			if (i > 0)
				JSON_LIT(",");
			if (k->type == MSGPACK_OBJECT_STR)
				json_value(k, w, arg);
			else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				w(arg, num, snprintf(num, sizeof num,
				    "\"%" PRIu64 "\"", k->via.u64));
			else
				JSON_LIT("\"?\"");
			JSON_LIT(":");
			json_value(&o->via.map.ptr[i].val, w, arg);
		}
		JSON_LIT("}");
		break;
	default:		/* nil, and extension types */
		JSON_LIT("null");
		break;
	}
}
