/*
 * http.c: wardd --http-listen ADDR:PORT (--metrics-listen is its old name),
 * a minimal HTTP/1.1 server for
 * one resource, GET /metrics, on wardd's own loop. Every bound is fixed:
 * at most HTTP_CONNS connections (one more takes the slot of the oldest
 * still reading its head, else is answered 503 and closed), a
 * request head of at most HTTP_HEAD_MAX bytes that must arrive whole
 * within HTTP_READ_S of the accept (a slowloris client holds one slot
 * until then, nothing more), one request per connection (Connection:
 * close), the answer written without blocking within HTTP_WRITE_S, and
 * all answers queued at once within HTTP_QUEUED_MAX bytes (503 past it).
 * What the body says is the body function wardd.c gives http_init
 * (openmetrics.c's), so this file knows nothing of instances.
 *
 * --http-listen is the same listener under its new name: every other path
 * goes to the route function wardd.c gives http_route (statuspage.c's),
 * which answers with http_reply, or turns the conn into a stream of
 * server-sent events (http_stream). A stream is one of at most
 * HTTP_STREAMS, has no deadline but a keepalive every HTTP_KEEPALIVE_S,
 * and is dropped when what waits for it passes HTTP_STREAM_MAX (or one
 * message, the first table, when that is bigger) or when it
 * made no progress over two keepalives: a slow reader costs wardd a fixed
 * amount, never more. Its kernel send buffer is fixed too (SO_SNDBUF).
 *
 * Why not libmicrohttpd: its external-select mode would fit the loop, but
 * it is a second parser and state machine of ~30,000 lines for one GET,
 * with its own limits to tune and its own fds that ward.fds would have to
 * learn; the request needed here is one line and one header.
 *
 * layer: transport (a listener and its connections, like server.c and
 * conn.c; the body comes through a function pointer from wiring)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

#define HTTP_CONNS		16		/* open at once; more: 503 */
#define HTTP_HEAD_MAX		8192		/* request line and headers */
#define HTTP_READ_S		5.0		/* the whole head, from accept */
#define HTTP_WRITE_S		30.0		/* the whole answer, from the head */
#define HTTP_QUEUED_MAX		(128ULL * 1024 * 1024)	/* bodies queued in all */
#define HTTP_STREAMS		8		/* event streams of the 16 */
#define HTTP_STREAM_MAX		(256 * 1024)	/* a stream's unsent bytes */
#define HTTP_STREAM_SNDBUF	(64 * 1024)	/* its kernel send buffer */
#define HTTP_KEEPALIVE_S	15.0		/* a comment line, and a stall check */

#define HTTP_CT_OPENMETRICS \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"
#define HTTP_CT_TEXT		"text/plain; version=0.0.4; charset=utf-8"

/* One scrape: its head read, then its answer written; then closed. */
struct http_conn {
	int		 fd;
	ev_io		 rw;		/* the head, until it is whole */
	ev_io		 ww;		/* the answer, once queued */
	ev_timer	 timeout_t;	/* HTTP_READ_S, then HTTP_WRITE_S */
	char		 head[HTTP_HEAD_MAX];
	size_t		 nhead;
	char		 status[1024];	/* the status line and headers */
	size_t		 nstatus;
	char		*body;		/* owned; NULL for HEAD and errors */
	size_t		 nbody;
	size_t		 sent;		/* of status, then body */
	/* A stream (http_stream): out is what waits to be written. */
	int		 stream;
	int		 stalled;	/* out waited a whole keepalive */
	struct buf	 out;
	http_gone_fn	 gone;		/* told when the conn goes */
	void		*gone_arg;
	TAILQ_ENTRY(http_conn) entry;
};

static TAILQ_HEAD(, http_conn) http_conns = TAILQ_HEAD_INITIALIZER(http_conns);
static unsigned http_nconns;
static uint64_t http_queued;		/* body bytes of every conn */
static int http_fd = -1;
static ev_io http_w;
static ev_timer http_retry_t;		/* accept paused at EMFILE */
static http_body_fn http_body;
static http_route_fn http_router;
static unsigned http_nstreams;
struct http_stats http_stats;

