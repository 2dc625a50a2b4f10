/*
 * ctl-ward.c: the commands about wardd as a whole rather than one
 * instance: reread and update (the declared programs of its config
 * directory), info and shutdown. Calls the shared core (ctl.h) and libward.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* ---- declared programs: reread shows, update applies */

/*
 * Changes on stdout ("web: added", or "would be added" for reread);
 * errors and then warnings (keys ignored) on stderr.
 */
static int
ctl_ward_changes(struct ctl *c, const char *method, int apply)
{
	static const struct {
		const char	*key;
		const char	*applied;	/* names: "NAME: applied" */
		const char	*reread;
		const char	*prefix;	/* messages: "wardctl: prefixMSG" */
	} lists[] = {
		{ "added", "added", "would be added", NULL },
		{ "changed", "changed", "would be changed", NULL },
		{ "removed", "removed", "would be removed", NULL },
		{ "errors", NULL, NULL, "" },
		{ "warnings", NULL, NULL, "warning: " },
	};
	const msgpack_object *list;
	struct ward_reply r;
	uint32_t j;
	size_t k;
	int rc, any = 0;

	if ((rc = ctl_call(c, method, NULL, NULL, &r)) != 0)
		return rc;
	if (c->json) {
		ctl_json_line(&r.result);
		ward_reply_free(&r);
		return 0;
	}
	for (k = 0; k < sizeof lists / sizeof lists[0]; k++) {
		list = ward_map_get(&r.result, lists[k].key);
		for (j = 0; list != NULL && list->type == MSGPACK_OBJECT_ARRAY &&
		    j < list->via.array.size; j++) {
			const msgpack_object *o = &list->via.array.ptr[j];
			char buf[1024];

			if (o->type != MSGPACK_OBJECT_STR)
				continue;
			snprintf(buf, sizeof buf, "%.*s", (int)o->via.str.size,
			    o->via.str.ptr);
			if (lists[k].prefix == NULL)
				printf("%s: %s\n", CLEAN(buf), apply ?
				    lists[k].applied : lists[k].reread);
			else
				fprintf(stderr, "wardctl: %s%s\n", lists[k].prefix,
				    CLEAN(buf));
			/* Warnings alone still mean "no changes". */
			if (strcmp(lists[k].key, "warnings") != 0)
				any = 1;
		}
	}
	if (!any)
		printf("no changes\n");
	ward_reply_free(&r);
	return 0;
}

static int
ctl_reread_exec(struct ctl *c, int argc, char **argv)
{
	int first;

	if (ctl_noopts(argc, argv, &first) != 0 || first != argc)
		return EX_USAGE;
	return ctl_ward_changes(c, "ward.reread", 0);
}

const struct ctl_entry ctl_reread_entry = {
	.name = "reread",
	.usage = "reread",
	.help = "Show what the config directory would change (admins only).",
	.exec = ctl_reread_exec,
};

/* NAME is in group g: g itself or g:something. */
static int
ctl_ward_in_group(const char *name, const char *g)
{
	size_t n = strlen(g);

	return strncmp(name, g, n) == 0 && (name[n] == '\0' || name[n] == ':');
}

/* One of the names of list is in one of groups (NULL: in none). */
static const char *
ctl_ward_outside(char **list, char **groups, int ngroups)
{
	int k, in;

	for (; list != NULL && *list != NULL; list++) {
		for (k = 0, in = 0; k < ngroups && !in; k++)
			in = ctl_ward_in_group(*list, groups[k]);
		if (!in)
			return *list;
	}
	return NULL;
}

/*
 * update GROUP...: wardd applies a reread whole, so naming groups checks
 * that they exist (supervisorctl's "ERROR: no such group: G", status 1)
 * and that the changes pending are all theirs; a change elsewhere is
 * refused rather than applied behind the user's back.
 */
static int
ctl_update_groups(struct ctl *c, int argc, char **argv)
{
	struct ward_changes ch;
	struct ctl_sel sel;
	const char *other;
	size_t i;
	int k, rc = 0, found;

	if ((rc = ctl_select(c, 0, NULL, &sel)) != 0)
		return rc;
	if (ward_reread(c->w, &ch) == -1) {
		ctl_select_free(&sel);
		return ctl_failed(c, NULL);
	}
	for (k = 0; k < argc; k++) {
		for (i = 0, found = 0; i < sel.nall && !found; i++)
			found = ctl_ward_in_group(sel.all[i].name, argv[k]);
		for (i = 0; ch.added != NULL && ch.added[i] != NULL; i++)
			found |= ctl_ward_in_group(ch.added[i], argv[k]);
		if (!found) {
			printf("ERROR: no such group: %s\n", argv[k]);
			rc = EX_REFUSED;
		}
	}
	if ((other = ctl_ward_outside(ch.added, argv, argc)) != NULL ||
	    (other = ctl_ward_outside(ch.changed, argv, argc)) != NULL ||
	    (other = ctl_ward_outside(ch.removed, argv, argc)) != NULL) {
		fprintf(stderr, "wardctl: update: %s changed too, and wardd "
		    "applies every change at once: run update without groups\n",
		    other);
		rc = EX_REFUSED;
	}
	ward_changes_free(&ch);
	ctl_select_free(&sel);
	return rc ? rc : ctl_ward_changes(c, "ward.update", 1);
}

