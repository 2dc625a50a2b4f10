/*
 * reload.c: what a reread of the config directory would change in the
 * declared programs (added, changed, removed, with the directory's errors
 * and warnings) and, for update (wardctl update, SIGHUP, ward.reload),
 * making it so; at start-up, the first load. Which programs differ is
 * decided here; how a program is replaced or forgotten is program.c's
 * (a running one stops first, and the change applies at its death).
 *
 * layer: programs (calls program.c, confdir.c, conf.c)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

/* At start-up: create every declared program, start the autostart ones. */
int
reload_load(const char *dir)
{
	struct conf_program *cp;
	struct program *p;
	struct conf c;
	int errors = confdir_read(dir, &c);

	while ((cp = TAILQ_FIRST(&c.programs)) != NULL) {
		TAILQ_REMOVE(&c.programs, cp, entry);
		if (program_new(cp) == NULL)
			conf_program_free(cp);
	}
	conf_free(&c);
	TAILQ_FOREACH(p, &programs, entry) {
		if (p->conf->policy.autostart && p->state == PROGRAM_STOPPED)
			program_step(p, PROGRAM_EV_WANT);
	}
	return errors;
}

static int
reload_same(const struct conf_program *a, const struct conf_program *b)
{
	const struct program_policy *x = &a->policy, *y = &b->policy;
	char **lx[3] = { x->restart_on, x->after, x->requires };
	char **ly[3] = { y->restart_on, y->after, y->requires };
	int k, j;

	if (a->speclen != b->speclen || memcmp(a->spec, b->spec, a->speclen) != 0)
		return 0;
	if (x->autostart != y->autostart || x->restart != y->restart ||
	    x->backoff_initial_ms != y->backoff_initial_ms ||
	    x->backoff_max_ms != y->backoff_max_ms ||
	    x->backoff_reset_ms != y->backoff_reset_ms ||
	    x->max_restarts != y->max_restarts ||
	    x->restart_window_ms != y->restart_window_ms ||
	    x->startsecs_ms != y->startsecs_ms ||
	    x->readiness_notify != y->readiness_notify ||
	    memcmp(x->success_codes, y->success_codes, sizeof x->success_codes) ||
	    x->stop_signal != y->stop_signal ||
	    x->stop_timeout_ms != y->stop_timeout_ms)
		return 0;
	for (k = 0; k < 3; k++) {
		for (j = 0; lx[k] && ly[k] && lx[k][j] && ly[k][j]; j++) {
			if (strcmp(lx[k][j], ly[k][j]) != 0)
				return 0;
		}
		if ((lx[k] && lx[k][j]) || (ly[k] && ly[k][j]) ||
		    (!lx[k] != !ly[k] && ((lx[k] && lx[k][0]) || (ly[k] && ly[k][0]))))
			return 0;
	}
	return 1;
}

static void
reload_pack_names(msgpack_packer *pk, const char *key, const char *const *v,
    size_t n)
{
	size_t k;

	codec_pack_key(pk, key);
	msgpack_pack_array(pk, n);
	for (k = 0; k < n; k++)
		codec_pack_str(pk, v[k]);
}

/*
 * Compare the config dir with what runs: {added, changed, removed, errors,
 * warnings}.
 * With apply, also make it so (wardctl update, SIGHUP, ward.reload):
 * removed programs stop and go, changed ones restart with the new config,
 * added ones are created (and started if autostart); the rest are not
 * touched.
 */
static int
reload_diff(const char *dir, msgpack_packer *pk, int apply)
{
	const char **added, **changed, **removed;
	size_t na = 0, nc = 0, nr = 0, k, n = 0;
	struct conf_program *cp, *cnext;
	struct program *p;
	struct conf c;
	int nomem = 0;

	confdir_read(dir, &c);
	TAILQ_FOREACH(cp, &c.programs, entry)
		n++;
	TAILQ_FOREACH(p, &programs, entry)
		n++;
	added = calloc(n + 1, sizeof *added);
	changed = calloc(n + 1, sizeof *changed);
	removed = calloc(n + 1, sizeof *removed);
	if (added == NULL || changed == NULL || removed == NULL) {
		/* The caller has started a reply: it gets one, saying why. */
		static const char *const oom[] = { "out of memory: nothing "
		    "compared or applied" };

		if (pk != NULL) {
			msgpack_pack_map(pk, 5);
			reload_pack_names(pk, "added", NULL, 0);
			reload_pack_names(pk, "changed", NULL, 0);
			reload_pack_names(pk, "removed", NULL, 0);
			reload_pack_names(pk, "errors", oom, 1);
			reload_pack_names(pk, "warnings", NULL, 0);
		}
		nomem = 1;
		goto out;
	}
	/* Names point into configs that live until the reply is packed. */
	TAILQ_FOREACH(p, &programs, entry) {
		if (p->removing)
			continue;
		if (conf_find_program(&c, p->conf->name) == NULL)
			removed[nr++] = p->conf->name;
	}
	TAILQ_FOREACH(cp, &c.programs, entry) {
		if ((p = program_find(cp->name)) == NULL || p->removing)
			added[na++] = cp->name;
		else if (!reload_same(p->conf, cp))
			changed[nc++] = cp->name;
	}
	if (pk != NULL) {
		msgpack_pack_map(pk, 5);
		reload_pack_names(pk, "added", added, na);
		reload_pack_names(pk, "changed", changed, nc);
		reload_pack_names(pk, "removed", removed, nr);
		reload_pack_names(pk, "errors", (const char *const *)c.errors,
		    c.nerrors);
		reload_pack_names(pk, "warnings",
		    (const char *const *)c.warnings, c.nwarnings);
	}
	if (!apply)
		goto out;
	for (k = 0; k < nr; k++) {
		if ((p = program_find(removed[k])) == NULL)
			continue;
		program_step(p, PROGRAM_EV_REMOVE);
	}
	TAILQ_FOREACH_SAFE(cp, &c.programs, entry, cnext) {
		p = program_find(cp->name);
		/* Changed, or declared again while its removal is pending
		 * (reported as added): replaced at its instance's death. */
		if (p != NULL && (p->removing || !reload_same(p->conf, cp))) {
			TAILQ_REMOVE(&c.programs, cp, entry);
			conf_program_free(p->next_conf);
			p->next_conf = cp;	/* handed over with the event */
			program_step(p, PROGRAM_EV_REPLACE);
		} else if (p == NULL) {
			TAILQ_REMOVE(&c.programs, cp, entry);
			if ((p = program_new(cp)) == NULL)
				conf_program_free(cp);
			else if (cp->policy.autostart)
				program_step(p, PROGRAM_EV_WANT);
		}
	}
out:
	free(added);
	free(changed);
	free(removed);
	k = c.nerrors + nomem;
	conf_free(&c);
	return (int)k;
}

void
reload_reread(const char *dir, msgpack_packer *pk)
{
	reload_diff(dir, pk, 0);
}

int
reload_update(const char *dir, msgpack_packer *pk)
{
	return reload_diff(dir, pk, 1);
}