static void	http_accept_cb(struct ev_loop *, ev_io *, int);
static void	http_read_cb(struct ev_loop *, ev_io *, int);
static void	http_write_cb(struct ev_loop *, ev_io *, int);
static void	http_timeout_cb(struct ev_loop *, ev_timer *, int);

void
http_init(http_body_fn fn)
{
	http_body = fn;
}

/*
 * Close after reading what already came: unread input would make the
 * close a reset, which may cost the peer the answer it was just sent.
 */
static void
http_drain_close(int fd)
{
	char sink[4096];
	int k;

	shutdown(fd, SHUT_WR);
	for (k = 0; k < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; k++)
		;
	fd_close_watched(fd);
}

void
http_route(http_route_fn fn)
{
	http_router = fn;
}

/* The one teardown path of a conn (its watchers stopped first). */
static void
http_conn_free(struct http_conn *h)
{
	if (h->gone != NULL)
		h->gone(h->gone_arg);	/* a stream's owner lets go of h */
	if (h->stream)
		http_nstreams--;
	buf_free(&h->out);
	ev_io_stop(ward_loop, &h->rw);
	ev_io_stop(ward_loop, &h->ww);
	ev_timer_stop(ward_loop, &h->timeout_t);
	http_drain_close(h->fd);
	http_queued -= h->nbody;
	free(h->body);
	TAILQ_REMOVE(&http_conns, h, entry);
	http_nconns--;
	free(h);
	if (http_fd != -1 && !ev_is_active(&http_w) &&
	    !ev_is_active(&http_retry_t))
		ev_io_start(ward_loop, &http_w);
}

static void
http_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	if (http_fd != -1)
		ev_io_start(loop, &http_w);
}

/* Accept on fd, a listening TCP socket (bound here, or from a re-exec). */
static void
http_listen_fd(int fd)
{
	http_fd = fd;
	ev_io_init(&http_w, http_accept_cb, fd, EV_READ);
	ev_timer_init(&http_retry_t, http_retry_cb, 1., 0.);
	ev_io_start(ward_loop, &http_w);
}

/*
 * ADDR:PORT ("127.0.0.1:9101", "[::1]:9101") as an address: numeric only,
 * so nothing is looked up on the loop; a port from 1 to 65535. A PORT
 * alone is on 127.0.0.1: the page is local unless asked otherwise. The caller
 * frees *ai. -1 with a message in e otherwise.
 */
static int
http_addr(const char *spec, struct addrinfo **ai, struct ward_err *e)
{
	struct addrinfo hints;
	char host[256], *colon;
	const char *port;
	int rc;

	*ai = NULL;
	if (strlen(spec) >= sizeof host)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "--http-listen: too long");
	if (spec[0] != '\0' && strspn(spec, "0123456789") == strlen(spec) &&
	    strlen(spec) < sizeof host - 10)
		snprintf(host, sizeof host, "127.0.0.1:%s", spec);
	else
		strcpy(host, spec);
	if ((colon = strrchr(host, ':')) == NULL || colon == host)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "--http-listen "
		    "'%s': give ADDR:PORT, such as 127.0.0.1:9101", spec);
	*colon = '\0';
	port = colon + 1;
	if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || atoi(port) < 1 || atoi(port) > 65535)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "--http-listen "
		    "'%s': the port must be 1 to 65535", spec);
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, ai)) != 0) {
		*ai = NULL;
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "--http-listen "
		    "'%s': %s (give a numeric address)", spec, gai_strerror(rc));
	}
	return 0;
}

/* Whether spec is an address http_open takes (an option's check). */
int
http_check(const char *spec, struct ward_err *e)
{
	struct addrinfo *ai;

	if (http_addr(spec, &ai, e) == -1)
		return -1;
	freeaddrinfo(ai);
	return 0;
}

