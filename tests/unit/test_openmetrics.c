/*
 * test_openmetrics.c: label values escaped as OpenMetrics says (backslash,
 * double quote, newline), whatever hostile text a name holds, and cut
 * without splitting an escape. Instance and program names are NAMEs today
 * (spec.c), so no integration test can carry such text: this one does.
 */
#include "config.h"

#include "unit.h"
#include "ward.h"

struct wardd_opts opts;

START_TEST(escapes)
{
	char out[64];

	ck_assert_uint_eq(openmetrics_escape(out, sizeof out, "plain-name"), 10);
	ck_assert_str_eq(out, "plain-name");
	openmetrics_escape(out, sizeof out, "a\"b\\c\nd");
	ck_assert_str_eq(out, "a\\\"b\\\\c\\nd");
	openmetrics_escape(out, sizeof out, "} 1\n# EOF\nx{y=\"");
	ck_assert_str_eq(out, "} 1\\n# EOF\\nx{y=\\\"");
	ck_assert_ptr_null(strchr(out, '\n'));
	openmetrics_escape(out, sizeof out, "");
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(cut_whole_escapes)
{
	char out[5];

	/* 4 bytes of room: "ab" and one escape, never half of the next. */
	ck_assert_uint_eq(openmetrics_escape(out, sizeof out, "ab\"\"\""), 4);
	ck_assert_str_eq(out, "ab\\\"");
	ck_assert_uint_eq(openmetrics_escape(out, sizeof out, "abc\\"), 3);
	ck_assert_str_eq(out, "abc");
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("openmetrics", &tc);

	tcase_add_test(tc, escapes);
	tcase_add_test(tc, cut_whole_escapes);
	return UNIT_RUN(s);
}
