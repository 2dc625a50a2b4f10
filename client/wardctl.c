/*
 * wardctl.c: the admin tool. A command table (name, usage, help, function)
 * serves both the command line and the interactive shell. Every command
 * talks to wardd through libward; --json prints the daemon's own results.
 *
 * Exit status: 0 done, 1 the daemon refused (its message is printed),
 * 2 usage error, 3 wardd cannot be reached.
 */
#include "config.h"

#include <sys/ioctl.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>

#include "ward.h"

#define EX_REFUSED	1
#define EX_USAGE	2
#define EX_UNREACHABLE	3

struct ctl {
	struct ward	*w;
	const char	*socket;	/* NULL: libward's default */
	int		 json;
	int		 color;
	int		 interactive;
};

struct ctl_cmd {
	const char	*name;
	const char	*usage;
	const char	*help;
	int		(*fn)(struct ctl *, int, char **);
};

static const struct ctl_cmd *ctl_find(const char *);
static volatile sig_atomic_t ctl_interrupted;

static void
ctl_sigint(int sig)
{
	ctl_interrupted = 1;
}

/* ---- output helpers */

static const char *
ctl_c(struct ctl *c, const char *code)
{
	return c->color ? code : "";
}
#define C_RESET(c)	ctl_c(c, "\033[0m")
#define C_BOLD(c)	ctl_c(c, "\033[1m")
#define C_RED(c)	ctl_c(c, "\033[31m")
#define C_GREEN(c)	ctl_c(c, "\033[32m")
#define C_YELLOW(c)	ctl_c(c, "\033[33m")
#define C_DIM(c)	ctl_c(c, "\033[2m")

/* "512K", "1.2M", "3.4G" from KiB. */
static const char *
ctl_size(uint64_t kb, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	double v = kb;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 10)
		snprintf(buf, len, "%.0f%c", v, units[u]);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

/* "45s", "12m3s", "3h2m", "3d4h" from milliseconds. */
static const char *
ctl_duration(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", s / 3600,
		    s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400,
		    s % 86400 / 3600);
	return buf;
}

/* Length of a valid UTF-8 sequence at p, or 0 (overlongs not checked). */
static size_t
ctl_utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 :
	    p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	size_t k;

	if (len == 0 || len > n)
		return 0;
	for (k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

/*
 * Text from a payload, fit for a terminal: control characters (escape
 * sequences could take over the admin's terminal) and bytes that are not
 * UTF-8 become '?'. Returns buf.
 */
static const char *
ctl_clean(const char *s, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t o = 0, n = strlen((const char *)p), k;

	while (*p != '\0' && o + 5 < len) {
		k = ctl_utf8_len(p, n);
		if (k == 0 || (k == 1 && (*p < 0x20 || *p == 0x7f)) ||
		    (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			buf[o++] = '?';
			k = k ? k : 1;
		} else {
			memcpy(buf + o, p, k);
			o += k;
		}
		p += k;
		n -= k;
	}
	buf[o] = '\0';
	return buf;
}
#define CLEAN(s)	ctl_clean((s), (char[1024]){ 0 }, 1024)

static void
ctl_json_str(const char *p, size_t n)
{
	size_t i, k;

	putchar('"');
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (ch >= 0x80) {
			/* Only UTF-8 passes; anything else is U+FFFD. */
			k = ctl_utf8_len((const unsigned char *)p + i, n - i);
			if (k == 0)
				fputs("\\ufffd", stdout);
			else
				fwrite(p + i, 1, k, stdout);
			i += k ? k - 1 : 0;
		} else if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* A msgpack object as JSON: what the daemon said, unchanged. */
static void
ctl_json(const msgpack_object *o)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", stdout);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", stdout);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		printf("%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		printf("%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (o->via.f64 != o->via.f64 || o->via.f64 > 1e308 ||
		    o->via.f64 < -1e308)
			fputs("null", stdout);
		else
			printf("%.17g", o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		ctl_json_str(o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		ctl_json_str(o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		putchar('[');
		for (i = 0; i < o->via.array.size; i++) {
			if (i > 0)
				putchar(',');
			ctl_json(&o->via.array.ptr[i]);
		}
		putchar(']');
		break;
	case MSGPACK_OBJECT_MAP:
		putchar('{');
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			if (i > 0)
				putchar(',');
			if (k->type == MSGPACK_OBJECT_STR)
				ctl_json(k);
			else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				printf("\"%" PRIu64 "\"", k->via.u64);
			else
				fputs("\"?\"", stdout);
			putchar(':');
			ctl_json(&o->via.map.ptr[i].val);
		}
		putchar('}');
		break;
	default:
		fputs("null", stdout);
		break;
	}
}

static void
ctl_json_line(const msgpack_object *o)
{
	ctl_json(o);
	putchar('\n');
	fflush(stdout);
}

/* ---- talking to wardd */

static int
ctl_connect(struct ctl *c)
{
	struct ward_error err;

	if (c->w != NULL)
		return 0;
	if ((c->w = ward_connect(c->socket, &err)) == NULL) {
		fprintf(stderr, "wardctl: %s\n", err.message);
		return -1;
	}
	return 0;
}

/* Report a failed call; the exit status it deserves. */
static int
ctl_failed(struct ctl *c, const char *what)
{
	const struct ward_error *e = ward_error(c->w);
	int lost = strcmp(e->code, "disconnected") == 0;

	if (what != NULL)
		fprintf(stderr, "wardctl: %s: %s\n", what, e->message);
	else
		fprintf(stderr, "wardctl: %s\n", e->message);
	if (lost) {
		ward_close(c->w);
		c->w = NULL;
		return EX_UNREACHABLE;
	}
	return EX_REFUSED;
}

static int
ctl_is_id(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return 0;
	}
	return 1;
}

/* {id: N} or {name: S} plus extra pairs packed by the caller. */
static void
ctl_pack_ident(msgpack_packer *pk, const char *ident, size_t extra)
{
	size_t n = strlen(ident);

	msgpack_pack_map(pk, 1 + extra);
	if (ctl_is_id(ident)) {
		msgpack_pack_str(pk, 2);
		msgpack_pack_str_body(pk, "id", 2);
		msgpack_pack_uint64(pk, strtoull(ident, NULL, 10));
	} else {
		msgpack_pack_str(pk, 4);
		msgpack_pack_str_body(pk, "name", 4);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, ident, n);
	}
}

static void
ctl_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static size_t
ctl_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, d[65], prev, tmp;

	if (lb > 64)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		d[j] = j;
	for (i = 1; i <= la; i++) {
		prev = d[0];
		d[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = d[j];
			d[j] = prev + (a[i - 1] != b[j - 1]);
			if (d[j - 1] + 1 < d[j])
				d[j] = d[j - 1] + 1;
			if (tmp + 1 < d[j])
				d[j] = tmp + 1;
			prev = tmp;
		}
	}
	return d[lb];
}

