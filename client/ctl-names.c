/*
 * ctl-names.c: what the names a user gives a command stand for, as
 * supervisorctl reads them: NAME (or an instance id), GROUP:* (every
 * instance called GROUP:something, and the one called just GROUP, as a
 * program alone in its group is named) and all. One instance.list answers
 * them all, so each command sees the same moment. Part of the shared core
 * (ctl.h); it calls libward and ctl-conn.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* "GROUP:*": 1 and the group's length, else 0. */
static int
ctl_names_group(const char *arg, size_t *len)
{
	size_t n = strlen(arg);

	if (n < 3 || strcmp(arg + n - 2, ":*") != 0)
		return 0;
	*len = n - 2;
	return 1;
}

static int
ctl_names_add(struct ctl_sel *sel, const char *arg, struct ward_status *s,
    int group, int many)
{
	struct ctl_pick *v;

	if (sel->n % 16 == 0) {
		v = realloc(sel->v, (sel->n + 16) * sizeof *v);
		if (v == NULL)
			return -1;
		sel->v = v;
	}
	sel->v[sel->n].arg = arg;
	sel->v[sel->n].s = s;
	sel->v[sel->n].many = many;
	sel->v[sel->n++].group = group;
	return 0;
}

/* One arg: the instances it names, or one pick without any (s NULL). */
static int
ctl_names_one(struct ctl_sel *sel, const char *arg)
{
	size_t i, len, found = 0;
	int group = ctl_names_group(arg, &len), id = ctl_is_id(arg);

	for (i = 0; i < sel->nall; i++) {
		const char *name = sel->all[i].name;

		if (group ? strncmp(name, arg, len) == 0 &&
		    (name[len] == '\0' || name[len] == ':') :
		    id ? sel->all[i].id == strtoull(arg, NULL, 10) :
		    strcmp(name, arg) == 0) {
			if (ctl_names_add(sel, arg, &sel->all[i], group, group) == -1)
				return -1;
			found++;
		}
	}
	return found ? 0 : ctl_names_add(sel, arg, NULL, group, 0);
}

/*
 * The instances argv names, in the order given (none, or all among
 * them: every instance the caller may see, in wardd's order). 0, or an
 * exit status after the failure is reported.
 */
int
ctl_select(struct ctl *c, int argc, char **argv, struct ctl_sel *sel)
{
	int i, every = argc == 0;

	memset(sel, 0, sizeof *sel);
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (ward_instance_list(c->w, NULL, &sel->all, &sel->nall) == -1)
		return ctl_failed(c, NULL);
	for (i = 0; i < argc; i++)
		every |= strcmp(argv[i], "all") == 0;
	for (i = 0; every && (size_t)i < sel->nall; i++) {
		if (ctl_names_add(sel, sel->all[i].name, &sel->all[i], 0, 1) == -1)
			goto fail;
	}
	for (i = 0; !every && i < argc; i++) {
		if (ctl_names_one(sel, argv[i]) == -1)
			goto fail;
	}
	return 0;
fail:
	ctl_select_free(sel);
	return EX_REFUSED;
}

void
ctl_select_free(struct ctl_sel *sel)
{
	ward_status_list_free(sel->all, sel->nall);
	free(sel->v);
	memset(sel, 0, sizeof *sel);
}

/*
 * "NAME: ERROR (no such process)" or "(no such group)" on stdout, as
 * supervisorctl prints them; the names it may have meant on stderr.
 */
void
ctl_select_missing(const struct ctl_sel *sel, const struct ctl_pick *k)
{
	size_t len;

	if (k->group && ctl_names_group(k->arg, &len))
		printf("%.*s: ERROR (no such group)\n", (int)len, k->arg);
	else {
		printf("%s: ERROR (no such process)\n", k->arg);
		fflush(stdout);
		if (!ctl_is_id(k->arg))
			ctl_suggest_among(k->arg, sel->all, sel->nall);
	}
}

/*
 * supervisorctl's stopped states (STOPPED, EXITED, FATAL): not running and
 * not about to (a program backing off or waiting for its dependencies
 * counts as running there, as BACKOFF and STARTING do).
 */
int
ctl_select_stopped(const struct ward_status *s)
{
	if (strcmp(s->state, "running") == 0)
		return 0;
	return s->program_state == NULL ||
	    (strcmp(s->program_state, "backoff") != 0 &&
	    strcmp(s->program_state, "waiting") != 0);
}
