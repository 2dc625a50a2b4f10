/*
 * statuspage.c: what --http-listen serves besides GET /metrics (http.c
 * hands it every other path): the status page of supervisord's
 * [inet_http_server] done read-only. GET / is the page (statuspage-html.c:
 * the HTML, script and style, no other asset, nothing from the network),
 * GET /instances.json the table's rows, GET /events the rows again as
 * server-sent events, one each time an observer hears of an instance
 * (created, started, payload, metrics, died, removed), and GET /log?id=N
 * a tail of an instance's captured output.
 *
 * Who sees what. The port is open to every local user, as /metrics is, and
 * the rows say what /metrics says already (names, states, CPU, memory,
 * death reasons): they are served to anyone who connects, as wardd's own
 * peer sees them. A payload's output is not, nor any text it wrote itself
 * (its STATUS=, what it said on fd 3): root's payloads and other users'
 * may print secrets. So those are off unless wardd was given --http-auth
 * FILE (one line USER:PASSWORD in a file only its owner, root or wardd's
 * user, may read: as supervisord's username/password); then they are
 * shown, and every path but /metrics asks for those credentials (HTTP
 * Basic, compared in constant time; the page's own requests reuse what
 * the browser was given). Basic over loopback TCP is in the clear only to
 * root, who can read wardd's memory anyway; an ADDR other than loopback
 * should be behind TLS.
 *
 * Everything a payload or a client controls reaches the page as JSON
 * strings (json.c escapes them) that the script puts in with textContent,
 * never as markup; the page's Content-Security-Policy allows its own script
 * and style only, so an injected tag would run nothing either.
 *
 * layer: commands (reads instances like openmetrics.c; an observer, and
 * http.c's route function)
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "json.h"

#define STATUSPAGE_TAIL		(16 * 1024)	/* bytes of a log tail */
#define STATUSPAGE_AUTH_MAX	256		/* USER:PASSWORD */

/* One GET /events: the conn is http.c's, gone() tells us it ended. */
struct statuspage_stream {
	struct http_conn		*h;
	TAILQ_ENTRY(statuspage_stream)	 entry;
};

static TAILQ_HEAD(, statuspage_stream) statuspage_streams =
    TAILQ_HEAD_INITIALIZER(statuspage_streams);
static char *statuspage_auth;	/* "Basic ..." to match; NULL: no tails */

/* The page's parts (statuspage-html.c). */
extern const char statuspage_html[], statuspage_js[], statuspage_css[];

static const char statuspage_csp[] = "Content-Security-Policy: "
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n";

/* RFC 4648 base64 of p[0..n) into out (4 * ((n + 2) / 3) + 1 bytes). */
static void
statuspage_base64(const unsigned char *p, size_t n, char *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t k;
	uint32_t v;

	for (k = 0; k < n; k += 3) {
		v = (uint32_t)p[k] << 16 | (k + 1 < n ? p[k + 1] << 8 : 0) |
		    (k + 2 < n ? p[k + 2] : 0);
		*out++ = b64[v >> 18 & 63];
		*out++ = b64[v >> 12 & 63];
		*out++ = k + 1 < n ? b64[v >> 6 & 63] : '=';
		*out++ = k + 2 < n ? b64[v & 63] : '=';
	}
	*out = '\0';
}

/*
 * --http-auth FILE: read at start (the loop is not running), refused unless
 * it is a regular file owned by root or by wardd's user that nobody else
 * may read or write, holding one USER:PASSWORD line.
 */
