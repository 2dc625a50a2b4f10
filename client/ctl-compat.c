/*
 * ctl-compat.c: supervisorctl's commands that ward had no word for:
 * avail (every declared program, "in use" or, added to the config
 * directory but not yet by update, "avail") and version (wardd's). Calls
 * the shared core (ctl.h) and libward.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		printf("%-32s %-9s %-9s\n", CLEAN(ctl_compat_str(m, "name", name,
		    sizeof name)), "in use", a != NULL &&
		    a->type == MSGPACK_OBJECT_BOOLEAN && a->via.boolean ?
		    "auto" : "manual");
	}
	ward_reply_free(&r);
	/* Added but not applied: only an admin may reread; others see none. */
	if (ward_reread(c->w, &ch) == 0) {
		for (k = 0; ch.added != NULL && ch.added[k] != NULL; k++)
			printf("%-32s %-9s %-9s\n", CLEAN(ch.added[k]), "avail",
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
