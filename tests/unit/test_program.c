/*
 * test_program.c: the declared program's state machine (program.c),
 * driven through the sys seam (fake_sys.c) without real processes. The
 * programs come from a config file in a temporary directory, read and
 * mapped by confdir.c as wardd reads them (reload_load); program.c hears
 * of its instances' deaths as instance.c's observer, as in wardd. Each
 * test checks the transitions of program_step: restart with backoff, stay
 * down, give up (FATAL), readiness by startsecs or READY=1, requires, stop,
 * an update that replaces or removes a running program, and a name held
 * by another instance.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_sys.h"
#include "unit.h"

static char conf_dir[] = "/tmp/ward-unit-conf-XXXXXX";

/* Write text as the config directory's only file. */
static void
write_conf(const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/test.conf", conf_dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* The engine, the observer wardd registers, and text's programs loaded
 * (the autostart ones wanted) as at wardd's start. */
static void
setup_engine(const char *text)
{
	fake_sys_setup();
	instance_observe(program_instance_cb);
	program_init();
	ck_assert_ptr_nonnull(mkdtemp(conf_dir));
	opts.config_dir = conf_dir;
	write_conf(text);
}

static void
setup(const char *text)
{
	setup_engine(text);
	ck_assert_int_eq(reload_load(conf_dir), 0);
}

static void
teardown(void)
{
	char path[256];

	snprintf(path, sizeof path, "%s/test.conf", conf_dir);
	unlink(path);
	rmdir(conf_dir);
	fake_sys_teardown();
}

static struct program *
prog(const char *name)
{
	struct program *p = program_find(name);

	ck_assert_msg(p != NULL, "no program %s", name);
	return p;
}

/* Packed status "ready" as a client reads it. */
static int
packed_ready(const struct program *p)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	uint32_t k;
	int ready = -1;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	program_pack(p, &pk);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	for (k = 0; k < u.data.via.map.size; k++) {
		const msgpack_object_kv *kv = &u.data.via.map.ptr[k];

		if (kv->key.via.str.size == 5 &&
		    memcmp(kv->key.via.str.ptr, "ready", 5) == 0)
			ready = kv->val.via.boolean;
	}
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return ready;
}

START_TEST(test_backoff_and_restart)
{
	struct program *p;

	setup("[program:app]\ncommand = /bin/true\nbackoff_initial_ms = 10\n");
	p = prog("app");
	ck_assert_int_eq(p->state, PROGRAM_STARTING);
	ck_assert_str_eq(program_state_name(p->state), "running");
	ck_assert_int_eq(p->inst->state, INSTANCE_RUNNING);
	ck_assert(ev_is_active(&p->startsecs_t));
	fake_sys_fire(&p->startsecs_t);
	ck_assert_int_eq(p->state, PROGRAM_RUNNING);
	ck_assert_int_eq(packed_ready(p), 1);

	fake_sys_exit(p->inst, 1, 0);			/* a failure */
	ck_assert_int_eq(p->state, PROGRAM_BACKOFF);
	ck_assert_uint_eq(p->restart_count, 1);
	ck_assert(ev_is_active(&p->backoff_t));
	ck_assert_int_eq(packed_ready(p), 0);

	fake_sys_fire(&p->backoff_t);
	ck_assert_int_eq(p->state, PROGRAM_STARTING);
	ck_assert_int_eq(p->inst->state, INSTANCE_RUNNING);
	teardown();
}
END_TEST

START_TEST(test_restart_no_exits)
{
	struct program *p;

	setup("[program:once]\ncommand = /bin/true\nrestart = no\n");
	p = prog("once");
	fake_sys_exit(p->inst, 1, 0);
	ck_assert_int_eq(p->state, PROGRAM_EXITED);
	ck_assert(!ev_is_active(&p->backoff_t));
	ck_assert_uint_eq(p->restart_count, 0);
	teardown();
}
END_TEST

/* On-failure: exit 0 is a success and stays down. */
START_TEST(test_clean_exit_stays_down)
{
	struct program *p;

	setup("[program:job]\ncommand = /bin/true\nstartsecs = 0\n");
	p = prog("job");
	fake_sys_exit(p->inst, 0, 0);
	ck_assert_int_eq(p->state, PROGRAM_EXITED);
	teardown();
}
END_TEST