/* Listen on spec (http_addr's form); -1 with a message in e otherwise. */
int
http_open(const char *spec, struct ward_err *e)
{
	struct addrinfo *ai;
	int fd, on = 1;

	if (http_addr(spec, &ai, e) == -1)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1) {
		ward_err_errno(e, WARD_E_INTERNAL, "--http-listen %s", spec);
		if (fd != -1)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	http_listen_fd(fd);
	return 0;
}

int
http_listening(void)
{
	return http_fd != -1;
}

/* Stop listening and drop every scrape (wardd exits). */
void
http_close(void)
{
	while (!TAILQ_EMPTY(&http_conns))
		http_conn_free(TAILQ_FIRST(&http_conns));
	if (http_fd == -1)
		return;
	ev_io_stop(ward_loop, &http_w);
	ev_timer_stop(ward_loop, &http_retry_t);
	close(http_fd);
	http_fd = -1;
}

void
http_fds(fd_visit_fn fn, void *arg)
{
	const struct http_conn *h;

	if (http_fd != -1)
		fn(http_fd, "http: metrics listener", arg);
	TAILQ_FOREACH(h, &http_conns, entry)
		fn(h->fd, h->stream ? "http: event stream" : "http: metrics scrape",
		    arg);
}

/* Across a re-exec the listener is carried (scrapes under way are not:
 * their fds close at exec and the scraper retries). */
void
http_save(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	state_pack_kv_fd(pk, "fd", http_fd);
}

void
http_restore(const msgpack_object *m)
{
	int fd;

	if (m != NULL && (fd = state_fd(m, "fd")) != -1)
		http_listen_fd(fd);
}

/*
 * Every slot is taken: the oldest conn still reading its head gives its
 * slot up to the new one. Else anyone who can connect (any local user)
 * would keep scrapes out for good with 16 idle sockets, opened again each
 * time HTTP_READ_S closes them; a real scraper sends its head at once.
 * With none reading, the oldest of all goes: 16 that asked and never read
 * a big answer would hold their slots HTTP_WRITE_S each, as long again.
 */
static void
http_evict(void)
{
	struct http_conn *h;

	TAILQ_FOREACH(h, &http_conns, entry) {
		if (ev_is_active(&h->rw) && !h->stream)
			break;
	}
	if (h == NULL)
		h = TAILQ_FIRST(&http_conns);
	if (h != NULL) {
		http_stats.timeouts++;
		http_conn_free(h);
	}
}

static void
http_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";
	struct http_conn *h;
	int fd, n;

	for (n = 0; n < 16; n++) {
		if ((fd = accept4(http_fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
			    errno == ENOBUFS) {
				/* Pause rather than spin on a full table. */
				ev_io_stop(loop, &http_w);
				ev_timer_set(&http_retry_t, 1., 0.);
				ev_timer_start(loop, &http_retry_t);
			}
			return;
		}
		if (http_nconns >= HTTP_CONNS)
			http_evict();
		if (http_nconns >= HTTP_CONNS ||
		    (h = calloc(1, sizeof *h)) == NULL) {
			http_stats.refused++;
			(void)!send(fd, busy, sizeof busy - 1,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			http_drain_close(fd);
			continue;
		}
		h->fd = fd;
		ev_io_init(&h->rw, http_read_cb, fd, EV_READ);
		ev_io_init(&h->ww, http_write_cb, fd, EV_WRITE);
		ev_timer_init(&h->timeout_t, http_timeout_cb, HTTP_READ_S, 0.);
		ev_io_start(loop, &h->rw);
		ev_timer_start(loop, &h->timeout_t);
		TAILQ_INSERT_TAIL(&http_conns, h, entry);
		http_nconns++;
		http_stats.accepted++;
	}
}

static void
http_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_conn *h = container_of(t, struct http_conn, timeout_t);

	http_stats.timeouts++;
	http_conn_free(h);
}

