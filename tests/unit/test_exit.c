/*
 * test_exit.c: exit_record_unpack, the inverse of exit_record_pack(r, pk,
 * 1), on what wardd reads back from its own files: a full record reads
 * back as itself; a mistyped or out-of-range value is a default, never a
 * wrong value; strings are bounded and made valid UTF-8; a map without a
 * valid id and owner_uid is no record.
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

static struct exit_record *
full_record(void)
{
	struct exit_record *r = calloc(1, sizeof *r);

	ck_assert_ptr_nonnull(r);
	r->refs = 1;
	r->id = 42;
	r->name = strdup("web");
	r->owner_uid = 65534;
	r->exited = 1;
	r->exit_code = -3;
	r->core_dumped = 1;
	strcpy(r->death_reason, "CRASH");
	r->failure_info = strdup("disk on fire \xc3\xa9");
	r->failure_reason = strdup("free text");
	r->failure_discarded = 123456;
	r->dump_dir = strdup("/run/ward/dumps/web-42");
	r->started_at_ms = 1700000000000;
	r->died_at_ms = -5;
	r->uptime_ms = 99;
	r->metrics.cpu_user_ms = 1;
	r->metrics.cpu_system_ms = 2;
	r->metrics.cpu_guest_ms = 3;
	r->metrics.rss_kb = 4;
	r->metrics.rss_max_kb = 5;
	r->metrics.pss_kb = 6;
	r->metrics.mapping_rss_kb = 7;
	r->metrics.mapping_rss_max_kb = 8;
	r->metrics.cpu_percent = 12.5;
	r->metrics.samples = 9;
	r->metrics.cgroup_memory_kb = 10;
	r->metrics.has_cgroup_memory = 1;
	r->run = 3;
	r->killed_by = KILLED_BY_KILL;
	r->killed_by_uid = 1000;
	return r;
}

/* r packed whole, unpacked into a new record (or NULL). */
static struct exit_record *
round_trip(const struct exit_record *r, struct unit_msg *m)
{
	msgpack_packer pk;

	unit_msg_packer(m, &pk);
	exit_record_pack(r, &pk, 1);
	return exit_record_unpack(unit_msg_unpack(m));
}

START_TEST(test_full_record_reads_back_as_itself)
{
	struct exit_record *r = full_record(), *back;
	struct unit_msg m1, m2;

	back = round_trip(r, &m1);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(back->refs, 1);
	/* Packed again, the same bytes. */
	exit_record_unref(round_trip(back, &m2));
	ck_assert_uint_eq(m1.sb.size, m2.sb.size);
	ck_assert_mem_eq(m1.sb.data, m2.sb.data, m1.sb.size);
	ck_assert_int_eq(back->exit_code, -3);
	ck_assert_int_eq(back->exited, 1);
	ck_assert_int_eq(back->metrics.has_cgroup_memory, 1);
	ck_assert_int_eq(back->metrics.has_cgroup_cpu, 0);
	ck_assert_uint_eq(back->run, 3);
	ck_assert_int_eq(back->killed_by, KILLED_BY_KILL);
	ck_assert_uint_eq(back->killed_by_uid, 1000);
	unit_msg_free(&m1);
	unit_msg_free(&m2);

	/* Killed by a signal, nothing optional: nil stays nil. */
	r->exited = 0;
	r->exit_signal = SIGKILL;
	free(r->name);
	r->name = NULL;
	free(r->dump_dir);
	r->dump_dir = NULL;
	exit_record_unref(back);
	back = round_trip(r, &m1);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(back->exited, 0);
	ck_assert_int_eq(back->exit_signal, SIGKILL);
	ck_assert_ptr_null(back->name);
	ck_assert_ptr_null(back->dump_dir);
	exit_record_unref(back);
	exit_record_unref(r);
	unit_msg_free(&m1);
}
END_TEST

START_TEST(test_no_record_without_id_and_owner)
{
	struct unit_msg m;

	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "A", 0)));
	unit_msg_free(&m);
	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "M s u", 1,
	    "id", 1)));
	unit_msg_free(&m);
	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "M s u s s", 2,
	    "id", 0, "owner_uid", "0")));
	unit_msg_free(&m);
	/* id 0, an id past ID_MAX, uid -1 (no uid), a negative uid. */
	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "M s u s u", 2,
	    "id", 0, "owner_uid", 0)));
	unit_msg_free(&m);
	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "M s U s u", 2,
	    "id", ID_MAX + 1, "owner_uid", 0)));
	unit_msg_free(&m);
	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "M s u s U", 2,
	    "id", 1, "owner_uid", (uint64_t)UINT32_MAX)));
	unit_msg_free(&m);
	ck_assert_ptr_null(exit_record_unpack(unit_msg_obj(&m, "M s u s i", 2,
	    "id", 1, "owner_uid", -1)));
	unit_msg_free(&m);
}
END_TEST

