/*
 * test_reason.c: the pure rules of reason.c: payload-state order, reason
 * names, the failure pipe's "NAME|info", how a death is classified, the
 * crosvm exit codes, signal names and the notify pipe's lines.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

/* ---- payload states */

START_TEST(transition_forward_only)
{
	enum payload_state from, to;
	struct ward_err err = WARD_ERR_INIT;

	for (from = PAYLOAD_STARTING; from <= PAYLOAD_HANGUP; from++) {
		for (to = PAYLOAD_STARTING; to <= PAYLOAD_HANGUP; to++) {
			err.msg[0] = '\0';
			if (to > from)
				ck_assert_msg(payload_transition(from, to,
				    &err) == 0, "%s -> %s refused: %s",
				    payload_state_name(from),
				    payload_state_name(to), err.msg);
			else {
				ck_assert_msg(payload_transition(from, to,
				    &err) == -1, "%s -> %s allowed",
				    payload_state_name(from),
				    payload_state_name(to));
				ck_assert(strstr(err.msg, payload_state_name(from)));
				ck_assert(strstr(err.msg, payload_state_name(to)));
			}
		}
	}
}
END_TEST

START_TEST(transition_message_names_both)
{
	struct ward_err err = WARD_ERR_INIT;

	ck_assert_int_eq(payload_transition(PAYLOAD_READY, PAYLOAD_STARTED,
	    &err), -1);
	ck_assert_msg(strstr(err.msg, "from ready to started") != NULL,
	    "error: %s", err.msg);
	ck_assert_int_eq(payload_transition(PAYLOAD_FINISHED, PAYLOAD_FINISHED,
	    &err), -1);
	ck_assert_msg(strstr(err.msg, "from finished to finished") != NULL,
	    "error: %s", err.msg);
	/* Skipping states forward is fine: starting -> finished. */
	ck_assert_int_eq(payload_transition(PAYLOAD_STARTING, PAYLOAD_FINISHED,
	    &err), 0);
	/* Whatever e held before, it comes back whole and terminated. */
	memset(&err, 'x', sizeof err);
	ck_assert_int_eq(payload_transition(PAYLOAD_READY, PAYLOAD_STARTED,
	    &err), -1);
	ck_assert_str_eq(err.code, WARD_E_INVALID_STATE);
	ck_assert_uint_lt(strlen(err.msg), sizeof err.msg);
	/* ward_err_set cuts a long message, never overruns. */
	ck_assert_int_eq(ward_err_set(&err, NULL, "%*s", 2 * WARD_ERR_MAX,
	    "x"), -1);
	ck_assert_str_eq(err.code, WARD_E_INVALID_STATE);	/* NULL: kept */
	ck_assert_uint_eq(strlen(err.msg), WARD_ERR_MAX - 1);
}
END_TEST

START_TEST(state_parse)
{
	static const char *const names[] = {
		"starting", "started", "ready", "finished", "hangup"
	};
	enum payload_state s;
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		s = (enum payload_state)99;
		ck_assert_int_eq(payload_state_parse(names[i], &s), 0);
		ck_assert_int_eq(s, (int)i);
		ck_assert_str_eq(payload_state_name(s), names[i]);
	}
	ck_assert_int_eq(payload_state_parse("READY", &s), -1);
	ck_assert_int_eq(payload_state_parse("read", &s), -1);
	ck_assert_int_eq(payload_state_parse("ready ", &s), -1);
	ck_assert_int_eq(payload_state_parse("", &s), -1);
}
END_TEST

/* ---- reason names */

START_TEST(reason_name)
{
	char buf[80];

	ck_assert(reason_name_valid("A", 1));
	ck_assert(reason_name_valid("CRASH", 5));
	ck_assert(reason_name_valid("WATCHDOG_REBOOT", 15));
	ck_assert(reason_name_valid("E2BIG_1", 7));
	ck_assert(!reason_name_valid("", 0));
	ck_assert(!reason_name_valid("crash", 5));
	ck_assert(!reason_name_valid("Crash", 5));
	ck_assert(!reason_name_valid("1CRASH", 6));
	ck_assert(!reason_name_valid("_CRASH", 6));
	ck_assert(!reason_name_valid("CRA SH", 6));
	ck_assert(!reason_name_valid("CRASH-1", 7));
	ck_assert(!reason_name_valid("CRASH\n", 6));
	ck_assert(!reason_name_valid("CR\0SH", 5));
	/* The length given is what counts, not a NUL. */
	ck_assert(reason_name_valid("CRASH|info", 5));
	ck_assert(!reason_name_valid("CRASH|info", 6));

	memset(buf, 'A', sizeof buf);
	ck_assert(reason_name_valid(buf, 64));
	ck_assert(!reason_name_valid(buf, 65));
	buf[63] = '9';
	ck_assert(reason_name_valid(buf, 64));
	buf[63] = 'a';
	ck_assert(!reason_name_valid(buf, 64));
}
END_TEST