/* After a not_found for a name: the closest existing names, if any. */
static void
ctl_suggest(struct ctl *c, const char *ident)
{
	struct ward_status *v;
	size_t n, i, shown = 0, limit = strlen(ident) / 3 + 2;

	if (ctl_is_id(ident) || strcmp(ward_error(c->w)->code, "not_found") != 0)
		return;
	if (ward_instance_list(c->w, NULL, &v, &n) == -1)
		return;
	for (i = 0; i < n && shown < 3; i++) {
		if (ctl_edit_distance(ident, v[i].name) <= limit ||
		    strstr(v[i].name, ident) != NULL) {
			fprintf(stderr, "%s%s", shown ? ", " : "wardctl: did you mean: ",
			    v[i].name);
			shown++;
		}
	}
	if (shown)
		fputs("?\n", stderr);
	ward_status_list_free(v, n);
}

/*
 * One call with params from pk (or none); in --json mode the result is
 * printed. Returns 0 or an exit status (the error already printed).
 */
static int
ctl_call(struct ctl *c, const char *method, struct ward_params *p,
    const char *ident, struct ward_reply *keep)
{
	struct ward_reply r;
	int rc;

	if (ctl_connect(c) == -1) {
		if (p != NULL)
			ward_params_free(p);
		return EX_UNREACHABLE;
	}
	rc = ward_call(c->w, method, p ? p->sbuf.data : NULL, p ? p->sbuf.size : 0,
	    &r);
	if (p != NULL)
		ward_params_free(p);
	if (rc == -1) {
		ward_reply_free(&r);
		rc = ctl_failed(c, ident);
		if (rc == EX_REFUSED && ident != NULL)
			ctl_suggest(c, ident);
		return rc;
	}
	if (c->json && keep == NULL)
		ctl_json_line(&r.result);
	if (keep != NULL)
		*keep = r;
	else
		ward_reply_free(&r);
	return 0;
}

/* method {id|name} for each ident; "NAME: done" lines. */
static int
ctl_each(struct ctl *c, int argc, char **argv, const char *method,
    const char *done)
{
	struct ward_params p;
	int i, rc, worst = 0;

	if (argc < 1)
		return EX_USAGE;
	for (i = 0; i < argc; i++) {
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], 0);
		if ((rc = ctl_call(c, method, &p, argv[i], NULL)) != 0) {
			if (rc > worst)
				worst = rc;
			if (rc == EX_UNREACHABLE)
				break;
			continue;
		}
		if (!c->json)
			printf("%s: %s\n", argv[i], done);
	}
	return worst;
}

/* ---- status */

/* What STATE shows: a program's backoff, fatal or waiting say more. */
static const char *
ctl_state(const struct ward_status *s)
{
	if (s->suspended)
		return "suspended";
	if (s->program_state != NULL && (strcmp(s->program_state, "backoff") == 0 ||
	    strcmp(s->program_state, "fatal") == 0 ||
	    strcmp(s->program_state, "waiting") == 0))
		return s->program_state;
	return s->state;
}

static const char *
ctl_state_color(struct ctl *c, const struct ward_status *s)
{
	if (s->program_state != NULL && strcmp(s->program_state, "fatal") == 0)
		return C_RED(c);
	if (s->program_state != NULL && (strcmp(s->program_state, "backoff") == 0 ||
	    strcmp(s->program_state, "waiting") == 0))
		return C_YELLOW(c);
	if (strcmp(s->state, "running") == 0)
		return s->suspended ? C_YELLOW(c) : C_GREEN(c);
	if (strcmp(s->state, "not_started") == 0)
		return C_YELLOW(c);
	if (strcmp(s->state, "failed") == 0 ||
	    (s->has_exit && s->exit.death_reason != NULL &&
	    strcmp(s->exit.death_reason, "SHUTDOWN") != 0))
		return C_RED(c);
	return C_DIM(c);
}

/* One row of the status table, as text. */
struct ctl_row {
	char		 id[24], pid[16], up[32], cpu[32], rss[16];
	const char	*state, *payload, *reason;
};

static void
ctl_status_cells(const struct ward_status *s, struct ctl_row *r)
{
	snprintf(r->id, sizeof r->id, "%" PRIu64, s->id);
	r->state = ctl_state(s);
	r->payload = s->payload_state ? s->payload_state : "";
	r->reason = s->has_exit && s->exit.death_reason ?
	    s->exit.death_reason : "";
	if (s->pid > 0)
		snprintf(r->pid, sizeof r->pid, "%d", (int)s->pid);
	else
		snprintf(r->pid, sizeof r->pid, "-");
	if (s->started_at_ms != 0)
		ctl_duration(s->uptime_ms, r->up, sizeof r->up);
	else
		snprintf(r->up, sizeof r->up, "-");
	if (strcmp(s->state, "running") == 0) {
		snprintf(r->cpu, sizeof r->cpu, "%.1f", s->metrics.cpu_percent);
		ctl_size(s->metrics.rss_kb, r->rss, sizeof r->rss);
	} else {
		snprintf(r->cpu, sizeof r->cpu, "-");
		ctl_size(s->metrics.rss_max_kb, r->rss, sizeof r->rss);
	}
}

static int
ctl_width(int w, const char *cell)
{
	int n = strlen(cell);

	return n > w ? n : w;
}

/*
 * NAME ID STATE PAYLOAD PID UPTIME CPU% RSS REASON: each column as wide as
 * its widest cell (at least its usual width), numbers right-aligned, so a
 * wide cell moves its column, never the rest of its row.
 */
static void
ctl_status_table(struct ctl *c, const struct ward_status *v, size_t n)
{
	struct ctl_row *r = calloc(n ? n : 1, sizeof *r);
	int wname = 4, wid = 6, wstate = 11, wpay = 9, wpid = 7, wup = 8;
	int wcpu = 5, wrss = 6;
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < n; i++) {
		ctl_status_cells(&v[i], &r[i]);
		wname = ctl_width(wname, v[i].name);
		wid = ctl_width(wid, r[i].id);
		wstate = ctl_width(wstate, r[i].state);
		wpay = ctl_width(wpay, r[i].payload);
		wpid = ctl_width(wpid, r[i].pid);
		wup = ctl_width(wup, r[i].up);
		wcpu = ctl_width(wcpu, r[i].cpu);
		wrss = ctl_width(wrss, r[i].rss);
	}
	printf("%s%-*s %*s %-*s %-*s %*s %*s %*s %*s %s%s\n", C_BOLD(c),
	    wname, "NAME", wid, "ID", wstate, "STATE", wpay, "PAYLOAD", wpid,
	    "PID", wup, "UPTIME", wcpu, "CPU%", wrss, "RSS", "REASON", C_RESET(c));
	for (i = 0; i < n; i++)
		printf("%-*s %*s %s%-*s%s %-*s %*s %*s %*s %*s %s\n", wname,
		    v[i].name, wid, r[i].id, ctl_state_color(c, &v[i]), wstate,
		    r[i].state, C_RESET(c), wpay, r[i].payload, wpid, r[i].pid,
		    wup, r[i].up, wcpu, r[i].cpu, wrss, r[i].rss, r[i].reason);
	free(r);
}

