/*
 * ctl-events.c: what wardd streams to wardctl: events (events, one line
 * each until ^C) and an instance's captured output (tail, tail -f, fg:
 * until ^C or the instance is removed, or for fg dies), and
 * logrotate, which reopens the files that output goes to. Calls the
 * shared core (ctl.h) and libward.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* ---- events: one line per event until interrupted */

/* One event as a line: the time, the type, the instance, what it says. */
static void
ctl_events_line(struct ctl *c, const struct ward_event *ev)
{
	char when[32], rss[16];
	time_t t = ev->time_ms / 1000;

	strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
	printf("%s %-8s %s (id %" PRIu64 ")", when, ev->type,
	    ev->name ? ev->name : "-", ev->id);
	if (strcmp(ev->type, "started") == 0)
		printf(" pid %d", (int)ev->pid);
	else if (strcmp(ev->type, "payload") == 0)
		printf(" %s%s%s", ev->payload_state, ev->status_text &&
		    *ev->status_text ? ": " : "", CLEAN(ev->status_text));
	else if (strcmp(ev->type, "metrics") == 0)
		printf(" cpu %.1f%% rss %s", ev->metrics.cpu_percent,
		    ctl_size(ev->metrics.rss_kb, rss, sizeof rss));
	if (ev->suspended)	/* payload and metrics events say it */
		printf(" (suspended)");
	else if (strcmp(ev->type, "died") == 0 && ev->has_exit) {
		printf(" %s%s%s", C_RED(c), ev->exit.death_reason, C_RESET(c));
		if (ev->exit.has_exit_code)
			printf(" exit %d", ev->exit.exit_code);
		if (ev->exit.exit_signal)
			printf(" %s", ev->exit.signal_name);
	} else if (ev->message != NULL)
		printf(" %s", CLEAN(ev->message));
	putchar('\n');
	fflush(stdout);
}

#define CTL_EVENTS_END	(-1)	/* on_msg: the end, status 0 */

/*
 * Read what wardd sends until ^C or the connection fails, for events and
 * tail -f: next is ward_event_next_raw or ward_notification_next_raw, and
 * on_msg gets each message, returning 0 to go on, a status to stop with, or
 * CTL_EVENTS_END to stop with 0.
 */
static int
ctl_events_follow(struct ctl *c, int (*next)(struct ward *, msgpack_unpacked *, int),
    int (*on_msg)(struct ctl *, const msgpack_object *))
{
	struct sigaction old;
	msgpack_unpacked raw;
	int rc = 0;

	ctl_sigint_catch(&old);
	msgpack_unpacked_init(&raw);
	while (!ctl_interrupted) {
		rc = next(c->w, &raw, 250);
		if (rc == 0)
			continue;
		if (rc == -1) {
			rc = ctl_failed(c, NULL);
			break;
		}
		if ((rc = on_msg(c, &raw.data)) != 0) {
			if (rc == CTL_EVENTS_END)
				rc = 0;
			break;
		}
	}
	msgpack_unpacked_destroy(&raw);
	ctl_sigint_restore(&old);
	return rc;
}

/* One event, as a line (or, with --json, the event map as wardd sent it). */
static int
ctl_events_event_cb(struct ctl *c, const msgpack_object *msg)
{
	struct ward_event ev;

	if (c->json)
		ctl_json_line(&msg->via.array.ptr[2].via.array.ptr[0]);
	else if (ward_event_decode(msg, &ev) == 0) {
		ctl_events_line(c, &ev);
		ward_event_free(&ev);
	}
	return 0;
}