/* ---- the failure pipe */

static void
split(const char *text, char *name, char **info, char **free_text)
{
	reason_split_failure(text, strlen(text), name, info, free_text);
}

START_TEST(split_name_and_info)
{
	char name[REASON_MAX + 1], *info, *free_text;

	split("CRASH|oops\n", name, &info, &free_text);
	ck_assert_str_eq(name, "CRASH");
	ck_assert_str_eq(info, "oops");
	ck_assert_ptr_null(free_text);
	free(info);

	/* Only the first bar splits; the info keeps the rest. */
	split("OUT_OF_MEMORY|a|b c \r\n\t ", name, &info, &free_text);
	ck_assert_str_eq(name, "OUT_OF_MEMORY");
	ck_assert_str_eq(info, "a|b c");
	ck_assert_ptr_null(free_text);
	free(info);

	split("CRASH|", name, &info, &free_text);
	ck_assert_str_eq(name, "CRASH");
	ck_assert_ptr_nonnull(info);
	ck_assert_str_eq(info, "");
	free(info);

	/* Leading whitespace is part of the info; only trailing is trimmed. */
	split("CRASH| x\n\n", name, &info, &free_text);
	ck_assert_str_eq(info, " x");
	free(info);
}
END_TEST

/* Issue 13: a whole text that is a NAME (trimmed) is that reason, as the seed. */
START_TEST(split_bare_name)
{
	char name[REASON_MAX + 1], *info, *free_text;
	char text[128];

	split("MICRODROID_PAYLOAD_HAS_CHANGED", name, &info, &free_text);
	ck_assert_str_eq(name, "MICRODROID_PAYLOAD_HAS_CHANGED");
	ck_assert_ptr_nonnull(info);
	ck_assert_str_eq(info, "");
	ck_assert_ptr_null(free_text);
	free(info);

	split("  CRASH \n\t", name, &info, &free_text);
	ck_assert_str_eq(name, "CRASH");
	ck_assert_str_eq(info, "");
	ck_assert_ptr_null(free_text);
	free(info);

	/* 64 characters fill the buffer; 65 are free text. */
	memset(text, 'B', 64);
	text[64] = '\0';
	split(text, name, &info, &free_text);
	ck_assert_str_eq(name, text);
	free(info);
	strcat(text, "B");
	split(text, name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_str_eq(free_text, text);
	free(free_text);
}
END_TEST

START_TEST(split_free_text)
{
	char name[REASON_MAX + 1], *info, *free_text;
	char text[128];

	split("lower|x", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_ptr_null(info);
	ck_assert_str_eq(free_text, "lower|x");
	free(free_text);

	split("panicked at 'index out of bounds'\n", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_ptr_null(info);
	ck_assert_str_eq(free_text, "panicked at 'index out of bounds'");
	free(free_text);

	/* A bare name that is not one (lower case, a space) is free text. */
	split("Crash\n", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_ptr_null(info);
	ck_assert_str_eq(free_text, "Crash");
	free(free_text);
	split("OUT OF MEMORY", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_str_eq(free_text, "OUT OF MEMORY");
	free(free_text);

	split("|info", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_str_eq(free_text, "|info");
	free(free_text);

	/* A 65-character name is not a name. */
	memset(text, 'A', 65);
	strcpy(text + 65, "|x");
	split(text, name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_ptr_null(info);
	ck_assert_str_eq(free_text, text);
	free(free_text);

	/* ...but 64 characters are, and fill the buffer exactly. */
	memset(text, 'B', 64);
	strcpy(text + 64, "|y");
	split(text, name, &info, &free_text);
	ck_assert_uint_eq(strlen(name), 64);
	ck_assert_int_eq(memcmp(name, text, 64), 0);
	ck_assert_str_eq(info, "y");
	free(info);
}
END_TEST

START_TEST(split_empty)
{
	char name[REASON_MAX + 1], *info, *free_text;

	name[0] = 'x';
	split("", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_ptr_null(info);
	ck_assert_ptr_null(free_text);

	split(" \n\t\r\n", name, &info, &free_text);
	ck_assert_str_eq(name, "");
	ck_assert_ptr_null(info);
	ck_assert_ptr_null(free_text);

	/* The length bounds the text: nothing past it is read. */
	reason_split_failure("CRASH|oops", 7, name, &info, &free_text);
	ck_assert_str_eq(name, "CRASH");
	ck_assert_str_eq(info, "o");
	free(info);
	reason_split_failure("CRASH|oops", 3, name, &info, &free_text);
	ck_assert_str_eq(name, "CRA");		/* a bare name, issue 13 */
	ck_assert_str_eq(info, "");
	free(info);
}
END_TEST

/* ---- classification */

static const struct exit_code_map test_map[] = {
	{ 3, "CONFIG_ERROR" },
	{ 33, "MINE" },
	{ 255, "LAST" },
};
#define NMAP	(sizeof test_map / sizeof test_map[0])

START_TEST(classify_order)
{
	/* An OOM kill is OUT_OF_MEMORY, unless the payload named its own. */
	ck_assert_str_eq(reason_classify("", KILLED_BY_OOM, 0, 0, SIGKILL,
	    test_map, NMAP), "OUT_OF_MEMORY");
	ck_assert_str_eq(reason_classify("CRASH", KILLED_BY_OOM, 0, 0, SIGKILL,
	    test_map, NMAP), "CRASH");
	/* Who else ended it does not change the reason. */
	ck_assert_str_eq(reason_classify("", KILLED_BY_EXTERNAL, 0, 0, SIGKILL,
	    test_map, NMAP), "KILLED");
	ck_assert_str_eq(reason_classify("", KILLED_BY_STOP, 0, 1, 0,
	    test_map, NMAP), "SHUTDOWN");
	/* The payload's own name beats everything else. */
	ck_assert_str_eq(reason_classify("OOM", 1, 1, 0, SIGKILL, test_map,
	    NMAP), "OOM");
	ck_assert_str_eq(reason_classify("OOM", 0, 0, 1, 0, test_map, NMAP),
	    "OOM");
	ck_assert_str_eq(reason_classify("OOM", 0, 0, 1, 3, test_map, NMAP),
	    "OOM");
	/* An empty name is no name. */
	ck_assert_str_eq(reason_classify("", 1, 0, 0, SIGKILL, test_map, NMAP),
	    "HANGUP");
	/* Then hangup, then a failed waitid, then the status. */
	ck_assert_str_eq(reason_classify(NULL, 1, 1, 0, SIGKILL, test_map,
	    NMAP), "HANGUP");
	ck_assert_str_eq(reason_classify(NULL, 1, 0, 1, 0, test_map, NMAP),
	    "HANGUP");
	ck_assert_str_eq(reason_classify(NULL, 0, 1, 0, SIGKILL, test_map,
	    NMAP), "INFRASTRUCTURE_ERROR");
	ck_assert_str_eq(reason_classify(NULL, 0, 1, 1, 0, test_map, NMAP),
	    "INFRASTRUCTURE_ERROR");
	ck_assert_str_eq(reason_classify(NULL, 0, 1, 1, 33, test_map, NMAP),
	    "INFRASTRUCTURE_ERROR");
}
END_TEST

START_TEST(classify_status)
{
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 0, test_map, NMAP),
	    "SHUTDOWN");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 0, NULL, 0),
	    "SHUTDOWN");
	/* Killed by a signal: the map is about exit codes, not signals. */
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 0, SIGKILL, test_map,
	    NMAP), "KILLED");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 0, 3, test_map, NMAP),
	    "KILLED");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 3, test_map, NMAP),
	    "CONFIG_ERROR");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 33, test_map, NMAP),
	    "MINE");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 255, test_map, NMAP),
	    "LAST");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 4, test_map, NMAP),
	    "UNKNOWN");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 1, NULL, 0),
	    "UNKNOWN");
	/* The first entry for a code wins: the instance's own sit first. */
	{
		static const struct exit_code_map twice[] = {
			{ 33, "MINE" }, { 33, "CRASH" },
		};

		ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 33, twice, 2),
		    "MINE");
	}
}
END_TEST