int
statuspage_auth_load(const char *path, struct ward_err *e)
{
	char line[STATUSPAGE_AUTH_MAX + 2], b64[4 * (STATUSPAGE_AUTH_MAX + 2) / 3 + 8];
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1)
		return ward_err_errno(e, WARD_E_INVALID_ARGUMENT,
		    "--http-auth %s", path);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 077) != 0) {
		close(fd);
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "--http-auth %s: "
		    "give a regular file of root's or wardd's user that only "
		    "its owner may read (chmod 600)", path);
	}
	n = read(fd, line, sizeof line - 1);
	close(fd);
	if (n < 0)
		n = 0;
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strchr(line, ':') == NULL || line[0] == ':' ||
	    line[strlen(line) - 1] == ':' || n > STATUSPAGE_AUTH_MAX)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "--http-auth %s: "
		    "give one line USER:PASSWORD (%d bytes at most)", path,
		    STATUSPAGE_AUTH_MAX);
	statuspage_base64((unsigned char *)line, strlen(line), b64);
	explicit_bzero(line, sizeof line);
	free(statuspage_auth);
	statuspage_auth = str_printf("Basic %s", b64);
	explicit_bzero(b64, sizeof b64);
	if (statuspage_auth == NULL)
		return ward_err_set(e, WARD_E_INTERNAL, "out of memory");
	return 0;
}

/* Whether the request's Authorization is the one asked for: every byte
 * compared whatever differs first, so timing tells nothing of where. */
static int
statuspage_authorized(const struct http_request *rq)
{
	const char *a = rq->authorization;
	size_t n, m, k;
	unsigned char d;

	if (statuspage_auth == NULL)
		return 1;
	n = strlen(statuspage_auth);
	m = strlen(a);
	d = m != n;
	for (k = 0; k < n; k++)
		d |= (unsigned char)(k < m ? a[k] : 0) ^
		    (unsigned char)statuspage_auth[k];
	return d == 0;
}

/*
 * One row of the table: what /metrics says of i, and its last death. The
 * text a payload wrote itself (its STATUS=, what it said on fd 3) is
 * output, shown only to who gave --http-auth's credentials; the reason's
 * NAME is what /metrics counts deaths by, shown to all.
 */
static void
statuspage_pack_row(const struct instance *i, msgpack_packer *pk)
{
	const struct exit_record *r = i->exit;

	msgpack_pack_map(pk, 15);
	codec_pack_kv_uint(pk, "id", i->id);
	codec_pack_kv_str(pk, "name", i->spec.name);
	codec_pack_kv_str(pk, "state", hooks_starting(i) ? "starting" :
	    instance_state_name(i->state));
	codec_pack_kv_str(pk, "payload_state", payload_state_name(i->payload));
	codec_pack_kv_str(pk, "status_text", statuspage_auth != NULL ?
	    INSTANCE_STATUS_TEXT(i) : NULL);
	codec_pack_kv_bool(pk, "suspended", i->suspended);
	codec_pack_kv_uint(pk, "owner_uid", i->owner_uid);
	codec_pack_key(pk, "uptime_ms");
	if (i->state == INSTANCE_RUNNING)
		msgpack_pack_uint64(pk, (ev_now(ward_loop) - i->started_mono) *
		    1000);
	else if (r != NULL)
		msgpack_pack_uint64(pk, r->uptime_ms);
	else
		msgpack_pack_nil(pk);
	codec_pack_kv_uint(pk, "cpu_ms", i->metrics.cpu_user_ms +
	    i->metrics.cpu_system_ms);
	codec_pack_key(pk, "cpu_percent");
	msgpack_pack_double(pk, i->metrics.cpu_percent);
	codec_pack_kv_uint(pk, "rss_kb", i->metrics.rss_kb);
	codec_pack_kv_str(pk, "death_reason", r != NULL &&
	    r->death_reason[0] != '\0' ? r->death_reason : NULL);
	codec_pack_kv_str(pk, "death_info", r == NULL ||
	    statuspage_auth == NULL ? NULL : r->failure_info != NULL ?
	    r->failure_info : r->failure_reason);
	codec_pack_kv_str(pk, "program", i->program != NULL ?
	    program_state_name(i->program->state) : NULL);
	codec_pack_kv_bool(pk, "captured", i->spec.output != NULL);
}