/* The long form: everything status says, owner names resolved here. */
static void
ctl_status_long(struct ctl *c, const struct ward_status *s)
{
	char buf[32], buf2[32];
	struct passwd *pw = getpwuid(s->owner_uid);
	char **a;

	printf("%s%s%s (id %" PRIu64 ")\n", C_BOLD(c), s->name, C_RESET(c), s->id);
	printf("  state:    %s%s%s%s\n", ctl_state_color(c, s), s->state,
	    s->suspended ? " (suspended)" : "", C_RESET(c));
	if (s->program_state != NULL)
		printf("  program:  %s\n", s->program_state);
	printf("  payload:  %s%s%s\n", s->payload_state,
	    s->status_text && *s->status_text ? " - " : "",
	    CLEAN(s->status_text));
	printf("  owner:    %s (uid %u)\n", pw ? pw->pw_name : "?",
	    (unsigned)s->owner_uid);
	printf("  command: ");
	for (a = s->argv; a != NULL && *a != NULL; a++)
		printf(" %s", CLEAN(*a));
	putchar('\n');
	if (s->pid > 0)
		printf("  pid:      %d, up %s\n", (int)s->pid,
		    ctl_duration(s->uptime_ms, buf, sizeof buf));
	printf("  cpu:      %" PRIu64 " ms user, %" PRIu64 " ms system, %" PRIu64
	    " ms guest\n", s->metrics.cpu_user_ms, s->metrics.cpu_system_ms,
	    s->metrics.cpu_guest_ms);
	printf("  memory:   rss %s, max %s\n", ctl_size(s->metrics.rss_kb, buf,
	    sizeof buf), ctl_size(s->metrics.rss_max_kb, buf2, sizeof buf2));
	if (s->has_exit) {
		const struct ward_exit *x = &s->exit;

		printf("  died:     %s", x->death_reason);
		if (x->has_exit_code)
			printf(", exit code %d", x->exit_code);
		if (x->exit_signal)
			printf(", %s%s", x->signal_name,
			    x->core_dumped ? " (core dumped)" : "");
		printf(" after %s\n", ctl_duration(x->uptime_ms, buf, sizeof buf));
		if (x->failure_info)
			printf("  info:     %s\n", CLEAN(x->failure_info));
		if (x->failure_reason)
			printf("  failure:  %s\n", CLEAN(x->failure_reason));
		if (x->dump_dir)
			printf("  dumps:    %s\n", CLEAN(x->dump_dir));
	}
}

static int
ctl_status(struct ctl *c, int argc, char **argv)
{
	struct ward_status *v;
	struct ward_reply r;
	struct ward_params p;
	size_t n = 0, i;
	int rc, worst = 0, lng = 0;

	if (argc > 0 && strcmp(argv[0], "-l") == 0) {
		lng = 1;
		argc--;
		argv++;
	}
	if (argc == 0) {
		if ((rc = ctl_call(c, "instance.list", NULL, NULL, &r)) != 0)
			return rc;
		if (c->json)
			ctl_json_line(&r.result);
		else if (r.result.type == MSGPACK_OBJECT_ARRAY) {
			n = r.result.via.array.size;
			v = calloc(n ? n : 1, sizeof *v);
			for (i = 0; v != NULL && i < n; i++)
				ward_status_decode(&r.result.via.array.ptr[i], &v[i]);
			if (v != NULL) {
				for (i = 0; lng && i < n; i++)
					ctl_status_long(c, &v[i]);
				if (!lng)
					ctl_status_table(c, v, n);
				ward_status_list_free(v, n);
			}
		}
		ward_reply_free(&r);
		return 0;
	}
	if ((v = calloc(argc, sizeof *v)) == NULL)
		return EX_REFUSED;
	if (c->json && argc > 1)
		putchar('[');
	for (i = 0; i < (size_t)argc; i++) {
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], 0);
		if ((rc = ctl_call(c, "instance.status", &p, argv[i], &r)) != 0) {
			worst = rc > worst ? rc : worst;
			if (rc == EX_UNREACHABLE)
				break;
			continue;
		}
		if (c->json) {
			if (n > 0)
				putchar(',');
			ctl_json(&r.result);
		}
		ward_status_decode(&r.result, &v[n++]);
		ward_reply_free(&r);
	}
	if (c->json && argc > 1)
		printf("]\n");
	else if (c->json && n > 0)
		putchar('\n');
	else if (lng)
		for (i = 0; i < n; i++)
			ctl_status_long(c, &v[i]);
	else if (n > 0)
		ctl_status_table(c, v, n);
	ward_status_list_free(v, n);
	return worst;
}

/* ---- run */

static int
ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("wardctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EX_USAGE;
}