START_TEST(profile_crosvm)
{
	static const struct {
		int		 code;
		const char	*reason;
	} want[] = {
		{ 1, "START_FAILED" }, { 32, "REBOOT" }, { 33, "CRASH" },
		{ 36, "WATCHDOG_REBOOT" },
	};
	const struct exit_code_map *map = (const struct exit_code_map *)1;
	size_t n, i, j;

	n = reason_profile_codes("crosvm", &map);
	ck_assert_uint_eq(n, 4);
	ck_assert_ptr_nonnull(map);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < n; j++) {
			if (map[j].code == want[i].code)
				break;
		}
		ck_assert_msg(j < n, "code %d missing", want[i].code);
		ck_assert_str_eq(map[j].reason, want[i].reason);
		ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, want[i].code,
		    map, n), want[i].reason);
	}
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 34, map, n), "UNKNOWN");

	ck_assert_uint_eq(reason_profile_codes("qemu", &map), 0);
	ck_assert_ptr_null(map);
	ck_assert_uint_eq(reason_profile_codes("CROSVM", &map), 0);
	ck_assert_uint_eq(reason_profile_codes(NULL, &map), 0);
	ck_assert_ptr_null(map);
}
END_TEST

/* ---- signals */

START_TEST(signal_names)
{
	ck_assert_str_eq(signal_name(SIGTERM), "SIGTERM");
	ck_assert_str_eq(signal_name(SIGKILL), "SIGKILL");
	ck_assert_str_eq(signal_name(SIGHUP), "SIGHUP");
	ck_assert_str_eq(signal_name(SIGSYS), "SIGSYS");
	ck_assert_str_eq(signal_name(SIGRTMIN + 3), "SIGRTMIN+3");
}
END_TEST

