/*
 * test_json.c: proto/json.c, the one JSON emitter (wardctl's --json and
 * call, wardd's status page): whatever a msgpack object holds, valid JSON
 * on one line comes out; strings that are not UTF-8 get U+FFFD, control
 * characters are escaped, markup passes as the characters it is.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "unit.h"

struct sink {
	char	buf[4096];
	size_t	len;
};

static int
sink_write(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	ck_assert_uint_lt(s->len + n, sizeof s->buf);
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return 0;
}

static const char *
json_of(struct sink *s, const char *fmt, ...)
{
	struct unit_msg m;
	va_list ap;

	va_start(ap, fmt);
	unit_msg_vobj(&m, fmt, ap);
	va_end(ap);
	s->len = 0;
	s->buf[0] = '\0';
	json_value(m.obj, sink_write, s);
	unit_msg_free(&m);
	return s->buf;
}

START_TEST(scalars_and_containers)
{
	struct sink s;

	ck_assert_str_eq(json_of(&s, "M s A u I t", 1, "a", 3, 7U,
	    (int64_t)-5), "{\"a\":[7,-5,true]}");
	ck_assert_str_eq(json_of(&s, "n"), "null");
	ck_assert_str_eq(json_of(&s, "U", (uint64_t)18446744073709551615ULL),
	    "18446744073709551615");
}
END_TEST

START_TEST(strings_escaped)
{
	struct sink s;

	ck_assert_str_eq(json_of(&s, "s", "a\"b\\c\nd\te\x01\x7f"),
	    "\"a\\\"b\\\\c\\nd\\te\\u0001\\u007f\"");
	/* Markup is characters, not escaped here: the page sets textContent. */
	ck_assert_str_eq(json_of(&s, "s", "<b>x</b>"), "\"<b>x</b>\"");
	/* A CR would end an SSE data line: escaped like every control. */
	ck_assert_str_eq(json_of(&s, "s", "a\rb"), "\"a\\u000db\"");
}
END_TEST

START_TEST(utf8_kept_the_rest_replaced)
{
	struct sink s;

	ck_assert_str_eq(json_of(&s, "s", "\xc3\xa9\xf0\x9f\x98\x80"),
	    "\"\xc3\xa9\xf0\x9f\x98\x80\"");
	ck_assert_str_eq(json_of(&s, "s", "a\xff" "b\xc3"),
	    "\"a\\ufffdb\\ufffd\"");
	ck_assert_str_eq(json_of(&s, "S", "a\0b", (size_t)3), "\"a\\u0000b\"");
}
END_TEST

START_TEST(keys_always_strings)
{
	struct sink s;

	ck_assert_str_eq(json_of(&s, "M u s", 1, 42U, "v"), "{\"42\":\"v\"}");
	ck_assert_str_eq(json_of(&s, "M n n", 1), "{\"?\":null}");
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("json", &tc);

	tcase_add_test(tc, scalars_and_containers);
	tcase_add_test(tc, strings_escaped);
	tcase_add_test(tc, utf8_kept_the_rest_replaced);
	tcase_add_test(tc, keys_always_strings);
	return UNIT_RUN(s);
}
