/*
 * program.c: declared programs. A program is a [program:NAME] section of
 * the config directory (confdir.c reads it) plus the instance that runs it
 * and a policy around that instance's runs: restart on death with
 * exponential backoff and an intensity limit past which it is FATAL, start
 * order (after, requires) by readiness, and reread/update to apply config
 * changes to what runs (reload.c decides what changed). The program's state moves only through
 * program_set_state; each timer has one meaning.
 *
 * layer: programs
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

struct program_list programs = TAILQ_HEAD_INITIALIZER(programs);
static struct table programs_by_name;

static void	program_backoff_cb(struct ev_loop *, ev_timer *, int);
static void	program_startsecs_cb(struct ev_loop *, ev_timer *, int);
static void	program_apply_cb(struct ev_loop *, ev_timer *, int);
static void	program_start_waiting(void);

static const char *const program_state_names[] = {
	[PROGRAM_STOPPED] = "stopped",
	[PROGRAM_WAITING] = "waiting",
	[PROGRAM_RUNNING] = "running",
	[PROGRAM_BACKOFF] = "backoff",
	[PROGRAM_EXITED] = "exited",
	[PROGRAM_FATAL] = "fatal",
};

const char *
program_state_name(enum program_state s)
{
	return program_state_names[s];
}

void
program_init(void)
{
	table_init(&programs_by_name);
}

struct program *
program_find(const char *name)
{
	struct table_node *n;

	n = table_find(&programs_by_name, name, strlen(name));
	return n == NULL ? NULL : container_of(n, struct program, by_name);
}

/* The one place a program's state changes. */
static void
program_set_state(struct program *p, enum program_state s)
{
	if (p->state == s)
		return;
	log_debug("program %s: %s -> %s", p->conf->name,
	    program_state_names[p->state], program_state_names[s]);
	p->state = s;
}


/* ---- running programs */

/* Make the program's instance from its spec, as instance.create would. */
static int
program_make_instance(struct program *p, char *err, size_t errlen)
{
	const msgpack_object *args[ARG_MAX];
	struct instance_config cfg;
	const char *code = NULL;
	msgpack_unpacked u;
	struct instance *i;
	size_t off = 0;

	p->name_holder = 0;
	if ((i = instance_find_name(p->conf->name)) != NULL) {
		/* Taken before it was declared: the program waits for it. */
		p->name_holder = i->id;
		snprintf(err, errlen, "the name is held by instance %" PRIu64
		    " of uid %u; the program is created once that instance is "
		    "removed", i->id, (unsigned)i->owner_uid);
		return -1;
	}
	msgpack_unpacked_init(&u);
	snprintf(err, errlen, "internal: cannot read back its spec");
	if (msgpack_unpack_next(&u, p->conf->spec, p->conf->speclen, &off) !=
	    MSGPACK_UNPACK_SUCCESS ||
	    codec_args(&u.data, config_spec, args, err, errlen) == -1 ||
	    (code = config_parse_args(&cfg, args, peer_self(), err,
	    errlen)) != NULL) {
		if (code != NULL)
			config_free(&cfg);
		msgpack_unpacked_destroy(&u);
		return -1;
	}
	msgpack_unpacked_destroy(&u);
	if ((i = instance_new(&cfg, peer_self(), err, errlen)) == NULL) {
		config_free(&cfg);
		return -1;
	}
	i->program = p;
	p->inst = i;
	i->stop_signal = p->conf->policy.stop_signal;
	i->stop_timeout_ms = p->conf->policy.stop_timeout_ms;
	return 0;
}

/* Is the program a requirement has to wait for ready? */
static int
program_dep_ready(const char *name, int required)
{
	struct program *d = program_find(name);

	if (d == NULL)
		return !required;	/* after= a program not declared: ignore */
	if (d->state == PROGRAM_RUNNING && d->ready)
		return 1;
	/* after= only orders programs that are starting at all. */
	return !required && (d->state == PROGRAM_STOPPED ||
	    d->state == PROGRAM_EXITED || d->state == PROGRAM_FATAL);
}