START_TEST(signal_parse_names)
{
	static const char *const bad[] = {
		"", "0", "-9", "9x", "x9", "TERMX", "TER", "SIG", "sig", "SIGSIGTERM",
		" TERM", "TERM ", "99999", "4294967305", "+9", "RTMIN",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	char num[16];
	size_t i;
	int sig;

	ck_assert_int_eq(signal_parse("TERM"), SIGTERM);
	ck_assert_int_eq(signal_parse("sigterm"), SIGTERM);
	ck_assert_int_eq(signal_parse("SIGTERM"), SIGTERM);
	ck_assert_int_eq(signal_parse("SigTerm"), SIGTERM);
	ck_assert_int_eq(signal_parse("term"), SIGTERM);
	ck_assert_int_eq(signal_parse("SIGKILL"), SIGKILL);
	ck_assert_int_eq(signal_parse("KILL"), SIGKILL);
	ck_assert_int_eq(signal_parse("9"), 9);
	ck_assert_int_eq(signal_parse("15"), 15);
	ck_assert_int_eq(signal_parse("USR1"), SIGUSR1);
	ck_assert_int_eq(signal_parse("CONT"), SIGCONT);
	ck_assert_int_eq(signal_parse("STOP"), SIGSTOP);
	snprintf(num, sizeof num, "%d", SIGRTMAX);
	ck_assert_int_eq(signal_parse(num), SIGRTMAX);
	snprintf(num, sizeof num, "%d", SIGRTMAX + 1);
	ck_assert_int_eq(signal_parse(num), -1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(signal_parse(bad[i]) == -1, "'%s' parsed", bad[i]);

	/* Every named signal parses back from its name. */
	for (sig = 1; sig < SIGRTMIN; sig++) {
		const char *name = signal_name(sig);

		if (strncmp(name, "SIG", 3) == 0 && name[3] >= 'A' &&
		    name[3] <= 'Z' && strchr(name, '+') == NULL)
			ck_assert_msg(signal_parse(name) == sig, "%s", name);
	}
}
END_TEST

/* ---- the notify pipe */

static enum notify_kind
notify(const char *line, enum payload_state *st, const char **text,
    size_t *textlen)
{
	return notify_parse(line, strlen(line), st, text, textlen);
}

START_TEST(notify_ready_and_state)
{
	enum payload_state st;
	const char *text;
	size_t tl;

	st = PAYLOAD_STARTING;
	ck_assert_int_eq(notify("READY=1", &st, &text, &tl), NOTIFY_READY);
	ck_assert_int_eq(st, PAYLOAD_READY);
	ck_assert_int_eq(notify("READY=1\r", &st, &text, &tl), NOTIFY_READY);

	st = PAYLOAD_STARTING;
	ck_assert_int_eq(notify("STATE=started", &st, &text, &tl),
	    NOTIFY_STATE);
	ck_assert_int_eq(st, PAYLOAD_STARTED);
	ck_assert_int_eq(notify("STATE=ready", &st, &text, &tl), NOTIFY_STATE);
	ck_assert_int_eq(st, PAYLOAD_READY);
	ck_assert_int_eq(notify("STATE=finished\r", &st, &text, &tl),
	    NOTIFY_STATE);
	ck_assert_int_eq(st, PAYLOAD_FINISHED);

	/* wardd's own states are not the payload's to claim. */
	ck_assert_int_eq(notify("STATE=hangup", &st, &text, &tl),
	    NOTIFY_INVALID);
	ck_assert_int_eq(notify("STATE=starting", &st, &text, &tl),
	    NOTIFY_INVALID);
}
END_TEST

START_TEST(notify_status)
{
	enum payload_state st;
	const char *text = NULL;
	size_t tl = 99;

	ck_assert_int_eq(notify("STATUS=booting kernel", &st, &text, &tl),
	    NOTIFY_STATUS);
	ck_assert_uint_eq(tl, strlen("booting kernel"));
	ck_assert_int_eq(memcmp(text, "booting kernel", tl), 0);

	ck_assert_int_eq(notify("STATUS=a=b\r", &st, &text, &tl),
	    NOTIFY_STATUS);
	ck_assert_uint_eq(tl, 3);
	ck_assert_int_eq(memcmp(text, "a=b", 3), 0);

	ck_assert_int_eq(notify("STATUS=", &st, &text, &tl), NOTIFY_STATUS);
	ck_assert_uint_eq(tl, 0);
}
END_TEST

START_TEST(notify_invalid)
{
	static const char *const bad[] = {
		"", "\r", "READY", "READY=0", "READY=1 ", "READY=11", "ready=1",
		" READY=1", "STATE=", "STATE=Ready", "STATE=ready ",
		"STATE=readyreadyreadyready", "STATE", "STATUS", "status=x",
		"FOO=bar", "garbage", "READY=1\r\r", "\xff\xfe",
	};
	enum payload_state st;
	const char *text;
	size_t i, tl;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(notify(bad[i], &st, &text, &tl) == NOTIFY_INVALID,
		    "'%s' accepted", bad[i]);
	/* Embedded NUL bytes: the line is not what it seems. */
	ck_assert_int_eq(notify_parse("READY=1\0", 8, &st, &text, &tl),
	    NOTIFY_INVALID);
	ck_assert_int_eq(notify_parse("STATUS=a\0b", 10, &st, &text, &tl),
	    NOTIFY_INVALID);
	ck_assert_int_eq(notify_parse("STATE=ready\0", 12, &st, &text, &tl),
	    NOTIFY_INVALID);
	/* The length bounds the line. */
	ck_assert_int_eq(notify_parse("READY=1", 6, &st, &text, &tl),
	    NOTIFY_INVALID);
	ck_assert_int_eq(notify_parse("READY=1junk", 7, &st, &text, &tl),
	    NOTIFY_READY);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("reason", &tc);

	tcase_add_test(tc, transition_forward_only);
	tcase_add_test(tc, transition_message_names_both);
	tcase_add_test(tc, state_parse);
	tcase_add_test(tc, reason_name);
	tcase_add_test(tc, split_name_and_info);
	tcase_add_test(tc, split_bare_name);
	tcase_add_test(tc, split_free_text);
	tcase_add_test(tc, split_empty);
	tcase_add_test(tc, classify_order);
	tcase_add_test(tc, classify_status);
	tcase_add_test(tc, profile_crosvm);
	tcase_add_test(tc, signal_names);
	tcase_add_test(tc, signal_parse_names);
	tcase_add_test(tc, notify_ready_and_state);
	tcase_add_test(tc, notify_status);
	tcase_add_test(tc, notify_invalid);
	return UNIT_RUN(s);
}