/* "alice" or "1000" or "1000:100" -> "UID:GID" (names resolved here). */
static int
ctl_user(const char *u, char *out, size_t len)
{
	struct passwd *pw;

	if (isdigit((unsigned char)u[0])) {
		snprintf(out, len, "%s", u);
		return 0;
	}
	if ((pw = getpwnam(u)) == NULL)
		return -1;
	snprintf(out, len, "%u:%u", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}

/* path made absolute against the current directory (it may not exist). */
static int
ctl_abs_path(const char *path, char *out, size_t len)
{
	char here[PATH_MAX];

	if (path[0] == '/')
		return (size_t)snprintf(out, len, "%s", path) < len ? 0 : -1;
	if (getcwd(here, sizeof here) == NULL)
		return -1;
	return (size_t)snprintf(out, len, "%s/%s", here, path) < len ? 0 : -1;
}

static int
ctl_run(struct ctl *c, int argc, char **argv)
{
	/* env: --env's, then the caller's HOME and the like, NULL-terminated. */
	const char *name, *env[256 + WARD_CALLER_ENV_MAX + 1], *cwd = NULL;
	const char *profile = NULL;
	struct { int code; const char *reason; } codes[256];
	char user[64] = "", cwdbuf[PATH_MAX], exe[PATH_MAX], *eq;
	int i, nenv = 0, ncodes = 0, detect = 0, clean = 0, k;
	long timeout = 0;
	/* Captured output: --capture, --stdout-log, --stderr-log. */
	char logs[2][PATH_MAX] = { "", "" };
	int capture = 0;
	struct ward_params p;
	struct ward_reply r;
	size_t nkeys;
	int rc;

	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage_error("run: give the instance a NAME first");
	name = argv[0];
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *o = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--detect-hangup") == 0) {
			detect = 1;
			continue;
		}
		if (strcmp(o, "--capture") == 0) {
			capture = 1;
			continue;
		}
		if (strcmp(o, "--clean-env") == 0) {
			clean = 1;
			continue;
		}
		if (o[0] != '-')
			return ctl_usage_error("run: put the command after --, as "
			    "in: wardctl run NAME -- %s ...", o);
		if (a == NULL)
			return ctl_usage_error("run: %s needs a value", o);
		i++;
		if (strcmp(o, "--hangup-timeout") == 0) {
			timeout = strtol(a, &eq, 10);
			if (*eq != '\0' || timeout < 1)
				return ctl_usage_error("run: --hangup-timeout takes "
				    "milliseconds");
			detect = 1;
		} else if (strcmp(o, "--exit-code") == 0) {
			if ((eq = strchr(a, '=')) == NULL || ncodes == 256 ||
			    !isdigit((unsigned char)a[0]))
				return ctl_usage_error("run: --exit-code takes N=REASON");
			codes[ncodes].code = atoi(a);
			codes[ncodes++].reason = eq + 1;
		} else if (strcmp(o, "--env") == 0) {
			if (strchr(a, '=') == NULL || nenv == 256)
				return ctl_usage_error("run: --env takes K=V");
			env[nenv++] = a;
		} else if (strcmp(o, "--cwd") == 0) {
			if (realpath(a, cwdbuf) == NULL)
				return ctl_usage_error("run: --cwd %s: %s", a,
				    strerror(errno));
			cwd = cwdbuf;
		} else if (strcmp(o, "--profile") == 0) {
			profile = a;
		} else if (strcmp(o, "--user") == 0) {
			if (ctl_user(a, user, sizeof user) == -1)
				return ctl_usage_error("run: no user '%s'", a);
		} else if (strcmp(o, "--stdout-log") == 0 ||
		    strcmp(o, "--stderr-log") == 0) {
			/* wardd wants absolute paths: relative to here. */
			k = strcmp(o, "--stderr-log") == 0;
			if (ctl_abs_path(a, logs[k], PATH_MAX) == -1)
				return ctl_usage_error("run: %s %s: path too long",
				    o, a);
		} else
			return ctl_usage_error("run: unknown option %s", o);
	}
	if (i >= argc - 1)
		return ctl_usage_error("run: give the command after --");
	argc -= i + 1;
	argv += i + 1;
	/* A relative path means relative to here, where the user typed it. */
	if (strchr(argv[0], '/') != NULL && argv[0][0] != '/' &&
	    realpath(argv[0], exe) != NULL)
		argv[0] = exe;

	/* wardd gives others' payloads none of its environment: pass ours. */
	env[nenv] = NULL;
	nenv += ward_caller_env(env, env + nenv);
	nkeys = 2 + (nenv > 0) + (cwd != NULL) + (detect != 0) + (timeout > 0) +
	    (ncodes > 0) + (profile != NULL) + (user[0] != '\0') +
	    capture + clean + (logs[0][0] != '\0') + (logs[1][0] != '\0');
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, nkeys);
	ctl_pack_str(&p.pk, "name");
	ctl_pack_str(&p.pk, name);
	ctl_pack_str(&p.pk, "argv");
	msgpack_pack_array(&p.pk, argc);
	for (k = 0; k < argc; k++)
		ctl_pack_str(&p.pk, argv[k]);
	if (nenv > 0) {
		ctl_pack_str(&p.pk, "env");
		msgpack_pack_map(&p.pk, nenv);
		for (k = 0; k < nenv; k++) {
			eq = strchr(env[k], '=');
			msgpack_pack_str(&p.pk, eq - env[k]);
			msgpack_pack_str_body(&p.pk, env[k], eq - env[k]);
			ctl_pack_str(&p.pk, eq + 1);
		}
	}
	if (cwd != NULL) {
		ctl_pack_str(&p.pk, "cwd");
		ctl_pack_str(&p.pk, cwd);
	}
	if (detect) {
		ctl_pack_str(&p.pk, "detect_hangup");
		msgpack_pack_true(&p.pk);
	}
	if (timeout > 0) {
		ctl_pack_str(&p.pk, "hangup_timeout_ms");
		msgpack_pack_uint64(&p.pk, timeout);
	}
	if (ncodes > 0) {
		ctl_pack_str(&p.pk, "exit_codes");
		msgpack_pack_map(&p.pk, ncodes);
		for (k = 0; k < ncodes; k++) {
			msgpack_pack_int(&p.pk, codes[k].code);
			ctl_pack_str(&p.pk, codes[k].reason);
		}
	}
	if (profile != NULL) {
		ctl_pack_str(&p.pk, "profile");
		ctl_pack_str(&p.pk, profile);
	}
	if (user[0] != '\0') {
		ctl_pack_str(&p.pk, "user");
		ctl_pack_str(&p.pk, user);
	}
	if (capture) {
		ctl_pack_str(&p.pk, "capture_output");
		msgpack_pack_true(&p.pk);
	}
	if (clean) {
		ctl_pack_str(&p.pk, "clean_env");
		msgpack_pack_true(&p.pk);
	}
	for (k = 0; k < 2; k++) {
		if (logs[k][0] != '\0') {
			ctl_pack_str(&p.pk, k ? "stderr_logfile" : "stdout_logfile");
			ctl_pack_str(&p.pk, logs[k]);
		}
	}
	if ((rc = ctl_call(c, "instance.run", &p, NULL, &r)) != 0)
		return rc;
	if (c->json) {
		ctl_json_line(&r.result);
	} else {
		struct ward_status s;

		ward_status_decode(&r.result, &s);
		printf("%s: started (id %" PRIu64 ", pid %d)\n", name, s.id,
		    (int)s.pid);
		ward_status_free(&s);
	}
	ward_reply_free(&r);
	return 0;
}

/* ---- stop, restart: wait for each death, as supervisorctl does */

/* The ids of idents (resolved by status); -1 after reporting a failure. */
static int
ctl_resolve(struct ctl *c, int argc, char **argv, struct ward_status *v)
{
	int i, rc;

	for (i = 0; i < argc; i++) {
		if (ctl_connect(c) == -1)
			return EX_UNREACHABLE;
		if (ward_instance_status(c->w, argv[i], &v[i]) == -1) {
			rc = ctl_failed(c, argv[i]);
			if (rc == EX_REFUSED)
				ctl_suggest(c, argv[i]);
			while (i-- > 0)
				ward_status_free(&v[i]);
			return rc;
		}
	}
	return 0;
}

