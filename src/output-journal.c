/*
 * output-journal.c: stdout_journal, captured output to the systemd
 * journal, one entry per line (lines over OUTPUT_LINE_MAX are cut into
 * several), tagged with the instance's id, name and stream. wardd talks
 * journald's native protocol on its datagram socket itself rather than
 * through sd_journal_send, so that a journal that falls behind costs
 * dropped lines (counted in the stream's dropped), never a blocked wardd.
 *
 * layer: engine (calls output-spec.c for the stream's name; the socket is
 * the only other thing it touches)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "output.h"

#define OUTPUT_JOURNAL_SOCKET	"/run/systemd/journal/socket"

static int output_journal_fd = -1;	/* one datagram socket for all */

/*
 * One line as one journal entry, in journald's native protocol, sent
 * without waiting: sd_journal_send's socket blocks when journald falls
 * behind, and wardd must not. A line the journal cannot take now is
 * counted in dropped; no journal at all (ENOENT) is not an error.
 */
static void
output_journal_send(struct output_stream *st, const char *line, size_t len)
{
	static struct sockaddr_un sa = {
		.sun_family = AF_UNIX, .sun_path = OUTPUT_JOURNAL_SOCKET
	};
	const struct instance *i = st->out->inst;
	struct iovec iov[4];
	struct msghdr mh;
	char head[512], nl[] = "\n";
	uint64_t le;
	int hlen;

	if (output_journal_fd == -1 && (output_journal_fd = socket(AF_UNIX,
	    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return;
	hlen = snprintf(head, sizeof head, "PRIORITY=%d\nSYSLOG_IDENTIFIER=%s\n"
	    "WARD_INSTANCE_ID=%" PRIu64 "\nWARD_INSTANCE_NAME=%s\n"
	    "WARD_STREAM=%s\nMESSAGE\n", st->which == OUTPUT_STDOUT ? 6 : 3,
	    i->spec.name, i->id, i->spec.name, output_stream_name(st->which));
	/* MESSAGE in the binary form: any bytes but the newline are allowed. */
	le = htole64(len);
	iov[0].iov_base = head;
	iov[0].iov_len = hlen;
	iov[1].iov_base = &le;
	iov[1].iov_len = sizeof le;
	iov[2].iov_base = (void *)(uintptr_t)line;	/* only read */
	iov[2].iov_len = len;
	iov[3].iov_base = nl;
	iov[3].iov_len = 1;
	memset(&mh, 0, sizeof mh);
	mh.msg_name = &sa;
	mh.msg_namelen = sizeof sa;
	mh.msg_iov = iov;
	mh.msg_iovlen = 4;
	if (sendmsg(output_journal_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
		st->dropped++;
}

/* Split kept output into lines for the journal; long lines are cut. */
void
output_journal_lines(struct output_stream *st, const char *p, size_t n)
{
	const char *nl;
	size_t take, c;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		take = nl != NULL ? (size_t)(nl - p) : n;
		if (st->jlen == 0 && nl != NULL && take <= OUTPUT_LINE_MAX) {
			output_journal_send(st, p, take);	/* whole: no copy */
		} else {
			if (st->jline == NULL &&
			    (st->jline = malloc(OUTPUT_LINE_MAX)) == NULL)
				return;
			while (take > 0) {
				if (st->jlen == OUTPUT_LINE_MAX) {
					output_journal_send(st, st->jline, st->jlen);
					st->jlen = 0;
				}
				c = OUTPUT_LINE_MAX - st->jlen;
				c = c < take ? c : take;
				memcpy(st->jline + st->jlen, p, c);
				st->jlen += c;
				p += c;
				n -= c;
				take -= c;
			}
			if (nl == NULL)
				return;
			output_journal_send(st, st->jline, st->jlen);
			st->jlen = 0;
			take = 0;
		}
		p += take + 1;
		n -= take + 1;
	}
}

/* At the stream's EOF: a last partial line is a line too. */
void
output_journal_flush(struct output_stream *st)
{
	if (st->jlen > 0) {
		output_journal_send(st, st->jline, st->jlen);
		st->jlen = 0;
	}
}

/* The one datagram socket to journald, once opened. */
void
output_journal_fds(fd_visit_fn fn, void *arg)
{
	if (output_journal_fd != -1)
		fn(output_journal_fd, "output: journal socket", arg);
}