static int
ctl_events_exec(struct ctl *c, int argc, char **argv)
{
	const char *all[] = { "created", "started", "payload", "died", "removed",
	    "metrics", NULL };
	struct ward_status *v = NULL;
	uint64_t *ids = NULL;
	int i, rc = 0, metrics = 0;

	if (argc > 0 && strcmp(argv[0], "--metrics") == 0) {
		metrics = 1;
		argc--;
		argv++;
	}
	if (!metrics)
		all[5] = NULL;
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (argc > 0) {
		v = calloc(argc, sizeof *v);
		ids = calloc(argc, sizeof *ids);
		if (v == NULL || ids == NULL || (rc = ctl_resolve(c, argc, argv, v))) {
			free(v);
			free(ids);
			return rc ? rc : EX_REFUSED;
		}
		for (i = 0; i < argc; i++)
			ids[i] = v[i].id;
		ward_status_list_free(v, argc);
	}
	if (ward_events_subscribe(c->w, ids, argc, all) == -1) {
		free(ids);
		return ctl_failed(c, NULL);
	}
	free(ids);
	rc = ctl_events_follow(c, ward_event_next_raw, ctl_events_event_cb);
	if (c->w != NULL)
		ward_events_unsubscribe(c->w);
	return rc;
}

const struct ctl_entry ctl_events_entry = {
	.name = "events",
	.usage = "events [--metrics] [NAME|ID ...]",
	.help = "Print events as they happen, until interrupted.",
	.exec = ctl_events_exec,
};

/* ---- tail, logrotate: captured output (instance.log) */

/*
 * A payload's output, as is into a pipe or file; on a terminal control
 * characters other than newline and tab (and C1 controls) become '?', so
 * the output cannot take over the terminal. wardd sends valid UTF-8.
 */
static void
ctl_events_write_output(const msgpack_object *data)
{
	const unsigned char *p;
	size_t n, k;

	if (data == NULL || data->type != MSGPACK_OBJECT_STR)
		return;
	p = (const unsigned char *)data->via.str.ptr;
	n = data->via.str.size;
	if (!isatty(1)) {
		fwrite(p, 1, n, stdout);
		fflush(stdout);
		return;
	}
	for (; n > 0; p += k, n -= k) {
		k = ctl_utf8_len(p, n);
		if (k == 0 || (k == 1 && ((*p < 0x20 && *p != '\n' && *p != '\t') ||
		    *p == 0x7f)) || (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			putchar('?');
			k = k ? k : 1;
		} else
			fwrite(p, 1, k, stdout);
	}
	fflush(stdout);
}

/* A ward.log notification's map, or NULL. */
static const msgpack_object *
ctl_events_log_notification(const msgpack_object *o)
{
	const msgpack_object *a = o->via.array.ptr;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3 ||
	    a[1].type != MSGPACK_OBJECT_STR || a[1].via.str.size != 8 ||
	    memcmp(a[1].via.str.ptr, "ward.log", 8) != 0 ||
	    a[2].type != MSGPACK_OBJECT_ARRAY || a[2].via.array.size != 1 ||
	    a[2].via.array.ptr[0].type != MSGPACK_OBJECT_MAP)
		return NULL;
	return &a[2].via.array.ptr[0];
}

/*
 * One notification of tail -f or fg: output, or an event of the instance
 * it follows (subscribed to removed, and for fg died): the end. EX_REFUSED
 * once wardd dropped us.
 */
static int
ctl_events_log_cb(struct ctl *c, const msgpack_object *raw)
{
	const msgpack_object *m, *msg;
	struct ward_event ev;

	if (ward_event_decode(raw, &ev) == 0) {
		if (!c->json)
			fprintf(stderr, "wardctl: %s %s\n", ev.name, ev.type);
		ward_event_free(&ev);
		return CTL_EVENTS_END;
	}
	if ((m = ctl_events_log_notification(raw)) == NULL)
		return 0;
	if (c->json)
		ctl_json_line(m);
	if (ward_map_get(m, "overflow") != NULL) {
		/* wardd dropped us: we read too slowly. */
		msg = ward_map_get(m, "message");
		if (!c->json && msg != NULL && msg->type == MSGPACK_OBJECT_STR)
			fprintf(stderr, "wardctl: %.*s\n",
			    (int)msg->via.str.size, msg->via.str.ptr);
		return EX_REFUSED;
	}
	if (!c->json)
		ctl_events_write_output(ward_map_get(m, "data"));
	return 0;
}