static int
ctl_update_exec(struct ctl *c, int argc, char **argv)
{
	int first, k;

	if (ctl_noopts(argc, argv, &first) != 0)
		return EX_USAGE;
	for (k = first; k < argc; k++) {
		if (strcmp(argv[k], "all") == 0)	/* as none */
			return ctl_ward_changes(c, "ward.update", 1);
	}
	if (first < argc)
		return ctl_update_groups(c, argc - first, argv + first);
	return ctl_ward_changes(c, "ward.update", 1);
}

const struct ctl_entry ctl_update_entry = {
	.name = "update",
	.usage = "update [GROUP ...|all]",
	.help = "Apply the config directory: start added programs, stop removed "
	    "ones, restart changed ones (admins only).",
	.exec = ctl_update_exec,
};

/* ---- info, shutdown */

static int
ctl_info_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_hello h;
	struct ward_stats s;
	struct ward_reply r;
	char rss[16];
	int rc;

	if (c->json) {
		if ((rc = ctl_call(c, "ward.stats", NULL, NULL, &r)) != 0)
			return rc;
		ctl_json_line(&r.result);
		ward_reply_free(&r);
		return 0;
	}
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (ward_hello(c->w, &h) == -1 || ward_stats(c->w, &s) == -1)
		return ctl_failed(c, NULL);
	printf("%s %s (protocol %u), pid %d, at %s\n", h.server, h.version,
	    h.protocol, (int)h.pid, ward_socket_path(c->w));
	printf("you:         uid %u%s\n", (unsigned)h.uid, h.admin ? " (admin)" : "");
	printf("instances:   %" PRIu64 " (%" PRIu64 " running)\n", s.instances,
	    s.running);
	printf("since start: %" PRIu64 " created, %" PRIu64 " started, %" PRIu64
	    " died, %" PRIu64 " failed to spawn, %" PRIu64 " removed\n", s.created,
	    s.started, s.died, s.spawn_failed, s.removed);
	printf("clients:     %" PRIu64 " (%" PRIu64 " subscribed)\n", s.clients,
	    s.subscribers);
	printf("memory:      %s resident\n", ctl_size(s.rss_kb, rss, sizeof rss));
	return 0;
}

const struct ctl_entry ctl_info_entry = {
	.name = "info",
	.usage = "info",
	.help = "The daemon's version and counters.",
	.exec = ctl_info_exec,
};

static int
ctl_shutdown_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	int leave = argc == 1 && strcmp(argv[0], "--leave-running") == 0;
	int rc;

	if (argc > 1 || (argc == 1 && !leave))
		return EX_USAGE;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, 1);
	ctl_pack_str(&p.pk, "kill_instances");
	if (leave)
		msgpack_pack_false(&p.pk);
	else
		msgpack_pack_true(&p.pk);
	if ((rc = ctl_call(c, "ward.shutdown", &p, NULL, NULL)) == 0 && !c->json)
		printf("wardd is shutting down%s\n", leave ?
		    " (instances left running)" : "");
	return rc;
}

const struct ctl_entry ctl_shutdown_entry = {
	.name = "shutdown",
	.usage = "shutdown [--leave-running]",
	.help = "Stop every instance and exit wardd (admins only).",
	.exec = ctl_shutdown_exec,
};

/* ---- reexec: wardd replaces its image and keeps everything */

static int
ctl_reexec_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	int rc;

	if (argc != 0 && !(argc == 2 && strcmp(argv[0], "--exe") == 0))
		return EX_USAGE;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, argc == 2 ? 1 : 0);
	if (argc == 2) {
		ctl_pack_str(&p.pk, "exe");
		ctl_pack_str(&p.pk, argv[1]);
	}
	if ((rc = ctl_call(c, "ward.reexec", &p, NULL, NULL)) == 0 && !c->json)
		printf("wardd is re-executing%s%s; its instances and clients "
		    "carry on\n", argc == 2 ? " into " : "",
		    argc == 2 ? argv[1] : "");
	return rc;
}

const struct ctl_entry ctl_reexec_entry = {
	.name = "reexec",
	.usage = "reexec [--exe PATH]",
	.help = "Re-execute wardd (the binary it was started as, or PATH), "
	    "keeping every instance, connection and timer (admins only).",
	.exec = ctl_reexec_exec,
};

/* ---- metrics: the text exposition, as a scraper would get it */

static int
ctl_metrics_exec(struct ctl *c, int argc, char **argv)
{
	char *text;

	if (argc > 1 || (argc == 1 && strcmp(argv[0], "--text") != 0))
		return EX_USAGE;
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (ward_metrics(c->w, argc == 1 ? "text" : NULL, &text, NULL) == -1)
		return ctl_failed(c, NULL);
	fputs(text, stdout);
	free(text);
	return 0;
}

const struct ctl_entry ctl_metrics_entry = {
	.name = "metrics",
	.usage = "metrics [--text]",
	.help = "Print wardd's metrics in OpenMetrics (--text: Prometheus' "
	    "0.0.4 format); instances: those you may see.",
	.exec = ctl_metrics_exec,
};
