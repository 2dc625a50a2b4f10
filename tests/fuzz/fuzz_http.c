/*
 * fuzz_http.c: what a scraper sends to wardd --metrics-listen, through
 * http.c's real path: a loopback listener opened once by http_open, a
 * client connection per input, http.c's accept, reads, judgement and
 * answer on wardd's loop. The input is a flags byte (bit 0: the client
 * shuts its write side after the last chunk; bit 1: 16 idle scrapes take
 * every slot first), then chunks, each a length
 * byte L and L bytes (L = 0: 1024 bytes of 'a', to reach the head's
 * bound cheaply); the loop runs after each chunk, so each is a read of
 * its own (a split request line, a split CRLF). Invariants:
 * - the answer, if any, is one whole HTTP/1.1 answer: status 200, 400,
 *   404, 405, 431 or 503, a Content-Length its body matches (none for a
 *   HEAD), then the connection closed; with every slot taken by idle
 *   scrapes, the oldest of them is closed for it and it is served as any;
 * - 200 only for GET or HEAD of /metrics (a query allowed) in HTTP/1.0
 *   or 1.1, with the body wardd's body function gave, in the format it
 *   was asked for; 431 only once HTTP_HEAD_MAX bytes came;
 * - no answer only while the head can still come whole: fewer than
 *   8191 bytes, no NUL, no blank line (a closed client gets none);
 * - nothing left: no scrape connection, no fd, no memory (LeakSanitizer).
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FUZZ_HTTP_HEAD	8191		/* http.c's HTTP_HEAD_MAX - 1 */
#define FUZZ_HTTP_SENT	16384		/* what one input may send */
#define FUZZ_HTTP_CONNS	16		/* http.c's HTTP_CONNS */

static struct sockaddr_in fuzz_http_addr;
static int fuzz_http_om = -1;		/* what the body function was asked */
static const char fuzz_http_text[] = "ward_up 1\n";
static const char fuzz_http_omtext[] = "ward_up 1\n# EOF\n";

static char *
fuzz_http_body_cb(int openmetrics, size_t *len)
{
	const char *s = openmetrics ? fuzz_http_omtext : fuzz_http_text;

	fuzz_http_om = openmetrics;
	*len = strlen(s);
	return xstrdup(s);
}

static void
fuzz_http_count_cb(int fd, const char *what, void *arg)
{
	if (strcmp(what, "http: metrics scrape") == 0)
		(*(int *)arg)++;
}

static int
fuzz_http_scrapes(void)
{
	int n = 0;

	http_fds(fuzz_http_count_cb, &n);
	return n;
}

/* Whether the first n bytes of p hold a blank line (what ends a head). */
static int
fuzz_http_blank(const char *p, size_t n)
{
	size_t k;

	for (k = 0; k + 1 < n; k++) {
		if (p[k] == '\n' && p[k + 1] == '\n')
			return 1;
		if (k + 3 < n && memcmp(p + k, "\r\n\r\n", 4) == 0)
			return 1;
	}
	return 0;
}

/* What the answer must be, given the head sent (sent[0..n)) and its code. */
static void
fuzz_http_check(const char *sent, size_t n, const char *ans, size_t nans)
{
	size_t head = n < FUZZ_HTTP_HEAD ? n : FUZZ_HTTP_HEAD;
	const char *cl, *end, *ct, *path;
	unsigned long long clen;
	int code, is_head = 0;

	harness_assert(nans >= 12 && memcmp(ans, "HTTP/1.1 ", 9) == 0,
	    "not an HTTP/1.1 answer (%zu bytes): %.*s", nans, (int)nans, ans);
	code = atoi(ans + 9);
	harness_assert(code == 200 || code == 400 || code == 404 ||
	    code == 405 || code == 431 || code == 503, "answer %d", code);
	end = memmem(ans, nans, "\r\n\r\n", 4);
	harness_assert(end != NULL, "an answer's head without its end");
	end += 4;
	cl = memmem(ans, end - ans, "\r\nContent-Length: ", 18);
	harness_assert(cl != NULL, "an answer without Content-Length");
	clen = strtoull(cl + 18, NULL, 10);
	if (n >= 5 && memcmp(sent, "HEAD ", 5) == 0)
		is_head = 1;
	/* A HEAD judged as one (not a 400 before the method was read). */
	if (is_head && (code == 200 || code == 404 || code == 503))
		harness_assert(ans + nans == end, "a body after a HEAD's answer");
	else
		harness_assert((size_t)(ans + nans - end) == clen, "Content-"
		    "Length %llu, body %zu", clen, (size_t)(ans + nans - end));
	if (code == 431)
		harness_assert(n >= FUZZ_HTTP_HEAD && !fuzz_http_blank(sent,
		    FUZZ_HTTP_HEAD), "431 after %zu bytes", n);
	else
		harness_assert(fuzz_http_blank(sent, head) ||
		    memchr(sent, '\0', head) != NULL, "answer %d to a head not "
		    "whole, without NUL", code);
	if (code != 200) {
		harness_assert(fuzz_http_om == -1, "a body made for a %d", code);
		return;
	}
	path = is_head ? sent + 5 : sent + 4;
	harness_assert((is_head || memcmp(sent, "GET ", 4) == 0) &&
	    strncmp(path, "/metrics", 8) == 0 && (path[8] == ' ' ||
	    path[8] == '?'), "200 to %.*s", (int)(head < 40 ? head : 40), sent);
	harness_assert(fuzz_http_om != -1, "200 without the body function");
	ct = memmem(ans, end - ans, "\r\nContent-Type: application/"
	    "openmetrics-text", 44);
	harness_assert((ct != NULL) == fuzz_http_om, "Content-Type says %s, the "
	    "body is %s", ct ? "OpenMetrics" : "text", fuzz_http_om ? "OpenMetrics"
	    : "text");
	if (!is_head)
		harness_assert(clen == strlen(fuzz_http_om ? fuzz_http_omtext :
		    fuzz_http_text) && memcmp(end, fuzz_http_om ? fuzz_http_omtext :
		    fuzz_http_text, clen) == 0, "not the body given");
}