/* Write what is queued; the conn is freed once all is sent, or on error. */
static void
http_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *h = container_of(w, struct http_conn, ww);
	struct iovec iov[2];
	size_t total = h->nstatus + h->nbody;
	ssize_t n;
	int k = 0;

	while (h->sent < total) {
		k = 0;
		if (h->sent < h->nstatus) {
			iov[k].iov_base = h->status + h->sent;
			iov[k++].iov_len = h->nstatus - h->sent;
		}
		if (h->nbody > 0) {
			size_t off = h->sent > h->nstatus ? h->sent - h->nstatus : 0;

			iov[k].iov_base = h->body + off;
			iov[k++].iov_len = h->nbody - off;
		}
		n = writev(h->fd, iov, k);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(loop, &h->ww);
			return;
		}
		if (n <= 0) {
			http_conn_free(h);
			return;
		}
		h->sent += n;
	}
	http_conn_free(h);
}

/* Queue an answer and start writing it; body (owned) may be NULL. */
void
http_reply(struct http_conn *h, const char *status, const char *ctype,
    const char *extra, char *body, size_t nbody, int head_only)
{
	int n;

	ev_io_stop(ward_loop, &h->rw);
	n = snprintf(h->status, sizeof h->status, "HTTP/1.1 %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n"
	    "\r\n", status, ctype, nbody, extra);
	h->nstatus = n > 0 && (size_t)n < sizeof h->status ? (size_t)n : 0;
	if (head_only) {
		free(body);
		body = NULL;
		nbody = 0;
	}
	h->body = body;
	h->nbody = nbody;
	http_queued += nbody;
	ev_timer_stop(ward_loop, &h->timeout_t);
	ev_timer_set(&h->timeout_t, HTTP_WRITE_S, 0.);
	ev_timer_start(ward_loop, &h->timeout_t);
	http_write_cb(ward_loop, &h->ww, EV_WRITE);	/* h may be freed */
}

/* An error answer: a status and a one-line text body. */
void
http_error(struct http_conn *h, const char *status, const char *extra,
    int head_only)
{
	char *body = str_printf("%s\n", status);

	http_stats.errors++;
	http_reply(h, status, "text/plain; charset=utf-8", extra, body,
	    body != NULL ? strlen(body) : 0, head_only);
}

/* RFC 9110's token characters: what a method and a header name are made of. */
static int
http_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/*
 * Whether the Accept header asks for OpenMetrics, with any weight but 0 (as
 * Prometheus does since 2.5: "application/openmetrics-text;version=1.0.0,
 * application/openmetrics-text;version=0.0.1;q=0.75,text/plain;
 * version=0.0.4;q=0.5,*\/\*;q=0.1"); else the 0.0.4 text format is served.
 */
static int
http_wants_openmetrics(const char *accept)
{
	const char *p = accept, *end, *q;
	double weight;

	while ((p = strcasestr(p, "application/openmetrics-text")) != NULL) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		/* Its q parameter (names are case-insensitive, RFC 9110),
		 * only as a parameter of its own: ";xq=0" is not one. */
		weight = 1;
		for (q = strchr(p, ';'); q != NULL && q < end;
		    q = strchr(q + 1, ';')) {
			for (q++; *q == ' ' || *q == '\t'; q++)
				;
			if (strncasecmp(q, "q=", 2) == 0)
				weight = strtod(q + 2, NULL);
		}
		if (weight > 0)
			return 1;
		p = end;
	}
	return 0;
}

/*
 * The head is whole (NUL-terminated, CRLF or LF lines): judge it and
 * answer. Only the request line and Accept matter; every line must still
 * be well formed.
 */