static int
ctl_stop_wait(struct ctl *c, int argc, char **argv, int restart)
{
	struct ward_status *v;
	struct ward_params p;
	struct ward_event ev;
	struct ward_reply r;
	msgpack_unpacked raw;
	uint64_t *ids;
	long timeout = -1;
	int i, rc = 0, waiting = 0, nids = 0;
	char *end;

	if (argc >= 2 && strcmp(argv[0], "--timeout") == 0) {
		timeout = strtol(argv[1], &end, 10);
		if (*end != '\0' || timeout < 0)
			return ctl_usage_error("--timeout takes milliseconds");
		argc -= 2;
		argv += 2;
	}
	if (argc < 1)
		return EX_USAGE;
	v = calloc(argc, sizeof *v);
	ids = calloc(argc, sizeof *ids);
	if (v == NULL || ids == NULL || (rc = ctl_resolve(c, argc, argv, v)) != 0) {
		free(v);
		free(ids);
		return rc ? rc : EX_REFUSED;
	}
	for (i = 0; i < argc; i++) {
		if (strcmp(v[i].state, "running") == 0)
			ids[nids++] = v[i].id;
	}
	/* Subscribe before stopping, so no death can slip past. */
	if (nids > 0 && ward_events_subscribe(c->w, ids, nids,
	    (const char *const[]){ "died", NULL }) == -1) {
		rc = ctl_failed(c, NULL);
		goto out;
	}
	for (i = 0; i < argc; i++) {
		if (strcmp(v[i].state, "running") != 0) {
			if (restart)
				continue;
			/* A program backing off or waiting: call its start off. */
			if (v[i].program_state != NULL &&
			    (strcmp(v[i].program_state, "backoff") == 0 ||
			    strcmp(v[i].program_state, "waiting") == 0)) {
				ward_params_init(&p);
				ctl_pack_ident(&p.pk, argv[i], 0);
				if (ctl_call(c, "instance.stop", &p, argv[i], NULL) != 0)
					rc = EX_REFUSED;
				else if (!c->json)
					printf("%s: stopped (its %s start called off)\n",
					    v[i].name, v[i].program_state);
				continue;
			}
			fprintf(stderr, "wardctl: %s: not running\n", v[i].name);
			rc = EX_REFUSED;
			continue;
		}
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], timeout >= 0);
		if (timeout >= 0) {
			ctl_pack_str(&p.pk, "timeout_ms");
			msgpack_pack_uint64(&p.pk, timeout);
		}
		if (ctl_call(c, "instance.stop", &p, argv[i], &r) == 0) {
			ward_reply_free(&r);
			waiting++;
		} else
			rc = EX_REFUSED;
	}
	msgpack_unpacked_init(&raw);
	while (waiting > 0) {
		if (ward_event_next_raw(c->w, &raw, -1) != 1) {
			rc = ctl_failed(c, NULL);
			msgpack_unpacked_destroy(&raw);
			goto out;
		}
		if (ward_event_decode(&raw.data, &ev) == 0 &&
		    strcmp(ev.type, "died") == 0) {
			waiting--;
			/* --json: the exit record of each death, as sent. */
			if (c->json && !restart)
				ctl_json_line(&raw.data.via.array.ptr[2].via.array.ptr[0]);
			else if (!restart)
				printf("%s: stopped (%s%s%s)\n", ev.name,
				    ev.exit.death_reason, ev.exit.signal_name ? ", " : "",
				    ev.exit.signal_name ? ev.exit.signal_name : "");
		}
		ward_event_free(&ev);
	}
	msgpack_unpacked_destroy(&raw);
	if (nids > 0)
		ward_events_unsubscribe(c->w);
	if (restart) {
		for (i = 0; i < argc; i++) {
			ward_params_init(&p);
			ctl_pack_ident(&p.pk, argv[i], 0);
			if (ctl_call(c, "instance.start", &p, argv[i], NULL) != 0)
				rc = EX_REFUSED;
			else if (!c->json)
				printf("%s: restarted\n", v[i].name);
		}
	}
out:
	ward_status_list_free(v, argc);
	free(ids);
	return rc;
}

static int
ctl_stop(struct ctl *c, int argc, char **argv)
{
	return ctl_stop_wait(c, argc, argv, 0);
}

static int
ctl_restart(struct ctl *c, int argc, char **argv)
{
	return ctl_stop_wait(c, argc, argv, 1);
}

/* ---- the simple ones */

static int
ctl_start(struct ctl *c, int argc, char **argv)
{
	return ctl_each(c, argc, argv, "instance.start", "started");
}

static int
ctl_suspend(struct ctl *c, int argc, char **argv)
{
	return ctl_each(c, argc, argv, "instance.suspend", "suspended");
}

static int
ctl_resume(struct ctl *c, int argc, char **argv)
{
	return ctl_each(c, argc, argv, "instance.resume", "resumed");
}

static int
ctl_remove(struct ctl *c, int argc, char **argv)
{
	return ctl_each(c, argc, argv, "instance.remove", "removed");
}

static int
ctl_kill(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	const char *sig = "KILL";
	int i, rc, worst = 0;

	if (argc >= 2 && strcmp(argv[0], "-s") == 0) {
		sig = argv[1];
		argc -= 2;
		argv += 2;
	}
	if (argc < 1)
		return EX_USAGE;
	for (i = 0; i < argc; i++) {
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], 1);
		ctl_pack_str(&p.pk, "signal");
		/* Names go as they are: wardd knows them; numbers as numbers. */
		if (ctl_is_id(sig))
			msgpack_pack_uint64(&p.pk, strtoull(sig, NULL, 10));
		else
			ctl_pack_str(&p.pk, sig);
		if ((rc = ctl_call(c, "instance.kill", &p, argv[i], NULL)) != 0)
			worst = rc > worst ? rc : worst;
		else if (!c->json)
			printf("%s: sent %s\n", argv[i], sig);
	}
	return worst;
}

static int
ctl_payload(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	int rc;

	if (argc != 2)
		return EX_USAGE;
	ward_params_init(&p);
	ctl_pack_ident(&p.pk, argv[0], 1);
	ctl_pack_str(&p.pk, "state");
	ctl_pack_str(&p.pk, argv[1]);
	if ((rc = ctl_call(c, "instance.payload", &p, argv[0], NULL)) == 0 &&
	    !c->json)
		printf("%s: payload %s\n", argv[0], argv[1]);
	return rc;
}

static int
ctl_history(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	struct ward_reply r;
	struct ward_exit x;
	long limit = 0;
	const char *ident = NULL;
	char when[32], up[32], rss[16];
	uint32_t i;
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (strcmp(argv[0], "-n") == 0 && argc > 1) {
			limit = atol(argv[1]);
			argc--;
			argv++;
		} else if (ident == NULL && argv[0][0] != '-')
			ident = argv[0];
		else
			return EX_USAGE;
	}
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, (ident != NULL) + (limit > 0));
	if (ident != NULL) {
		ctl_pack_str(&p.pk, ctl_is_id(ident) ? "id" : "name");
		if (ctl_is_id(ident))
			msgpack_pack_uint64(&p.pk, strtoull(ident, NULL, 10));
		else
			ctl_pack_str(&p.pk, ident);
	}
	if (limit > 0) {
		ctl_pack_str(&p.pk, "limit");
		msgpack_pack_uint64(&p.pk, limit);
	}
	if ((rc = ctl_call(c, "instance.history", &p, NULL, &r)) != 0)
		return rc;
	if (c->json) {
		ctl_json_line(&r.result);
		ward_reply_free(&r);
		return 0;
	}
	printf("%s%-19s %-16s %6s %-20s %6s %8s %6s %s%s\n", C_BOLD(c), "DIED",
	    "NAME", "ID", "REASON", "EXIT", "UPTIME", "RSSMAX", "INFO", C_RESET(c));
	for (i = 0; r.result.type == MSGPACK_OBJECT_ARRAY &&
	    i < r.result.via.array.size; i++) {
		time_t t;
		char exit[24];

		ward_exit_decode(&r.result.via.array.ptr[i], &x);
		t = x.died_at_ms / 1000;
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (x.exit_signal)
			snprintf(exit, sizeof exit, "%s", x.signal_name);
		else if (x.has_exit_code)
			snprintf(exit, sizeof exit, "%d", x.exit_code);
		else
			snprintf(exit, sizeof exit, "-");
		printf("%-19s %-16s %6" PRIu64 " %s%-20s%s %6s %8s %6s %s\n", when,
		    x.name, x.id, strcmp(x.death_reason, "SHUTDOWN") ?
		    C_RED(c) : "", x.death_reason, C_RESET(c), exit,
		    ctl_duration(x.uptime_ms, up, sizeof up),
		    ctl_size(x.metrics.rss_max_kb, rss, sizeof rss),
		    CLEAN(x.failure_info ? x.failure_info : x.failure_reason));
		ward_exit_free(&x);
	}
	ward_reply_free(&r);
	return 0;
}