static int
program_deps_ready(const struct program *p)
{
	char **n;

	for (n = p->conf->policy.after; n != NULL && *n != NULL; n++) {
		if (!program_dep_ready(*n, 0))
			return 0;
	}
	for (n = p->conf->policy.requires; n != NULL && *n != NULL; n++) {
		if (!program_dep_ready(*n, 1))
			return 0;
	}
	return 1;
}

/* Spawn now (dependencies are ready). A spawn failure comes back through
 * program_instance_died like any death. */
static void
program_spawn(struct program *p)
{
	char err[512];

	p->ready = 0;
	program_set_state(p, PROGRAM_RUNNING);
	if (instance_start(p->inst, err, sizeof err) == -1) {
		log_warnx("program %s: %s", p->conf->name, err);
		return;
	}
	if (!p->conf->policy.readiness_notify) {
		ev_timer_set(&p->startsecs_t, p->conf->policy.startsecs_ms / 1000.0, 0.);
		ev_timer_start(ward_loop, &p->startsecs_t);
	}
}

/*
 * Start it, or wait for what it needs; required programs are pulled in.
 * A program whose name another instance holds has nothing to start yet:
 * program_apply_cb wants it again once it has its instance.
 */
void
program_want(struct program *p)
{
	char **n;

	if (p->inst == NULL)
		return;

	for (n = p->conf->policy.requires; n != NULL && *n != NULL; n++) {
		struct program *d = program_find(*n);

		if (d != NULL && (d->state == PROGRAM_STOPPED ||
		    d->state == PROGRAM_EXITED))
			program_want(d);
	}
	if (program_deps_ready(p))
		program_spawn(p);
	else
		program_set_state(p, PROGRAM_WAITING);
}

/* Start every waiting program whose dependencies are now ready. */
static void
program_start_waiting(void)
{
	struct program *p;
	int again;

	do {
		again = 0;
		TAILQ_FOREACH(p, &programs, entry) {
			if (p->state == PROGRAM_WAITING && program_deps_ready(p)) {
				program_spawn(p);
				again = 1;
			}
		}
	} while (again);
}

static void
program_became_ready(struct program *p)
{
	if (p->ready)
		return;
	p->ready = 1;
	if (p->conf->policy.readiness_notify)
		p->attempt = 0;	/* READY=1 resets the backoff */
	ev_timer_stop(ward_loop, &p->startsecs_t);
	log_info("program %s is ready", p->conf->name);
	program_start_waiting();
}

/* startsecs passed with the instance still running: it counts as up. */
static void
program_startsecs_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, startsecs_t);

	if (p->state == PROGRAM_RUNNING && p->inst != NULL &&
	    p->inst->state == INSTANCE_RUNNING)
		program_became_ready(p);
}

/* Called by instance_set_payload: READY=1 may make a program ready. */
static void
program_payload_changed(struct instance *i)
{
	if (i->program != NULL && i->payload >= PAYLOAD_READY &&
	    i->payload != PAYLOAD_HANGUP && i->program->state == PROGRAM_RUNNING)
		program_became_ready(i->program);
}

/* Stop what requires p: p is fatal, so they cannot run. */
static void
program_fatal(struct program *p, const char *why)
{
	struct program *d;
	char **n;

	program_set_state(p, PROGRAM_FATAL);
	free(p->fatal_reason);
	p->fatal_reason = strdup(why);
	log_warnx("program %s is fatal: %s", p->conf->name, why);
	if (p->inst != NULL)
		event_emit(EVENT_FATAL, p->inst);
	TAILQ_FOREACH(d, &programs, entry) {
		for (n = d->conf->policy.requires; n != NULL && *n != NULL; n++) {
			if (strcmp(*n, p->conf->name) != 0)
				continue;
			char note[256];

			snprintf(note, sizeof note, "required program '%s' is fatal",
			    p->conf->name);
			if (d->state == PROGRAM_RUNNING && d->inst != NULL &&
			    d->inst->state == INSTANCE_RUNNING) {
				free(d->inst->failure_note);
				d->inst->failure_note = strdup(note);
				d->inst->killed_by = KILLED_BY_DEPENDENCY;
				instance_stop(d->inst, d->conf->policy.stop_timeout_ms);
			}
			if (d->state != PROGRAM_FATAL)
				program_fatal(d, note);
			break;
		}
	}
}