static void
http_request(struct http_conn *h)
{
	char *line, *next, *method, *target, *version, *colon, *q;
	const char *accept = "", *auth = "";
	struct http_request rq;
	size_t len;
	char *body;
	int head_only, om;

	http_stats.requests++;
	for (line = h->head; *line != '\0'; line++) {
		unsigned char c = *line;

		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) {
			http_error(h, "400 Bad Request", "", 0);
			return;
		}
	}
	line = h->head;
	next = strchr(line, '\n');
	*next++ = '\0';
	line[strcspn(line, "\r")] = '\0';
	method = line;
	if ((target = strchr(method, ' ')) == NULL ||
	    (version = strchr(target + 1, ' ')) == NULL ||
	    strchr(version + 1, ' ') != NULL) {
		http_error(h, "400 Bad Request", "", 0);
		return;
	}
	*target++ = '\0';
	*version++ = '\0';
	for (q = method; *q != '\0' && http_tchar(*q); q++)
		;
	if (*method == '\0' || *q != '\0' || *target == '\0' ||
	    (strcmp(version, "HTTP/1.1") != 0 &&
	    strcmp(version, "HTTP/1.0") != 0)) {
		http_error(h, "400 Bad Request", "", 0);
		return;
	}
	for (line = next; line != NULL && *line != '\0' && *line != '\r';
	    line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		colon = strchr(line, ':');
		for (q = line; q < colon && http_tchar(*q); q++)
			;
		if (colon == NULL || colon == line || q != colon) {
			http_error(h, "400 Bad Request", "", 0);
			return;
		}
		if (colon - line == 6 && strncasecmp(line, "accept", 6) == 0)
			accept = colon + 1;
		if (colon - line == 13 &&
		    strncasecmp(line, "authorization", 13) == 0)
			auth = colon + 1 + strspn(colon + 1, " \t");
	}
	head_only = strcmp(method, "HEAD") == 0;
	if (!head_only && strcmp(method, "GET") != 0) {
		http_error(h, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", 0);
		return;
	}
	if (http_queued >= HTTP_QUEUED_MAX) {
		http_error(h, "503 Service Unavailable", "Retry-After: 1\r\n",
		    head_only);
		return;
	}
	len = strcspn(target, "?");
	if ((len != 8 || strncmp(target, "/metrics", 8) != 0) &&
	    http_router != NULL) {
		rq.query = target[len] == '?' ? target + len + 1 : "";
		target[len] = '\0';
		rq.path = target;
		rq.authorization = auth;
		rq.head_only = head_only;
		http_router(h, &rq);	/* h may be freed */
		return;
	}
	if (len != 8 || strncmp(target, "/metrics", 8) != 0) {
		http_error(h, "404 Not Found", "", head_only);
		return;
	}
	om = http_wants_openmetrics(accept);
	if (http_body == NULL || (body = http_body(om, &len)) == NULL) {
		http_error(h, "500 Internal Server Error", "", head_only);
		return;
	}
	http_stats.scrapes++;
	http_reply(h, "200 OK", om ? HTTP_CT_OPENMETRICS : HTTP_CT_TEXT, "",
	    body, len, head_only);
}

static void
http_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *h = container_of(w, struct http_conn, rw);
	size_t before = h->nhead;
	ssize_t n;
	char *end;

	n = recv(h->fd, h->head + h->nhead, sizeof h->head - 1 - h->nhead, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		http_conn_free(h);
		return;
	}
	h->nhead += n;
	h->head[h->nhead] = '\0';
	if (memchr(h->head + before, '\0', n) != NULL) {
		http_error(h, "400 Bad Request", "", 0);
		return;
	}
	/* The blank line ends the head: CRLF CRLF, or bare LFs. */
	if ((end = strstr(h->head, "\r\n\r\n")) != NULL ||
	    (end = strstr(h->head, "\n\n")) != NULL) {
		end[end[0] == '\r' ? 2 : 1] = '\0';
		http_request(h);
		return;
	}
	if (h->nhead == sizeof h->head - 1)
		http_error(h, "431 Request Header Fields Too Large", "", 0);
}

/* ---- event streams (text/event-stream), for the route function */