/* ---- events: one line per event until interrupted */

static void
ctl_event_line(struct ctl *c, const struct ward_event *ev)
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

/*
 * Read what wardd sends until ^C or the connection fails, for events and
 * tail -f: next is ward_event_next_raw or ward_notification_next_raw, and
 * on_msg gets each message, returning 0 to go on or a status to stop with.
 */
static int
ctl_follow(struct ctl *c, int (*next)(struct ward *, msgpack_unpacked *, int),
    int (*on_msg)(struct ctl *, const msgpack_object *))
{
	struct sigaction sa, old;
	msgpack_unpacked raw;
	int rc = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ctl_sigint;
	sigaction(SIGINT, &sa, &old);
	ctl_interrupted = 0;
	msgpack_unpacked_init(&raw);
	while (!ctl_interrupted) {
		rc = next(c->w, &raw, 250);
		if (rc == 0)
			continue;
		if (rc == -1) {
			rc = ctl_failed(c, NULL);
			break;
		}
		if ((rc = on_msg(c, &raw.data)) != 0)
			break;
	}
	msgpack_unpacked_destroy(&raw);
	sigaction(SIGINT, &old, NULL);
	return rc;
}

/* One event, as a line (or, with --json, the event map as wardd sent it). */
static int
ctl_event_msg(struct ctl *c, const msgpack_object *msg)
{
	struct ward_event ev;

	if (c->json)
		ctl_json_line(&msg->via.array.ptr[2].via.array.ptr[0]);
	else if (ward_event_decode(msg, &ev) == 0) {
		ctl_event_line(c, &ev);
		ward_event_free(&ev);
	}
	return 0;
}

static int
ctl_events(struct ctl *c, int argc, char **argv)
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
	rc = ctl_follow(c, ward_event_next_raw, ctl_event_msg);
	if (c->w != NULL)
		ward_events_unsubscribe(c->w);
	return rc;
}

/* ---- tail, logrotate: captured output (instance.log) */

/*
 * A payload's output, as is into a pipe or file; on a terminal control
 * characters other than newline and tab (and C1 controls) become '?', so
 * the output cannot take over the terminal. wardd sends valid UTF-8.
 */
static void
ctl_write_output(const msgpack_object *data)
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
ctl_log_notification(const msgpack_object *o)
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

/* One ward.log notification of tail -f; EX_REFUSED once wardd dropped us. */
static int
ctl_log_msg(struct ctl *c, const msgpack_object *raw)
{
	const msgpack_object *m, *msg;

	if ((m = ctl_log_notification(raw)) == NULL)
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
		ctl_write_output(ward_map_get(m, "data"));
	return 0;
}

static int
ctl_tail(struct ctl *c, int argc, char **argv)
{
	const char *ident, *stream = "stdout";
	struct ward_params p;
	struct ward_reply r;
	long bytes = -1;
	int follow = 0, rc;
	char *end;

	for (; argc > 0 && argv[0][0] == '-'; argc--, argv++) {
		if (strcmp(argv[0], "-f") == 0)
			follow = 1;
		else if (strcmp(argv[0], "-n") == 0 && argc > 1) {
			bytes = strtol(argv[1], &end, 10);
			if (*end != '\0' || bytes < 0 || argv[1][0] == '\0')
				return ctl_usage_error("tail: -n takes a number "
				    "of bytes");
			argc--;
			argv++;
		} else
			return EX_USAGE;
	}
	if (argc < 1 || argc > 2)
		return EX_USAGE;
	ident = argv[0];
	if (argc == 2) {
		if (strcmp(argv[1], "stdout") != 0 && strcmp(argv[1], "stderr") != 0)
			return ctl_usage_error("tail: the stream is stdout or "
			    "stderr, not '%s'", argv[1]);
		stream = argv[1];
	}
	ward_params_init(&p);
	ctl_pack_ident(&p.pk, ident, 1 + (bytes >= 0) + follow);
	ctl_pack_str(&p.pk, "stream");
	ctl_pack_str(&p.pk, stream);
	if (bytes >= 0) {
		ctl_pack_str(&p.pk, "bytes");
		msgpack_pack_uint64(&p.pk, bytes);
	}
	if (follow) {
		ctl_pack_str(&p.pk, "follow");
		msgpack_pack_true(&p.pk);
	}
	if ((rc = ctl_call(c, "instance.log", &p, ident, &r)) != 0)
		return rc;
	if (c->json)
		ctl_json_line(&r.result);
	else
		ctl_write_output(ward_map_get(&r.result, "data"));
	ward_reply_free(&r);
	if (!follow)
		return 0;
	rc = ctl_follow(c, ward_notification_next_raw, ctl_log_msg);
	/* The shell keeps the connection: stop following on it. */
	if (c->w != NULL && rc == 0) {
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, ident, 3);
		ctl_pack_str(&p.pk, "stream");
		ctl_pack_str(&p.pk, stream);
		ctl_pack_str(&p.pk, "bytes");
		msgpack_pack_uint64(&p.pk, 0);
		ctl_pack_str(&p.pk, "follow");
		msgpack_pack_false(&p.pk);
		ward_call(c->w, "instance.log", p.sbuf.data, p.sbuf.size, &r);
		ward_reply_free(&r);
		ward_params_free(&p);
	}
	return rc;
}

static int
ctl_logrotate(struct ctl *c, int argc, char **argv)
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

/* ---- declared programs: reread shows, update applies */

/*
 * Changes on stdout ("web: added", or "would be added" for reread);
 * errors and then warnings (keys ignored) on stderr.
 */
static int
ctl_reread_update(struct ctl *c, const char *method, int apply)
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
ctl_reread(struct ctl *c, int argc, char **argv)
{
	return argc ? EX_USAGE : ctl_reread_update(c, "ward.reread", 0);
}

static int
ctl_update(struct ctl *c, int argc, char **argv)
{
	return argc ? EX_USAGE : ctl_reread_update(c, "ward.update", 1);
}

/* ---- info, shutdown */

static int
ctl_info(struct ctl *c, int argc, char **argv)
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

static int
ctl_shutdown(struct ctl *c, int argc, char **argv)
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

/* ---- top: a refreshing full-screen view */

static int
ctl_cmp_cpu(const void *a, const void *b)
{
	const struct ward_status *x = a, *y = b;

	if (x->metrics.cpu_percent != y->metrics.cpu_percent)
		return x->metrics.cpu_percent < y->metrics.cpu_percent ? 1 : -1;
	return x->metrics.rss_kb < y->metrics.rss_kb ? 1 :
	    x->metrics.rss_kb > y->metrics.rss_kb ? -1 : 0;
}

/* One line of top's view, cut to the terminal's width (cols > 0). */
static void
ctl_top_line(int cols, const char *pre, const char *post, const char *fmt,
    ...)
{
	char line[512];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if (len >= (int)sizeof line)
		len = sizeof line - 1;
	if (cols > 0 && len > cols)
		len = cols;
	/* On a terminal, clear what the last frame left right of the line. */
	printf("%s%.*s%s%s\n", pre, len, line, post, cols > 0 ? "\033[K" : "");
}