START_TEST(test_too_many_restarts_is_fatal)
{
	struct program *p;
	int k;

	setup("[program:crash]\ncommand = /bin/true\nmax_restarts = 2\n"
	    "backoff_initial_ms = 1\nrestart_window_ms = 60000\n");
	p = prog("crash");
	for (k = 0; k < 2; k++) {
		fake_sys_exit(p->inst, 1, 0);
		ck_assert_int_eq(p->state, PROGRAM_BACKOFF);
		fake_sys_fire(&p->backoff_t);
		ck_assert_int_eq(p->state, PROGRAM_STARTING);
	}
	fake_sys_exit(p->inst, 1, 0);
	ck_assert_int_eq(p->state, PROGRAM_FATAL);
	ck_assert_ptr_nonnull(p->fatal_reason);
	ck_assert_msg(strstr(p->fatal_reason, "2 restarts within") != NULL,
	    "%s", p->fatal_reason);
	ck_assert(!ev_is_active(&p->backoff_t));

	/* wardctl start clears it and starts over. */
	{
		struct ward_err e = WARD_ERR_INIT;

		ck_assert_int_eq(program_start(p, &e), 0);
	}
	ck_assert_int_eq(p->state, PROGRAM_STARTING);
	ck_assert_ptr_null(p->fatal_reason);
	teardown();
}
END_TEST

START_TEST(test_ready_by_notify)
{
	struct program *p;

	setup("[program:svc]\ncommand = /bin/true\nreadiness = notify\n");
	p = prog("svc");
	ck_assert_int_eq(p->state, PROGRAM_STARTING);
	ck_assert(!ev_is_active(&p->startsecs_t));	/* READY=1 decides */
	ck_assert_int_eq(packed_ready(p), 0);
	instance_notify_line(p->inst, "READY=1", 7);
	ck_assert_int_eq(p->state, PROGRAM_RUNNING);
	ck_assert_int_eq(packed_ready(p), 1);
	teardown();
}
END_TEST

/* A death before startsecs is a failed start, restarted even when the
 * exit code says success. */
START_TEST(test_death_before_startsecs)
{
	struct program *p;

	setup("[program:flap]\ncommand = /bin/true\nstartsecs = 5\n");
	p = prog("flap");
	fake_sys_exit(p->inst, 0, 0);
	ck_assert_int_eq(p->state, PROGRAM_BACKOFF);
	teardown();
}
END_TEST

START_TEST(test_requires_waits_and_fails_with)
{
	struct program *db, *web;

	setup("[program:db]\ncommand = /bin/true\nmax_restarts = 0\n"
	    "autostart = false\n"
	    "[program:web]\ncommand = /bin/true\nrequires = db\n");
	db = prog("db");
	web = prog("web");
	/* web pulled db in, and waits for it to be ready. */
	ck_assert_int_eq(db->state, PROGRAM_STARTING);
	ck_assert_int_eq(web->state, PROGRAM_WAITING);
	ck_assert_int_eq(web->inst->state, INSTANCE_NOT_STARTED);
	fake_sys_fire(&db->startsecs_t);
	ck_assert_int_eq(db->state, PROGRAM_RUNNING);
	ck_assert_int_eq(web->state, PROGRAM_STARTING);
	ck_assert_int_eq(web->inst->state, INSTANCE_RUNNING);

	/* db gives up at once (max_restarts = 0): web is stopped, FATAL. */
	fake.nsignals = 0;
	fake_sys_exit(db->inst, 1, 0);
	ck_assert_int_eq(db->state, PROGRAM_FATAL);
	ck_assert_int_eq(web->state, PROGRAM_FATAL);
	ck_assert_str_eq(web->fatal_reason, "required program 'db' is fatal");
	ck_assert_int_eq(web->inst->killed_by, KILLED_BY_DEPENDENCY);
	ck_assert_int_eq(fake_sys_last_signal(), SIGTERM);
	fake_sys_exit(web->inst, 0, SIGTERM);
	ck_assert_int_eq(web->state, PROGRAM_FATAL);	/* and stays so */
	ck_assert(!ev_is_active(&web->backoff_t));
	teardown();
}
END_TEST

START_TEST(test_stop)
{
	struct program *p;

	setup("[program:app]\ncommand = /bin/true\n");
	p = prog("app");
	/* Stopping the running instance: STOPPED, no restart. */
	ck_assert_int_eq(program_cancel(p), -1);	/* nothing pending */
	ck_assert_int_eq(instance_stop(p->inst, 1000), 0);
	fake_sys_exit(p->inst, 0, SIGTERM);
	ck_assert_int_eq(p->state, PROGRAM_STOPPED);
	ck_assert(!ev_is_active(&p->backoff_t));

	/* A pending restart called off: STOP in BACKOFF. */
	{
		struct ward_err e = WARD_ERR_INIT;

		ck_assert_int_eq(program_start(p, &e), 0);
	}
	fake_sys_exit(p->inst, 1, 0);
	ck_assert_int_eq(p->state, PROGRAM_BACKOFF);
	ck_assert_int_eq(program_cancel(p), 0);
	ck_assert_int_eq(p->state, PROGRAM_STOPPED);
	ck_assert(!ev_is_active(&p->backoff_t));
	teardown();
}
END_TEST