/* The restart ring: how many restarts within the window, this one counted. */
static size_t
program_count_restart(struct program *p, ev_tstamp now)
{
	size_t cap = p->conf->policy.max_restarts + 1, k, n = 0;
	ev_tstamp window = p->conf->policy.restart_window_ms / 1000.0;

	if (p->restarts == NULL || p->nrestarts != cap) {
		free(p->restarts);
		p->restarts = calloc(cap, sizeof *p->restarts);
		p->nrestarts = p->restarts ? cap : 0;
		p->restarts_head = 0;
		if (p->restarts == NULL)
			return 0;
	}
	p->restarts[p->restarts_head] = now;
	p->restarts_head = (p->restarts_head + 1) % cap;
	for (k = 0; k < cap; k++) {
		if (p->restarts[k] > 0 && now - p->restarts[k] <= window)
			n++;
	}
	return n;
}

/* Whether the policy wants this death restarted. */
static int
program_should_restart(const struct program *p, const struct exit_record *r,
    int failed_start)
{
	const struct program_policy *pol = &p->conf->policy;
	int ok;
	char **n;

	if (pol->restart == RESTART_NO)
		return 0;
	if (pol->restart_on != NULL) {
		for (n = pol->restart_on; *n != NULL; n++) {
			if (strcmp(*n, r->death_reason) == 0)
				return 1;
		}
		return failed_start;
	}
	if (pol->restart == RESTART_ALWAYS)
		return 1;
	ok = r->exited && r->exit_code >= 0 && r->exit_code < 256 &&
	    (pol->success_codes[r->exit_code / 32] & (1U << (r->exit_code % 32))) &&
	    strcmp(r->death_reason, "SHUTDOWN") == 0;
	if (r->exited && r->exit_code != 0 && (pol->success_codes[r->exit_code /
	    32] & (1U << (r->exit_code % 32))))
		ok = 1;		/* exitcodes lists it as expected */
	return failed_start || !ok;
}

/*
 * Called from instance_finish after every death of a program's instance
 * (spawn failures included). Decides: stay down, back off and restart, or
 * give up. Never starts or frees anything here: the caller may still hold
 * the instance; restarts go through timers.
 */
static void
program_instance_died(struct instance *i)
{
	struct program *p = i->program;
	const struct exit_record *r = i->exit;
	ev_tstamp now = ev_now(ward_loop);
	uint64_t delay;
	int failed_start;
	char why[256];

	if (p == NULL || r == NULL)
		return;
	ev_timer_stop(ward_loop, &p->startsecs_t);
	if (p->removing || p->next_conf != NULL) {
		ev_timer_set(&p->apply_t, 0., 0.);
		ev_timer_start(ward_loop, &p->apply_t);
		program_set_state(p, PROGRAM_STOPPED);
		return;
	}
	if (p->state == PROGRAM_FATAL)
		return;		/* stopped because a requirement is fatal */
	if (i->stop_requested || loop_shutting_down()) {
		program_set_state(p, PROGRAM_STOPPED);
		return;
	}
	failed_start = !p->ready && r->uptime_ms < p->conf->policy.startsecs_ms;
	if (!program_should_restart(p, r, failed_start)) {
		program_set_state(p, PROGRAM_EXITED);
		program_start_waiting();	/* after= may be satisfied now */
		return;
	}
	/*
	 * Stable long enough, or it said READY=1: start the backoff over.
	 * (Ready by startsecs alone does not count: with startsecs = 0 a crash
	 * loop would never back off.)
	 */
	if ((p->ready && p->conf->policy.readiness_notify) ||
	    r->uptime_ms >= p->conf->policy.backoff_reset_ms)
		p->attempt = 0;
	if (program_count_restart(p, now) > p->conf->policy.max_restarts) {
		snprintf(why, sizeof why, "%u restarts within %u ms (last death: "
		    "%s)", p->conf->policy.max_restarts,
		    p->conf->policy.restart_window_ms, r->death_reason);
		program_fatal(p, why);
		return;
	}
	delay = (uint64_t)p->conf->policy.backoff_initial_ms << (p->attempt < 30 ?
	    p->attempt : 30);
	if (delay > p->conf->policy.backoff_max_ms)
		delay = p->conf->policy.backoff_max_ms;
	p->attempt++;
	p->restart_count++;
	program_set_state(p, PROGRAM_BACKOFF);
	ev_timer_set(&p->backoff_t, delay / 1000.0, 0.);
	ev_timer_start(ward_loop, &p->backoff_t);
	log_info("program %s died (%s)%s: restart %u in %" PRIu64 " ms",
	    p->conf->name, r->death_reason, failed_start ? " before startsecs" :
	    "", p->attempt, delay);
	event_emit(EVENT_RESTARTING, i);
}