START_TEST(test_mistyped_values_are_defaults)
{
	struct exit_record *r;
	struct unit_msg m;

	r = exit_record_unpack(unit_msg_obj(&m,
	    "M s u s u s u s s s I s s s u s s s B s U s A",
	    11, "id", 7, "owner_uid", 0,
	    "exit_signal", 999,			/* no such signal */
	    "exit_code", "3",			/* a string */
	    "exit_code", (int64_t)INT_MAX + 1,	/* past an int */
	    "death_reason", "lower case",	/* not a reason name */
	    "core_dumped", 1,			/* not a bool */
	    "name", "x\xff",			/* cleaned */
	    "failure_info", "bin", (size_t)3,	/* bin: not a string */
	    "failure_discarded", UINT64_MAX,
	    "metrics", 0));			/* an array */
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->id, 7);
	ck_assert_int_eq(r->exit_signal, 0);
	ck_assert_int_eq(r->exited, 0);
	ck_assert_str_eq(r->death_reason, "");
	ck_assert_int_eq(r->core_dumped, 0);
	ck_assert_str_eq(r->name, "x\xef\xbf\xbd");
	ck_assert_ptr_null(r->failure_info);
	ck_assert_uint_eq(r->failure_discarded, UINT64_MAX);
	ck_assert_uint_eq(r->metrics.samples, 0);
	exit_record_unref(r);
	unit_msg_free(&m);
}
END_TEST

/*
 * Issue 13's keys: a record of an older wardd (no run, no killed_by) reads
 * back with run 0 (packed nil) and nobody; an unknown killed_by is nobody.
 */
START_TEST(test_old_records_and_killed_by)
{
	struct exit_record *r;
	struct unit_msg m;

	r = exit_record_unpack(unit_msg_obj(&m, "M s u s u s s", 3, "id", 5,
	    "owner_uid", 0, "death_reason", "KILLED"));
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->run, 0);
	ck_assert_int_eq(r->killed_by, KILLED_BY_NONE);
	exit_record_unref(r);
	unit_msg_free(&m);
	r = exit_record_unpack(unit_msg_obj(&m, "M s u s u s s s i s s", 5,
	    "id", 5, "owner_uid", 0, "killed_by", "martians",
	    "run", -1, "killed_by_uid", "x"));
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->run, 0);
	ck_assert_int_eq(r->killed_by, KILLED_BY_NONE);
	ck_assert_uint_eq(r->killed_by_uid, 0);
	exit_record_unref(r);
	unit_msg_free(&m);
	r = exit_record_unpack(unit_msg_obj(&m, "M s u s u s s s u", 4,
	    "id", 5, "owner_uid", 0, "killed_by", "oom", "run", 9));
	ck_assert_int_eq(r->killed_by, KILLED_BY_OOM);
	ck_assert_uint_eq(r->run, 9);
	ck_assert_str_eq(killed_by_name(r->killed_by), "oom");
	ck_assert_ptr_null(killed_by_name(KILLED_BY_NONE));
	exit_record_unref(r);
	unit_msg_free(&m);
}
END_TEST

/* Dump dirs: NAME-ID-RUN, an older wardd's NAME-ID, names with dashes. */
START_TEST(test_dump_dir_names)
{
	uint64_t run = 9;

	ck_assert_uint_eq(dumps_name_id("web-12-3", &run), 12);
	ck_assert_uint_eq(run, 3);
	ck_assert_uint_eq(dumps_name_id("web-12", &run), 12);
	ck_assert_uint_eq(run, 0);
	ck_assert_uint_eq(dumps_name_id("my-vm-7-1", &run), 7);
	ck_assert_uint_eq(run, 1);
	ck_assert_uint_eq(dumps_name_id("my-vm-7", &run), 7);
	ck_assert_uint_eq(run, 0);
	/* In the trash: SEQ~NAME-ID-RUN. */
	ck_assert_uint_eq(dumps_name_id("5~web-12-3", &run), 12);
	ck_assert_uint_eq(run, 3);
	ck_assert_uint_eq(dumps_name_id("12", &run), 12);
	ck_assert_uint_eq(dumps_name_id("web-x-3", &run), 3);
	ck_assert_uint_eq(run, 0);
	ck_assert_uint_eq(dumps_name_id(".hidden", &run), 0);
}
END_TEST

START_TEST(test_strings_are_bounded)
{
	struct exit_record *r;
	struct unit_msg m;
	char *big = malloc(EXIT_TEXT_MAX + 2);

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', EXIT_TEXT_MAX + 1);
	big[EXIT_TEXT_MAX + 1] = '\0';
	r = exit_record_unpack(unit_msg_obj(&m, "M s u s u s s s s s S", 5,
	    "id", 1, "owner_uid", 0, "failure_reason", big,
	    "name", unit_repeat('n', SPEC_MAX_NAME + 1),
	    "failure_info", big, (size_t)EXIT_TEXT_MAX));
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(r->failure_reason);
	ck_assert_ptr_null(r->name);
	ck_assert_uint_eq(strlen(r->failure_info), EXIT_TEXT_MAX);
	exit_record_unref(r);
	unit_msg_free(&m);
	/* Within the bound as bytes, past it once clean (each bad byte is
	 * three): what is kept must read back the same, so none is. */
	r = exit_record_unpack(unit_msg_obj(&m, "M s u s u s s", 3, "id", 1,
	    "owner_uid", 0, "name", unit_repeat('\xff', SPEC_MAX_NAME)));
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(r->name);
	exit_record_unref(r);
	unit_msg_free(&m);
	free(big);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("exit", &tc);

	tcase_add_test(tc, test_full_record_reads_back_as_itself);
	tcase_add_test(tc, test_no_record_without_id_and_owner);
	tcase_add_test(tc, test_mistyped_values_are_defaults);
	tcase_add_test(tc, test_strings_are_bounded);
	tcase_add_test(tc, test_old_records_and_killed_by);
	tcase_add_test(tc, test_dump_dir_names);
	return UNIT_RUN(s);
}