/*
 * top [-d SECONDS] [-n FRAMES]: on a terminal, a view of its own (the
 * alternate screen, left on exit with the terminal's modes restored) that
 * is redrawn every SECONDS until q or ^C; otherwise FRAMES frames, one
 * unless told, one after another.
 */
static int
ctl_top(struct ctl *c, int argc, char **argv)
{
	struct sigaction sa, old;
	struct termios tio, raw;
	struct ward_status *v;
	struct ward_stats s;
	struct winsize ws;
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	long frames = -1, delay = 1000;
	int tty = isatty(0) && isatty(1), rows, cols, rc = 0, failed = 0;
	int wname, wid;
	size_t n, i;
	char rss[16], buf[32], id[24], *end;

	for (; argc >= 2; argc -= 2, argv += 2) {
		if (strcmp(argv[0], "-n") == 0) {
			errno = 0;
			frames = strtol(argv[1], &end, 10);
			if (errno != 0 || end == argv[1] || *end != '\0' ||
			    frames < 1)
				return EX_USAGE;
		} else if (strcmp(argv[0], "-d") == 0) {
			double d = strtod(argv[1], &end);

			if (end == argv[1] || *end != '\0' || !(d >= 0.1) ||
			    d > 86400)
				return EX_USAGE;
			delay = (long)(d * 1000);
		} else
			return EX_USAGE;
	}
	if (argc != 0)
		return EX_USAGE;
	if (!tty && frames < 0)
		frames = 1;
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ctl_sigint;
	sigaction(SIGINT, &sa, &old);
	ctl_interrupted = 0;
	if (tty) {
		tcgetattr(0, &tio);
		raw = tio;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(0, TCSANOW, &raw);
		/* The alternate screen, the cursor hidden. */
		fputs("\033[?1049h\033[?25l", stdout);
	}
	while (frames != 0 && !ctl_interrupted) {
		if (ward_stats(c->w, &s) == -1 ||
		    ward_instance_list(c->w, "running", &v, &n) == -1) {
			failed = 1;
			break;
		}
		qsort(v, n, sizeof *v, ctl_cmp_cpu);
		rows = (int)n;
		cols = 0;
		if (tty && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
			/* Summary, blank, header, rows: never a scroll. */
			rows = ws.ws_row > 4 ? ws.ws_row - 4 : 0;
			cols = ws.ws_col;
		}
		wname = 24;
		wid = 6;
		for (i = 0; i < n; i++) {
			wname = ctl_width(wname, v[i].name);
			snprintf(id, sizeof id, "%" PRIu64, v[i].id);
			wid = ctl_width(wid, id);
		}
		/* The columns right of NAME stay on screen: long names are cut. */
		if (cols > 0 && wname > cols - wid - 44)
			wname = cols - wid - 44 > 4 ? cols - wid - 44 : 4;
		if (tty)
			fputs("\033[H", stdout);
		ctl_top_line(cols, "", "", "wardd: %" PRIu64 " instances, %" PRIu64
		    " running, %" PRIu64 " died, %" PRIu64 " clients, wardd rss %s",
		    s.instances, s.running, s.died, s.clients,
		    ctl_size(s.rss_kb, rss, sizeof rss));
		ctl_top_line(cols, "", "", "%s", "");
		ctl_top_line(cols, C_BOLD(c), C_RESET(c),
		    "%-*s %*s %7s %6s %8s %8s %-9s", wname, "NAME", wid, "ID",
		    "PID", "CPU%", "RSS", "UPTIME", "PAYLOAD");
		for (i = 0; i < n && (int)i < rows; i++)
			ctl_top_line(cols, "", "",
			    "%-*.*s %*" PRIu64 " %7d %6.1f %8s %8s %-9s", wname,
			    wname, v[i].name, wid, v[i].id, (int)v[i].pid,
			    v[i].metrics.cpu_percent,
			    ctl_size(v[i].metrics.rss_kb, rss, sizeof rss),
			    ctl_duration(v[i].uptime_ms, buf, sizeof buf),
			    v[i].payload_state ? v[i].payload_state : "");
		if (tty)
			fputs("\033[J", stdout);	/* rows the last frame had */
		fflush(stdout);
		ward_status_list_free(v, n);
		if (frames > 0 && --frames == 0)
			break;
		if (tty) {
			char ch;
			int k = poll(&pfd, 1, delay);

			if (k > 0) {
				ssize_t got = read(0, &ch, 1);

				/* q, or the terminal gone: never spin on EOF. */
				if (got == 0 || (got < 0 && errno != EINTR &&
				    errno != EAGAIN) ||
				    (got == 1 && (ch == 'q' || ch == 'Q' ||
				    ch == 3)))
					break;
			}
		} else
			poll(NULL, 0, delay);
	}
	if (tty) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		tcsetattr(0, TCSANOW, &tio);
	}
	sigaction(SIGINT, &old, NULL);
	/* Only now, on the screen the user gets back. */
	if (failed)
		rc = ctl_failed(c, NULL);
	return rc;
}

/* ---- help and the table */

static int ctl_help(struct ctl *, int, char **);

static const struct ctl_cmd ctl_cmds[] = {
	{ "status", "status [-l] [NAME|ID ...]",
	  "Show instances: a table, or with -l every detail.", ctl_status },
	{ "run", "run NAME [--detect-hangup] [--hangup-timeout MS] "
	  "[--exit-code N=REASON ...] [--profile crosvm] [--env K=V ...] "
	  "[--cwd DIR] [--user U] [--capture] [--clean-env] "
	  "[--stdout-log FILE] [--stderr-log FILE] -- ARGV...",
	  "Create and start an instance.", ctl_run },
	{ "start", "start NAME|ID ...",
	  "Start instances that are not running (again, if they died).", ctl_start },
	{ "stop", "stop [--timeout MS] NAME|ID ...",
	  "SIGTERM, then SIGKILL after the timeout; waits until each is dead.",
	  ctl_stop },
	{ "restart", "restart [--timeout MS] NAME|ID ...",
	  "Stop (if running) and start again.", ctl_restart },
	{ "kill", "kill [-s SIGNAL] NAME|ID ...",
	  "Send a signal (name or number; default KILL).", ctl_kill },
	{ "suspend", "suspend NAME|ID ...", "SIGSTOP the instance's processes.",
	  ctl_suspend },
	{ "resume", "resume NAME|ID ...", "SIGCONT the instance's processes.",
	  ctl_resume },
	{ "remove", "remove NAME|ID ...", "Forget instances that are not running.",
	  ctl_remove },
	{ "payload", "payload NAME|ID STATE",
	  "Move the payload state forward: started, ready or finished.",
	  ctl_payload },
	{ "history", "history [-n N] [NAME|ID]",
	  "How instances died, oldest first.", ctl_history },
	{ "events", "events [--metrics] [NAME|ID ...]",
	  "Print events as they happen, until interrupted.", ctl_events },
	{ "tail", "tail [-f] [-n BYTES] NAME|ID [stdout|stderr]",
	  "Print captured output; with -f keep printing it, until interrupted.",
	  ctl_tail },
	{ "top", "top [-d SECONDS] [-n FRAMES]",
	  "A refreshing view of running instances by CPU and memory; q quits.",
	  ctl_top },
	{ "reread", "reread",
	  "Show what the config directory would change (admins only).",
	  ctl_reread },
	{ "update", "update",
	  "Apply the config directory: start added programs, stop removed "
	  "ones, restart changed ones (admins only).", ctl_update },
	{ "logrotate", "logrotate",
	  "Reopen every log file, after logrotate moved them (admins only).",
	  ctl_logrotate },
	{ "info", "info", "The daemon's version and counters.", ctl_info },
	{ "shutdown", "shutdown [--leave-running]",
	  "Stop every instance and exit wardd (admins only).", ctl_shutdown },
	{ "help", "help [COMMAND]", "Show commands, or one command's usage.",
	  ctl_help },
};
#define CTL_NCMDS (sizeof ctl_cmds / sizeof ctl_cmds[0])

