/*
 * test_userlimits.c: /proc/PID/limits as userlimits_parse reads it: the
 * kernel's own text for this process matches getrlimit, and text with a
 * limit missing or mangled is refused whole.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

START_TEST(test_own_limits_match_getrlimit)
{
	struct rlimit got[RLIM_NLIMITS], want;
	char text[4096];
	int r;

	ck_assert_int_gt(read_small_file("/proc/self/limits", text,
	    sizeof text), 0);
	ck_assert_int_eq(userlimits_parse(text, got), 0);
	for (r = 0; r < RLIM_NLIMITS; r++) {
		ck_assert_int_eq(getrlimit(r, &want), 0);
		ck_assert_uint_eq(got[r].rlim_cur, want.rlim_cur);
		ck_assert_uint_eq(got[r].rlim_max, want.rlim_max);
	}
}
END_TEST

/* The kernel's text with line `line` (1: the first limit) replaced. */
static void
mangled(char *out, size_t size, int line, const char *with)
{
	char text[4096], *p, *nl;
	size_t n = 0;
	int k;

	ck_assert_int_gt(read_small_file("/proc/self/limits", text,
	    sizeof text), 0);
	out[0] = '\0';
	for (p = text, k = 0; (nl = strchr(p, '\n')) != NULL; p = nl + 1, k++) {
		n += snprintf(out + n, size - n, "%.*s", k == line ?
		    (int)strlen(with) : (int)(nl - p + 1), k == line ? with : p);
		ck_assert_uint_lt(n, size);
	}
}

START_TEST(test_bad_text_is_refused)
{
	static const char *const bad[] = {
		"",						/* a limit missing */
		"Max processes             lots                 10   processes\n",
		"Max processes             10                   -1   processes\n",
		"Max processes             99999999999999999999 10   processes\n",
		"Max processes             10x                  10   processes\n",
		"Max processes             10\n",
	};
	struct rlimit got[RLIM_NLIMITS];
	char text[4096];
	size_t k;

	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		/* Line 7 is "Max processes" (RLIMIT_NPROC is 6). */
		mangled(text, sizeof text, 7, bad[k]);
		ck_assert_msg(userlimits_parse(text, got) == -1, "accepted: %s",
		    bad[k]);
	}
	mangled(text, sizeof text, 7,
	    "Max processes             unlimited            4321 processes\n");
	ck_assert_int_eq(userlimits_parse(text, got), 0);
	ck_assert_uint_eq(got[RLIMIT_NPROC].rlim_cur, RLIM_INFINITY);
	ck_assert_uint_eq(got[RLIMIT_NPROC].rlim_max, 4321);
	ck_assert_int_eq(userlimits_parse("garbage\n", got), -1);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("userlimits", &tc);

	tcase_add_test(tc, test_own_limits_match_getrlimit);
	tcase_add_test(tc, test_bad_text_is_refused);
	return UNIT_RUN(s);
}