/* instance.log of ident's stream: bytes (-1: wardd's default), follow. */
static int
ctl_events_log(struct ctl *c, const char *ident, const char *stream,
    long bytes, int follow, int print)
{
	struct ward_params p;
	struct ward_reply r;
	int rc;

	ward_params_init(&p);
	ctl_pack_ident(&p.pk, ident, 2 + (bytes >= 0));
	ctl_pack_str(&p.pk, "stream");
	ctl_pack_str(&p.pk, stream);
	if (bytes >= 0) {
		ctl_pack_str(&p.pk, "bytes");
		msgpack_pack_uint64(&p.pk, bytes);
	}
	ctl_pack_str(&p.pk, "follow");
	if (follow)
		msgpack_pack_true(&p.pk);
	else
		msgpack_pack_false(&p.pk);
	if (!print) {	/* the shell keeps the connection: stop following */
		if (c->w != NULL)
			ward_call(c->w, "instance.log", p.sbuf.data, p.sbuf.size,
			    &r);
		ward_params_free(&p);
		ward_reply_free(&r);
		return 0;
	}
	if ((rc = ctl_call(c, "instance.log", &p, ident, &r)) != 0)
		return rc;
	if (c->json)
		ctl_json_line(&r.result);
	else
		ctl_events_write_output(ward_map_get(&r.result, "data"));
	ward_reply_free(&r);
	return 0;
}

/*
 * Print ident's streams' ends, then with follow their output until ^C or
 * an event of types (the instance removed; for fg, dead too).
 */
static int
ctl_events_tail(struct ctl *c, const char *ident, const char *const *streams,
    long bytes, int follow, const char *const *types)
{
	struct ward_status s;
	int k, rc = 0;

	if (follow) {
		/* Subscribe first: a removal between the two still ends it. */
		if (ctl_connect(c) == -1)
			return EX_UNREACHABLE;
		if (ward_instance_status(c->w, ident, &s) == -1)
			return ctl_failed(c, ident);
		if (ward_events_subscribe(c->w, &s.id, 1, types) == -1) {
			ward_status_free(&s);
			return ctl_failed(c, NULL);
		}
		ward_status_free(&s);
	}
	for (k = 0; streams[k] != NULL && rc == 0; k++)
		rc = ctl_events_log(c, ident, streams[k], bytes, follow, 1);
	if (!follow || rc != 0)
		goto out;
	rc = ctl_events_follow(c, ward_notification_next_raw, ctl_events_log_cb);
	for (k = 0; streams[k] != NULL && c->w != NULL; k++)
		ctl_events_log(c, ident, streams[k], 0, 0, 0);
out:
	if (follow && c->w != NULL)
		ward_events_unsubscribe(c->w);
	return rc;
}

/* tail [-f] [-n BYTES|-BYTES] NAME [stdout|stderr]: supervisorctl's -BYTES
 * too (a number as an option: getopt would read its digits one by one). */