static void
program_backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, backoff_t);

	if (p->state != PROGRAM_BACKOFF || p->inst == NULL)
		return;
	program_want(p);
}

/*
 * wardctl start on a program: clear a fatal state and its restart count,
 * then start it (waiting for its dependencies as at boot).
 */
int
program_start(struct program *p, char *err, size_t errlen)
{
	if (p->inst == NULL) {
		snprintf(err, errlen, "program '%s' is being replaced", p->conf->name);
		return -1;
	}
	if (p->inst->state == INSTANCE_RUNNING) {
		snprintf(err, errlen, "program '%s' is already running",
		    p->conf->name);
		return -1;
	}
	ev_timer_stop(ward_loop, &p->backoff_t);
	p->attempt = 0;
	free(p->restarts);
	p->restarts = NULL;
	p->nrestarts = 0;
	free(p->fatal_reason);
	p->fatal_reason = NULL;
	program_set_state(p, PROGRAM_STOPPED);
	program_want(p);
	return 0;
}

/*
 * wardctl stop on a program that is not running: a pending restart (backoff)
 * or a start waiting for its dependencies is called off, as supervisorctl
 * stop does in BACKOFF. Returns -1 when nothing was pending.
 */
int
program_cancel(struct program *p)
{
	if (p->state != PROGRAM_BACKOFF && p->state != PROGRAM_WAITING)
		return -1;
	ev_timer_stop(ward_loop, &p->backoff_t);
	program_set_state(p, PROGRAM_STOPPED);
	log_info("program %s: pending start called off", p->conf->name);
	return 0;
}