/*
 * Connect c to the listener. A signal (libFuzzer's timers) may interrupt
 * connect: the connection then goes on, and is waited for.
 */
static int
fuzz_http_connect(int c)
{
	struct pollfd p = { .fd = c, .events = POLLOUT };
	int err;
	socklen_t len = sizeof err;

	if (connect(c, (struct sockaddr *)&fuzz_http_addr,
	    sizeof fuzz_http_addr) == 0)
		return 0;
	if (errno != EINTR)
		return -1;
	while (poll(&p, 1, -1) == -1)
		if (errno != EINTR)
			return -1;
	if (getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

/* A connection to the listener (socket, connect), or abort. */
static int
fuzz_http_client(void)
{
	int c, on = 1;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	harness_assert(c != -1, "socket: %s", strerror(errno));
	/* Each chunk a segment of its own, sent at once. */
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	harness_assert(fuzz_http_connect(c) == 0, "connect: %s",
	    strerror(errno));
	fcntl(c, F_SETFL, O_NONBLOCK);
	return c;
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ward_err e = WARD_ERR_INIT;
	char spec[64];
	int port;

	harness_init();
	http_init(fuzz_http_body_cb);
	/* A free port: other runs may hold some. */
	for (port = 20000 + getpid() % 20000; port < 65536; port++) {
		snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
		if (http_open(spec, &e) == 0)
			break;
	}
	harness_assert(http_listening(), "no loopback port to listen on");
	fuzz_http_addr.sin_family = AF_INET;
	fuzz_http_addr.sin_port = htons(port);
	fuzz_http_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char sent[FUZZ_HTTP_SENT], ans[4096];
	size_t n = 0, nans = 0, at, len;
	int fds, c, shut, busy, eof = 0, turn, k, idle[FUZZ_HTTP_CONNS];
	char byte;
	ssize_t r;

	if (size < 1)
		return 0;
	shut = data[0] & 1;
	fds = harness_count_fds();
	busy = data[0] & 2;
	for (k = 0; busy && k < FUZZ_HTTP_CONNS; k++)
		idle[k] = fuzz_http_client();
	if (busy)
		ev_run(ward_loop, EVRUN_NOWAIT);	/* their accepts */
	harness_assert(!busy || fuzz_http_scrapes() == FUZZ_HTTP_CONNS,
	    "%d idle scrapes of %d", fuzz_http_scrapes(), FUZZ_HTTP_CONNS);
	c = fuzz_http_client();
	fuzz_http_om = -1;
	for (at = 1; at < size && n < sizeof sent; ) {
		len = data[at++];
		if (len == 0) {
			len = sizeof sent - n < 1024 ? sizeof sent - n : 1024;
			memset(sent + n, 'a', len);
		} else {
			if (len > size - at)
				len = size - at;
			if (len > sizeof sent - n)
				len = sizeof sent - n;
			memcpy(sent + n, data + at, len);
			at += len;
		}
		/* What the server no longer reads may not fit: send what does. */
		r = send(c, sent + n, len, MSG_NOSIGNAL);
		if (r <= 0)
			break;
		n += r;
		ev_run(ward_loop, EVRUN_NOWAIT);
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	if (shut)
		shutdown(c, SHUT_WR);
	/* Whatever came: the answer, then the close (bounded turns). */
	for (turn = 0; turn < 64 && !eof; turn++) {
		ev_run(ward_loop, EVRUN_NOWAIT);
		while ((r = recv(c, ans + nans, sizeof ans - nans, 0)) > 0)
			nans += r;
		if (r == 0)
			eof = 1;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			eof = 1;	/* a reset: the answer was read first */
		if (!eof && nans == 0 && !shut && turn >= 2)
			break;		/* waiting for more of the head */
	}
	if (busy) {
		/* The oldest idle scrape gave its slot up: closed, unanswered. */
		harness_assert(recv(idle[0], &byte, 1, 0) == 0, "the oldest idle "
		    "scrape was not the one closed");
		for (k = 1; k < FUZZ_HTTP_CONNS; k++)
			harness_assert(recv(idle[k], &byte, 1, 0) == -1 &&
			    errno == EAGAIN, "idle scrape %d closed", k);
		for (k = 0; k < FUZZ_HTTP_CONNS; k++)
			close(idle[k]);
	}
	if (nans > 0) {
		harness_assert(eof, "an answer without the close after it");
		fuzz_http_check(sent, n, ans, nans);
	} else if (!shut) {
		harness_assert(n < FUZZ_HTTP_HEAD && memchr(sent, '\0', n) == NULL &&
		    !fuzz_http_blank(sent, n), "no answer to %zu bytes", n);
	}
	close(c);
	for (turn = 0; turn < 64 && fuzz_http_scrapes() > 0; turn++)
		ev_run(ward_loop, EVRUN_NOWAIT);
	harness_assert(fuzz_http_scrapes() == 0, "a scrape left open");
	harness_check_fds(fds);
	return 0;
}