/* update: a changed program restarts with its new config at its death; a
 * removed one is forgotten. */
START_TEST(test_update_replaces_and_removes)
{
	struct program *p;
	struct instance *old;
	uint64_t old_id;

	setup("[program:a]\ncommand = /bin/true\n"
	    "[program:b]\ncommand = /bin/true\n");
	p = prog("a");
	old = p->inst;
	old_id = old->id;
	write_conf("[program:a]\ncommand = /bin/false\n");
	ck_assert_int_eq(reload_update(conf_dir, NULL), 0);
	ck_assert_ptr_nonnull(p->next_conf);
	ck_assert_int_eq(p->state, PROGRAM_STARTING);	/* runs on till death */
	ck_assert(prog("b")->removing);

	fake_sys_exit(old, 0, SIGTERM);
	ck_assert_int_eq(p->state, PROGRAM_STOPPED);
	fake_sys_fire(&p->apply_t);
	ck_assert_ptr_null(p->next_conf);
	ck_assert_ptr_nonnull(p->inst);
	ck_assert_uint_ne(p->inst->id, old_id);		/* a new instance */
	ck_assert_ptr_null(instance_find_id(old_id));
	ck_assert_str_eq(p->inst->spec.argv[0], "/bin/false");
	ck_assert_int_eq(p->state, PROGRAM_STARTING);

	fake_sys_exit(prog("b")->inst, 0, SIGTERM);
	fake_sys_fire(&prog("b")->apply_t);
	ck_assert_ptr_null(program_find("b"));
	teardown();
}
END_TEST

/* A name taken before it was declared: the program waits without an
 * instance (NAME_HELD), and gets one once the holder is removed. */
START_TEST(test_name_held_until_freed)
{
	struct instance *holder;
	struct program *p;

	setup_engine("[program:app]\ncommand = /bin/true\n");
	holder = fake_sys_instance("app", 0);
	ck_assert_int_eq(reload_load(conf_dir), 1);	/* said as an error */
	p = prog("app");
	ck_assert_int_eq(p->state, PROGRAM_NAME_HELD);
	ck_assert_ptr_null(p->inst);
	ck_assert_uint_eq(p->name_holder, holder->id);

	instance_remove(holder);
	ck_assert_int_eq(p->state, PROGRAM_NAME_HELD);	/* not inside removal */
	fake_sys_fire(&p->apply_t);
	ck_assert_ptr_nonnull(p->inst);
	ck_assert_ptr_eq(p->inst->program, p);
	ck_assert_int_eq(p->state, PROGRAM_STARTING);	/* autostart */
	teardown();
}
END_TEST

/*
 * Declared again while its removal is pending (its instance still
 * stopping): reread says "added", and update keeps it: once the old
 * instance dies, the program runs again with the new declaration instead
 * of being forgotten.
 */
START_TEST(test_readded_while_removal_pending)
{
	struct program *p;
	struct instance *old;
	uint64_t old_id;

	setup("[program:a]\ncommand = /bin/true\n"
	    "[program:b]\ncommand = /bin/true\n");
	p = prog("b");
	old = p->inst;
	old_id = old->id;
	write_conf("[program:a]\ncommand = /bin/true\n");
	ck_assert_int_eq(reload_update(conf_dir, NULL), 0);
	ck_assert(p->removing);
	write_conf("[program:a]\ncommand = /bin/true\n"
	    "[program:b]\ncommand = /bin/false\n");
	ck_assert_int_eq(reload_update(conf_dir, NULL), 0);
	ck_assert(!p->removing);
	ck_assert_ptr_nonnull(p->next_conf);

	fake_sys_exit(old, 0, SIGTERM);
	fake_sys_fire(&p->apply_t);
	ck_assert_ptr_eq(program_find("b"), p);
	ck_assert_ptr_nonnull(p->inst);
	ck_assert_uint_ne(p->inst->id, old_id);
	ck_assert_str_eq(p->inst->spec.argv[0], "/bin/false");
	ck_assert_int_eq(p->state, PROGRAM_STARTING);	/* autostart */
	teardown();
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("program", &tc);

	tcase_add_test(tc, test_backoff_and_restart);
	tcase_add_test(tc, test_restart_no_exits);
	tcase_add_test(tc, test_clean_exit_stays_down);
	tcase_add_test(tc, test_too_many_restarts_is_fatal);
	tcase_add_test(tc, test_ready_by_notify);
	tcase_add_test(tc, test_death_before_startsecs);
	tcase_add_test(tc, test_requires_waits_and_fails_with);
	tcase_add_test(tc, test_stop);
	tcase_add_test(tc, test_update_replaces_and_removes);
	tcase_add_test(tc, test_name_held_until_freed);
	tcase_add_test(tc, test_readded_while_removal_pending);
	return UNIT_RUN(s);
}