/* The msgpack in b (one object) appended to out as JSON; -1 out of memory. */
static int
statuspage_json(const struct buf *b, struct buf *out)
{
	msgpack_unpacked u;
	size_t off = 0;
	int rc = -1;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, b->data, b->len, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		json_value(&u.data, codec_sbuffer_write, out);
		rc = 0;
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* Every instance's row, as a JSON array. NULL when out of memory. */
static char *
statuspage_rows(size_t *len)
{
	struct buf b = { 0 }, out = { 0 };
	struct instance *i;
	msgpack_packer pk;
	size_t n = 0;

	TAILQ_FOREACH(i, &instances, entry)
		n++;
	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	msgpack_pack_array(&pk, n);
	TAILQ_FOREACH(i, &instances, entry)
		statuspage_pack_row(i, &pk);
	if (b.data == NULL || statuspage_json(&b, &out) == -1 ||
	    buf_append(&out, "", 1) == -1) {
		buf_free(&b);
		buf_free(&out);
		return NULL;
	}
	buf_free(&b);
	*len = out.len - 1;
	return out.data;
}

/* An SSE message "event: TYPE\ndata: JSON\n\n" to every stream. The JSON
 * has no newline (json.c escapes them), so one data line holds it. */
static void
statuspage_send(const char *type, const struct buf *json)
{
	struct statuspage_stream *s, *next;
	struct buf m = { 0 };

	if (buf_append(&m, "event: ", 7) == -1 ||
	    buf_append(&m, type, strlen(type)) == -1 ||
	    buf_append(&m, "\ndata: ", 7) == -1 ||
	    buf_append(&m, json->data, json->len) == -1 ||
	    buf_append(&m, "\n\n", 2) == -1) {
		buf_free(&m);
		return;		/* out of memory: the page misses one update */
	}
	/* A stream that falls too far behind is dropped and unlinked by
	 * statuspage_gone_cb inside http_stream_send: next is kept first. */
	for (s = TAILQ_FIRST(&statuspage_streams); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		http_stream_send(s->h, m.data, m.len);
	}
	buf_free(&m);
}

/* instance.c's observer: each change a row of the page shows. */
void
statuspage_instance_cb(struct instance *i, enum instance_event ev)
{
	struct buf b = { 0 }, out = { 0 };
	msgpack_packer pk;

	if (TAILQ_EMPTY(&statuspage_streams) || ev == INSTANCE_EV_RESTORED)
		return;
	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	if (ev == INSTANCE_EV_REMOVED) {
		msgpack_pack_map(&pk, 1);
		codec_pack_kv_uint(&pk, "id", i->id);
	} else
		statuspage_pack_row(i, &pk);
	if (b.data != NULL && statuspage_json(&b, &out) == 0)
		statuspage_send(ev == INSTANCE_EV_REMOVED ? "removed" : "row", &out);
	buf_free(&b);
	buf_free(&out);
}

static void
statuspage_gone_cb(void *arg)
{
	struct statuspage_stream *s = arg;

	TAILQ_REMOVE(&statuspage_streams, s, entry);
	free(s);
	/* The sampler announces metrics only while someone listens. */
	if (TAILQ_EMPTY(&statuspage_streams))
		event_metrics_subscribers--;
}

/* GET /events: the rows now, then each change as it happens. */
static void
statuspage_events(struct http_conn *h)
{
	struct statuspage_stream *s;
	struct buf m = { 0 };
	char *rows;
	size_t len;

	if ((s = calloc(1, sizeof *s)) == NULL ||
	    (rows = statuspage_rows(&len)) == NULL) {
		free(s);
		http_error(h, "500 Internal Server Error", "", 0);
		return;
	}
	if (buf_append(&m, "event: rows\ndata: ", 18) == -1 ||
	    buf_append(&m, rows, len) == -1 || buf_append(&m, "\n\n", 2) == -1) {
		free(rows);
		buf_free(&m);
		free(s);
		http_error(h, "500 Internal Server Error", "", 0);
		return;
	}
	free(rows);
	if (http_stream(h, statuspage_gone_cb, s) == -1) {
		free(s);	/* h was answered 503 */
		buf_free(&m);
		return;
	}
	s->h = h;
	if (TAILQ_EMPTY(&statuspage_streams))
		event_metrics_subscribers++;
	TAILQ_INSERT_TAIL(&statuspage_streams, s, entry);
	http_stream_send(h, m.data, m.len);	/* s may be gone */
	buf_free(&m);
}

/* GET /log?id=N[&stream=stderr]: the tail of its captured output. */
static void
statuspage_log(struct http_conn *h, const struct http_request *rq)
{
	const char *p;
	struct instance *i = NULL;
	char *data, *end;
	unsigned long long id;
	int stream = OUTPUT_STDOUT;

	if (statuspage_auth == NULL) {
		http_error(h, "403 Forbidden (log tails need wardd --http-auth)",
		    "", rq->head_only);
		return;
	}
	if (strncmp(rq->query, "id=", 3) == 0) {
		errno = 0;
		id = strtoull(rq->query + 3, &end, 10);
		if (errno == 0 && end != rq->query + 3 &&
		    (*end == '\0' || *end == '&'))
			i = instance_find_id(id);
		if ((p = strstr(rq->query, "&stream=")) != NULL &&
		    strcmp(p + 8, "stderr") == 0)
			stream = OUTPUT_STDERR;
	}
	if (i == NULL) {
		http_error(h, "404 Not Found", "", rq->head_only);
		return;
	}
	if ((data = i->spec.output == NULL ?
	    strdup("(this instance's output is not captured)\n") :
	    output_tail(i, stream, STATUSPAGE_TAIL)) == NULL) {
		http_error(h, "500 Internal Server Error", "", rq->head_only);
		return;
	}
	http_reply(h, "200 OK", "text/plain; charset=utf-8", statuspage_csp,
	    data, strlen(data), rq->head_only);
}

/* http.c's route function: every path but /metrics. */
static void
statuspage_route(struct http_conn *h, const struct http_request *rq)
{
	static const struct {
		const char	*path;
		const char	*ctype;
		const char	*body;
	} files[] = {
		{ "/", "text/html; charset=utf-8", statuspage_html },
		{ "/status.js", "text/javascript; charset=utf-8", statuspage_js },
		{ "/status.css", "text/css; charset=utf-8", statuspage_css },
	};
	char *body;
	size_t k, len;

	if (!statuspage_authorized(rq)) {
		http_error(h, "401 Unauthorized",
		    "WWW-Authenticate: Basic realm=\"wardd\", charset=\"UTF-8\"\r\n",
		    rq->head_only);
		return;
	}
	for (k = 0; k < sizeof files / sizeof files[0]; k++) {
		if (strcmp(rq->path, files[k].path) == 0) {
			if ((body = strdup(files[k].body)) == NULL) {
				http_error(h, "500 Internal Server Error", "",
				    rq->head_only);
				return;
			}
			http_reply(h, "200 OK", files[k].ctype, statuspage_csp,
			    body, strlen(body), rq->head_only);
			return;
		}
	}
	if (strcmp(rq->path, "/events") == 0 && !rq->head_only)
		statuspage_events(h);
	else if (strcmp(rq->path, "/instances.json") == 0) {
		if ((body = statuspage_rows(&len)) == NULL)
			http_error(h, "500 Internal Server Error", "",
			    rq->head_only);
		else
			http_reply(h, "200 OK", "application/json",
			    statuspage_csp, body, len, rq->head_only);
	} else if (strcmp(rq->path, "/log") == 0)
		statuspage_log(h, rq);
	else
		http_error(h, "404 Not Found", "", rq->head_only);
}

void
statuspage_init(void)
{
	http_route(statuspage_route);
	instance_observe(statuspage_instance_cb);	/* last: rows as they end */
}
