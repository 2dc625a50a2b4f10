/*
 * ctl-compat.c: supervisorctl's commands that ward had no word for:
 * avail (every declared program, "in use" or, added to the config
 * directory but not yet by update, "avail"), version (wardd's),
 * clear (an instance's captured output) and maintail (wardd's own log).
 * Calls the shared core (ctl.h) and libward.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* A map's string at key as a C string in buf ("" when absent). */
static const char *
ctl_compat_str(const msgpack_object *m, const char *key, char *buf, size_t len)
{
	const msgpack_object *o = ward_map_get(m, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
	return buf;
}

/*
 * supervisorctl's columns: NAME, in use|avail, auto|manual. (Its
 * priority column has no ward equivalent: start order is after/requires.)
 */
static int
ctl_avail_exec(struct ctl *c, int argc, char **argv)
{
	const msgpack_object *prog, *a;
	struct ward_changes ch;
	struct ward_reply r;
	char name[256];
	uint32_t i;
	size_t k;
	int rc, first;

	if (ctl_noopts(argc, argv, &first) != 0 || first != argc)
		return EX_USAGE;
	if ((rc = ctl_call(c, "instance.list", NULL, NULL, &r)) != 0)
		return rc;
	for (i = 0; r.result.type == MSGPACK_OBJECT_ARRAY &&
	    i < r.result.via.array.size; i++) {
		const msgpack_object *m = &r.result.via.array.ptr[i];

		if ((prog = ward_map_get(m, "program")) == NULL ||
		    prog->type != MSGPACK_OBJECT_MAP)
			continue;
		a = ward_map_get(prog, "autostart");
		printf("%-32s %-9s %s\n", CLEAN(ctl_compat_str(m, "name", name,
		    sizeof name)), "in use", a != NULL &&
		    a->type == MSGPACK_OBJECT_BOOLEAN && a->via.boolean ?
		    "auto" : "manual");
	}
	ward_reply_free(&r);
	/* Added but not applied: only an admin may reread; others see none. */
	if (ward_reread(c->w, &ch) == 0) {
		for (k = 0; ch.added != NULL && ch.added[k] != NULL; k++)
			printf("%-32s %-9s %s\n", CLEAN(ch.added[k]), "avail",
			    "-");
		ward_changes_free(&ch);
	}
	return 0;
}

const struct ctl_entry ctl_avail_entry = {
	.name = "avail",
	.usage = "avail",
	.help = "List the declared programs: in use, or avail (not yet updated).",
	.exec = ctl_avail_exec,
};

static int
ctl_version_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_hello h;
	int first;

	if (ctl_noopts(argc, argv, &first) != 0 || first != argc)
		return EX_USAGE;
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (ward_hello(c->w, &h) == -1)
		return ctl_failed(c, NULL);
	printf("%s\n", h.version);
	return 0;
}

const struct ctl_entry ctl_version_entry = {
	.name = "version",
	.usage = "version",
	.help = "Print wardd's version (wardctl --version: wardctl's).",
	.exec = ctl_version_exec,
};

/* clear NAME|GROUP:*|all ...: "NAME: cleared", as supervisorctl. */
static int
ctl_clear_exec(struct ctl *c, int argc, char **argv)
{
	struct ctl_sel sel;
	char id[24];
	size_t i;
	int first, rc, worst = 0;

	if (ctl_noopts(argc, argv, &first) != 0)
		return EX_USAGE;
	if (first == argc) {
		/* supervisorctl: 1. */
		fprintf(stderr, "wardctl: clear requires a process name (see: "
		    "wardctl clear --help)\n");
		return EX_REFUSED;
	}
	if ((rc = ctl_select(c, argc - first, argv + first, &sel)) != 0)
		return rc;
	for (i = 0; i < sel.n; i++) {
		const struct ctl_pick *k = &sel.v[i];

		if (k->s == NULL) {
			ctl_select_missing(&sel, k);
			worst = EX_REFUSED;
			continue;
		}
		snprintf(id, sizeof id, "%" PRIu64, k->s->id);
		if (ward_instance_clear_log(c->w, id) == 0) {
			printf("%s: cleared\n", k->s->name);
			continue;
		}
		if (strcmp(ward_error(c->w)->code, "disconnected") == 0) {
			worst = ctl_failed(c, NULL);
			break;
		}
		/* A group or all: one that captures nothing has nothing. */
		if (k->many &&
		    strcmp(ward_error(c->w)->code, "invalid_state") == 0)
			continue;
		printf("%s: ERROR (%s)\n", k->s->name,
		    CLEAN(ward_error(c->w)->message));
		worst = EX_REFUSED;
	}
	ctl_select_free(&sel);
	return worst;
}

const struct ctl_entry ctl_clear_entry = {
	.name = "clear",
	.usage = "clear NAME|ID|GROUP:*|all ...",
	.help = "Forget instances' captured output (what tail shows).",
	.exec = ctl_clear_exec,
};

/*
 * maintail [-f] [-BYTES]: the end of wardd's log (admins only); -f asks
 * again every half second for what came since, until ^C (status 0).
 */
static int
ctl_maintail_exec(struct ctl *c, int argc, char **argv)
{
	struct sigaction old;
	uint64_t end = 0;
	char *data, *e;
	long bytes = 0;
	int i, follow = 0, rc = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0)
			follow = 1;
		else if (argv[i][0] == '-' && argv[i][1] >= '0' &&
		    argv[i][1] <= '9') {
			bytes = strtol(argv[i] + 1, &e, 10);
			if (*e != '\0')
				return ctl_usage_error("maintail: -BYTES takes a "
				    "number");
		} else if (argv[i][0] == '-')
			return ctl_usage_error("maintail: unknown option %s",
			    argv[i]);
		else
			return ctl_usage_error("maintail: no arguments but -f "
			    "and -BYTES");
	}
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (follow)
		ctl_sigint_catch(&old);
	do {
		if (ward_maintail(c->w, end ? 65536 : bytes, end, &data,
		    &end) == -1) {
			rc = ctl_failed(c, NULL);
			break;
		}
		fputs(data, stdout);
		fflush(stdout);
		free(data);
		if (follow)	/* ^C cuts the wait short */
			nanosleep(&(struct timespec){ 0, 500000000 }, NULL);
	} while (follow && !ctl_interrupted);
	if (follow)
		ctl_sigint_restore(&old);
	return rc;
}

const struct ctl_entry ctl_maintail_entry = {
	.name = "maintail",
	.usage = "maintail [-f] [-BYTES]",
	.help = "Print the end of wardd's own log (admins only).",
	.exec = ctl_maintail_exec,
};