struct program *
program_new(struct conf_program *cp)
{
	struct program *p;
	char err[512];

	if ((p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	p->conf = cp;
	ev_init(&p->backoff_t, program_backoff_cb);
	ev_init(&p->startsecs_t, program_startsecs_cb);
	ev_init(&p->apply_t, program_apply_cb);
	/* Its name held by another instance: kept, waiting (confdir_read
	 * has put that in the errors already). */
	if (program_make_instance(p, err, sizeof err) == -1 &&
	    p->name_holder == 0) {
		log_warnx("%s:%d: [program:%s]: %s", cp->file, cp->line, cp->name,
		    err);
		free(p);
		return NULL;
	}
	table_insert(&programs_by_name, &p->by_name, cp->name, strlen(cp->name));
	TAILQ_INSERT_TAIL(&programs, p, entry);
	return p;
}

static void
program_free(struct program *p)
{
	ev_timer_stop(ward_loop, &p->backoff_t);
	ev_timer_stop(ward_loop, &p->startsecs_t);
	ev_timer_stop(ward_loop, &p->apply_t);
	table_remove(&programs_by_name, &p->by_name);
	TAILQ_REMOVE(&programs, p, entry);
	if (p->inst != NULL) {
		p->inst->program = NULL;
		if (p->inst->state != INSTANCE_RUNNING)
			instance_remove(p->inst);
	}
	conf_program_free(p->conf);
	conf_program_free(p->next_conf);
	free(p->restarts);
	free(p->fatal_reason);
	free(p);
}

/*
 * Apply what was deferred: after a death that an update waited for,
 * replace or forget the program; once the instance that held a waiting
 * program's name is removed (program_name_freed), make its instance.
 */
static void
program_apply_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, apply_t);
	struct conf_program *next;
	int changed;
	char err[512];

	if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
		return;		/* not dead yet; its death comes back here */
	if (p->removing) {
		log_info("program %s removed", p->conf->name);
		program_free(p);
		return;
	}
	next = p->next_conf;
	p->next_conf = NULL;
	if ((changed = next != NULL)) {
		if (p->inst != NULL) {
			p->inst->program = NULL;
			instance_remove(p->inst);
			p->inst = NULL;
		}
		/* The name index points into the conf: re-key it on the new one. */
		table_remove(&programs_by_name, &p->by_name);
		conf_program_free(p->conf);
		p->conf = next;
		table_insert(&programs_by_name, &p->by_name, next->name,
		    strlen(next->name));
	} else if (p->inst != NULL)
		return;		/* nothing deferred is left */
	p->attempt = 0;
	free(p->restarts);
	p->restarts = NULL;
	p->nrestarts = 0;
	if (program_make_instance(p, err, sizeof err) == -1) {
		log_warnx("program %s: %s", p->conf->name, err);
		program_set_state(p, p->name_holder != 0 ? PROGRAM_STOPPED :
		    PROGRAM_FATAL);
		return;
	}
	log_info("program %s %s", p->conf->name, changed ? "changed: restarting" :
	    "has its name: created");
	program_set_state(p, PROGRAM_STOPPED);
	if (p->conf->policy.autostart)
		program_want(p);
}

/*
 * instance.c: an instance that ran no program was removed. A program
 * waiting for its name gets its instance, from apply_t rather than inside
 * the removal.
 */
static void
program_name_freed(const char *name)
{
	struct program *p = program_find(name);

	if (p == NULL || p->inst != NULL || p->name_holder == 0 || p->removing)
		return;
	ev_timer_set(&p->apply_t, 0., 0.);
	ev_timer_start(ward_loop, &p->apply_t);
}


/* The "program" map of a status: what the policy is doing. */
void
program_pack(const struct program *p, msgpack_packer *pk)
{
	msgpack_pack_map(pk, 8);
	codec_pack_kv_str(pk, "state", program_state_names[p->state]);
	codec_pack_kv_str(pk, "file", p->conf->file);
	codec_pack_kv_int(pk, "line", p->conf->line);
	codec_pack_kv_bool(pk, "autostart", p->conf->policy.autostart);
	codec_pack_kv_str(pk, "restart", p->conf->policy.restart == RESTART_NO ?
	    "no" : p->conf->policy.restart == RESTART_ALWAYS ? "always" :
	    "on-failure");
	codec_pack_kv_uint(pk, "restarts", p->restart_count);
	codec_pack_kv_bool(pk, "ready", p->ready);
	codec_pack_kv_str(pk, "fatal_reason", p->fatal_reason);
}

/* instance.c's observer: readiness, deaths (the restart policy) and
 * removals (a program's instance, or a name a program waits for). */
void
program_instance_cb(struct instance *i, enum instance_event ev)
{
	switch (ev) {
	case INSTANCE_EV_PAYLOAD:
		program_payload_changed(i);
		break;
	case INSTANCE_EV_DIED:
		program_instance_died(i);	/* never frees i */
		break;
	case INSTANCE_EV_REMOVED:
		if (i->program != NULL)
			i->program->inst = NULL;
		else
			program_name_freed(i->cfg.name);
		break;
	default:
		break;
	}
}