/* Write what out holds; the stream is dropped on an error. 0, or -1 if h
 * was freed. */
static int
http_stream_flush(struct http_conn *h)
{
	ssize_t n;

	while (buf_used(&h->out) > 0) {
		n = send(h->fd, h->out.data + h->out.off, buf_used(&h->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(ward_loop, &h->ww);
			return 0;
		}
		if (n <= 0) {
			http_conn_free(h);
			return -1;
		}
		buf_consume(&h->out, n);
		h->stalled = 0;
	}
	ev_io_stop(ward_loop, &h->ww);
	return 0;
}

static void
http_stream_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	http_stream_flush(container_of(w, struct http_conn, ww));
}

/* A stream's peer says nothing more: its input is read and dropped (one
 * buffer per wakeup), and its end ends the stream. */
static void
http_stream_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *h = container_of(w, struct http_conn, rw);
	char sink[512];
	ssize_t n;

	n = recv(h->fd, sink, sizeof sink, MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		http_conn_free(h);
}

/* Every HTTP_KEEPALIVE_S: a stream that could not write for a whole period
 * is stuck (its reader reads nothing) and goes; else a comment line keeps
 * proxies and the peer's idle timers from closing a quiet stream. */
static void
http_stream_keepalive_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_conn *h = container_of(t, struct http_conn, timeout_t);

	if (buf_used(&h->out) > 0 && h->stalled) {
		http_stats.timeouts++;
		http_conn_free(h);
		return;
	}
	h->stalled = buf_used(&h->out) > 0;
	http_stream_send(h, ":\n\n", 3);
}

/*
 * Answer h's request with a stream of server-sent events: gone(arg) is
 * called when it ends (whoever ends it), and nothing may touch h after.
 * -1 when HTTP_STREAMS are open already or on an error: h is answered
 * 503 then (and freed).
 */
int
http_stream(struct http_conn *h, http_gone_fn gone, void *arg)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream; charset=utf-8\r\n"
	    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
	    "Connection: close\r\n\r\n"
	    "retry: 2000\n\n";
	int sndbuf = HTTP_STREAM_SNDBUF;

	if (http_nstreams >= HTTP_STREAMS ||
	    buf_append(&h->out, head, sizeof head - 1) == -1) {
		http_error(h, "503 Service Unavailable", "Retry-After: 2\r\n", 0);
		return -1;
	}
	(void)setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	h->stream = 1;
	http_nstreams++;
	ev_timer_stop(ward_loop, &h->timeout_t);
	ev_set_cb(&h->timeout_t, http_stream_keepalive_cb);
	ev_timer_set(&h->timeout_t, HTTP_KEEPALIVE_S, HTTP_KEEPALIVE_S);
	ev_timer_start(ward_loop, &h->timeout_t);
	ev_set_cb(&h->rw, http_stream_read_cb);
	ev_io_start(ward_loop, &h->rw);
	ev_set_cb(&h->ww, http_stream_write_cb);
	if (http_stream_flush(h) == -1)
		return -1;
	/* The owner is told of an end only once it holds h. */
	h->gone = gone;
	h->gone_arg = arg;
	return 0;
}

/*
 * Queue p[0..n) on stream h and write what the socket takes. -1 when h
 * was dropped (gone was called; h is freed): its reader is more than
 * HTTP_STREAM_MAX behind, or its socket failed. One message bigger than
 * that is taken while nothing else waits (the whole table, first, when
 * there are thousands of instances): a reader is only ever that message
 * or HTTP_STREAM_MAX behind.
 */
int
http_stream_send(struct http_conn *h, const char *p, size_t n)
{
	if ((buf_used(&h->out) > 0 && buf_used(&h->out) + n > HTTP_STREAM_MAX) ||
	    buf_append(&h->out, p, n) == -1) {
		http_stats.timeouts++;
		http_conn_free(h);
		return -1;
	}
	return http_stream_flush(h);
}