static const struct ctl_cmd *
ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < CTL_NCMDS; i++) {
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	}
	return NULL;
}

static int
ctl_help(struct ctl *c, int argc, char **argv)
{
	const struct ctl_cmd *cmd;
	size_t i;

	if (argc > 0) {
		if ((cmd = ctl_find(argv[0])) == NULL)
			return ctl_usage_error("no command '%s' (try help)", argv[0]);
		printf("usage: %s\n  %s\n", cmd->usage, cmd->help);
		return 0;
	}
	printf("commands (help COMMAND for its usage):\n");
	for (i = 0; i < CTL_NCMDS; i++)
		printf("  %-9s %s\n", ctl_cmds[i].name, ctl_cmds[i].help);
	return 0;
}

static int
ctl_dispatch(struct ctl *c, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_find(argv[0]);
	int rc;

	if (cmd == NULL) {
		ctl_usage_error("unknown command '%s' (try: wardctl help)", argv[0]);
		return EX_USAGE;
	}
	rc = cmd->fn(c, argc - 1, argv + 1);
	if (rc == EX_USAGE)
		fprintf(stderr, "usage: %s\n", cmd->usage);
	return rc;
}

/* ---- the interactive shell */

static struct ctl *ctl_shell_ctl;

static char *
ctl_complete_cmd(const char *text, int state)
{
	static size_t i;

	if (state == 0)
		i = 0;
	while (i < CTL_NCMDS) {
		const char *n = ctl_cmds[i++].name;

		if (strncmp(n, text, strlen(text)) == 0)
			return strdup(n);
	}
	return NULL;
}

static char *
ctl_complete_name(const char *text, int state)
{
	static struct ward_status *v;
	static size_t n, i;

	if (state == 0) {
		ward_status_list_free(v, n);
		v = NULL;
		n = i = 0;
		if (ctl_connect(ctl_shell_ctl) == 0 &&
		    ward_instance_list(ctl_shell_ctl->w, NULL, &v, &n) == -1) {
			v = NULL;
			n = 0;
		}
	}
	while (i < n) {
		const char *name = v[i++].name;

		if (strncmp(name, text, strlen(text)) == 0)
			return strdup(name);
	}
	return NULL;
}

static char **
ctl_complete(const char *text, int start, int end)
{
	rl_attempted_completion_over = 1;
	if (start == 0)
		return rl_completion_matches(text, ctl_complete_cmd);
	return rl_completion_matches(text, ctl_complete_name);
}

/* Split a line into words: quotes and backslashes as a shell would. */
static int
ctl_split(char *line, char **argv, int max)
{
	char *r = line, *w = line;
	int argc = 0, quote;

	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (*r == '\0' || argc == max)
			return argc;
		argv[argc++] = w;
		quote = 0;
		for (; *r != '\0'; r++) {
			if (quote) {
				if (*r == quote)
					quote = 0;
				else if (*r == '\\' && quote == '"' && r[1] != '\0')
					*w++ = *++r;
				else
					*w++ = *r;
			} else if (*r == '\'' || *r == '"')
				quote = *r;
			else if (*r == '\\' && r[1] != '\0')
				*w++ = *++r;
			else if (*r == ' ' || *r == '\t')
				break;
			else
				*w++ = *r;
		}
		if (*r != '\0')
			r++;
		*w++ = '\0';
	}
}

static int
ctl_shell(struct ctl *c)
{
	char hist[PATH_MAX], *line, *argv[256];
	const char *home = getenv("HOME");
	int argc;

	ctl_shell_ctl = c;
	c->interactive = 1;
	/* ^C at the prompt must not end the shell; events and top handle it. */
	signal(SIGINT, SIG_IGN);
	rl_readline_name = "wardctl";
	rl_attempted_completion_function = ctl_complete;
	snprintf(hist, sizeof hist, "%s/.wardctl_history", home ? home : "/tmp");
	using_history();
	read_history(hist);
	if (ctl_connect(c) == 0) {
		struct ward_hello h;

		if (ward_hello(c->w, &h) == 0)
			printf("%s %s at %s; help lists commands, quit leaves\n",
			    h.server, h.version, ward_socket_path(c->w));
	}
	while ((line = readline("ward> ")) != NULL) {
		if (*line != '\0') {
			add_history(line);
			write_history(hist);
		}
		argc = ctl_split(line, argv, 255);
		argv[argc] = NULL;
		if (argc > 0 && (strcmp(argv[0], "quit") == 0 ||
		    strcmp(argv[0], "exit") == 0)) {
			free(line);
			break;
		}
		if (argc > 0)
			ctl_dispatch(c, argc, argv);
		fflush(stdout);
		free(line);
	}
	putchar('\n');
	return 0;
}

static void __attribute__((noreturn))
usage(int rc)
{
	FILE *f = rc ? stderr : stdout;

	fprintf(f, "usage: wardctl [--socket PATH] [--json] COMMAND [ARGS]\n"
	    "       wardctl              (an interactive shell)\n"
	    "commands: ");
	for (size_t i = 0; i < CTL_NCMDS; i++)
		fprintf(f, "%s%s", i ? ", " : "", ctl_cmds[i].name);
	fprintf(f, "\n");
	exit(rc);
}

int
main(int argc, char **argv)
{
	struct ctl c = { 0 };
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			c.socket = argv[++i];
		else if (strncmp(argv[i], "--socket=", 9) == 0)
			c.socket = argv[i] + 9;
		else if (strcmp(argv[i], "--json") == 0)
			c.json = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(0);
		else if (strcmp(argv[i], "--version") == 0) {
			printf("wardctl %s\n", PACKAGE_VERSION);
			return 0;
		} else if (argv[i][0] == '-')
			usage(EX_USAGE);
		else
			break;
	}
	signal(SIGPIPE, SIG_IGN);
	c.color = isatty(1) && (nc == NULL || *nc == '\0') &&
	    (term == NULL || strcmp(term, "dumb") != 0);
	if (i == argc)
		rc = ctl_shell(&c);
	else
		rc = ctl_dispatch(&c, argc - i, argv + i);
	ward_close(c.w);
	return rc;
}