static int
ctl_tail_exec(struct ctl *c, int argc, char **argv)
{
	static const char *const removed[] = { "removed", NULL };
	char dash_n[32];
	const char *streams[2] = { "stdout", NULL };
	char **args, *end;
	long bytes = -1;
	int follow = 0, ch, i, first, rc = EX_USAGE;

	if ((args = calloc(argc + 2, sizeof *args)) == NULL)
		return EX_REFUSED;
	args[0] = argv[-1];
	for (i = 0; i < argc; i++) {
		args[i + 1] = argv[i];
		if (argv[i][0] != '-' || argv[i][1] < '0' || argv[i][1] > '9')
			continue;
		bytes = strtol(argv[i] + 1, &end, 10);
		if (*end != '\0' || bytes < 0) {
			ctl_usage_error("tail: %s: -BYTES takes a number", argv[i]);
			goto out;
		}
		/* -n-BYTES: -n's value, which the loop below knows. */
		snprintf(dash_n, sizeof dash_n, "-n-%ld", bytes);
		args[i + 1] = dash_n;
	}
	while ((ch = ctl_getopt(argc, args + 1, "fn:", NULL)) != -1) {
		if (ch == '?')
			goto out;
		if (ch == 'f')
			follow = 1;
		else if (optarg[0] == '-')	/* -BYTES, seen above */
			continue;
		else if ((bytes = strtol(optarg, &end, 10)) < 0 || *end != '\0' ||
		    optarg[0] == '\0') {
			ctl_usage_error("tail: -n takes a number of bytes");
			goto out;
		}
	}
	if ((first = ctl_optnames(argc, args + 1)) == -1 || argc - first < 1 ||
	    argc - first > 2)
		goto out;
	if (argc - first == 2) {
		if (strcmp(argv[first + 1], "stdout") != 0 &&
		    strcmp(argv[first + 1], "stderr") != 0) {
			ctl_usage_error("tail: the stream is stdout or stderr, not "
			    "'%s'", argv[first + 1]);
			goto out;
		}
		streams[0] = argv[first + 1];
	}
	rc = ctl_events_tail(c, argv[first], streams, bytes, follow, removed);
out:
	free(args);
	return rc;
}

const struct ctl_entry ctl_tail_entry = {
	.name = "tail",
	.usage = "tail [-f] [-n BYTES|-BYTES] NAME|ID [stdout|stderr]",
	.help = "Print captured output; with -f keep printing it, until "
	    "interrupted or the instance is removed.",
	.exec = ctl_tail_exec,
};

/* fg NAME: supervisorctl's, output only (wardd has no way to its stdin). */
static int
ctl_fg_exec(struct ctl *c, int argc, char **argv)
{
	static const char *const streams[] = { "stdout", "stderr", NULL };
	static const char *const ends[] = { "died", "removed", NULL };
	struct ward_status s;
	int first;

	if (ctl_noopts(argc, argv, &first) != 0 || argc - first != 1)
		return EX_USAGE;
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	if (ward_instance_status(c->w, argv[first], &s) == -1) {
		printf("ERROR: bad process name supplied\n");
		return EX_REFUSED;
	}
	if (strcmp(s.state, "running") != 0) {
		ward_status_free(&s);
		printf("ERROR: process not running\n");
		return EX_REFUSED;
	}
	ward_status_free(&s);
	printf("==> Press Ctrl-C to exit <==\n");
	fflush(stdout);
	return ctl_events_tail(c, argv[first], streams, 0, 1, ends);
}

const struct ctl_entry ctl_fg_entry = {
	.name = "fg",
	.usage = "fg NAME|ID",
	.help = "Print an instance's output as it comes until Control-C "
	    "(exit 0) or its death.",
	.exec = ctl_fg_exec,
};

static int
ctl_logrotate_exec(struct ctl *c, int argc, char **argv)
{
	const msgpack_object *n, *f;
	struct ward_reply r;
	int rc;

	if (argc != 0)
		return EX_USAGE;
	if ((rc = ctl_call(c, "ward.logrotate", NULL, NULL, &r)) != 0)
		return rc;
	n = ward_map_get(&r.result, "reopened");
	f = ward_map_get(&r.result, "failed");
	rc = f != NULL && f->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    f->via.u64 > 0 ? EX_REFUSED : 0;
	if (c->json)
		ctl_json_line(&r.result);
	else {
		printf("log files reopened: %" PRIu64 "\n",
		    n && n->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? n->via.u64 : 0);
		if (rc)
			fprintf(stderr, "wardctl: %" PRIu64 " log file%s could not "
			    "be reopened (see wardd's log)\n", f->via.u64,
			    f->via.u64 == 1 ? "" : "s");
	}
	ward_reply_free(&r);
	return rc;
}

const struct ctl_entry ctl_logrotate_entry = {
	.name = "logrotate",
	.usage = "logrotate",
	.help = "Reopen every log file, after logrotate moved them (admins "
	    "only).",
	.exec = ctl_logrotate_exec,
};
