/*
 * logring.c: the last 64 KiB of wardd's own log, as its lines were
 * written, for ward.maintail (supervisorctl's maintail: the daemon's log
 * without a file to find). log.c hands it each line it writes. It is
 * memory only: a re-exec or a restart starts it empty (the log's own
 * target, stderr or the journal, keeps everything).
 *
 * layer: base (calls nothing; log.c calls it)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

#define LOGRING_SIZE	65536

static char	logring[LOGRING_SIZE];
static size_t	logring_start, logring_len;
static uint64_t	logring_total;		/* bytes ever added: maintail -f's
					   cursor */

static void
logring_put(const char *p, size_t n)
{
	size_t at, k;

	logring_total += n;
	if (n >= LOGRING_SIZE) {
		p += n - LOGRING_SIZE;
		n = LOGRING_SIZE;
	}
	if (logring_len + n > LOGRING_SIZE) {
		k = logring_len + n - LOGRING_SIZE;
		logring_start = (logring_start + k) % LOGRING_SIZE;
		logring_len -= k;
	}
	at = (logring_start + logring_len) % LOGRING_SIZE;
	k = LOGRING_SIZE - at < n ? LOGRING_SIZE - at : n;
	memcpy(logring + at, p, k);
	memcpy(logring, p + k, n - k);
	logring_len += n;
}

/* One line as log.c wrote it ("<LEVEL>message"), without its newline. */
void
logring_add(const char *line)
{
	logring_put(line, strlen(line));
	logring_put("\n", 1);
}

/*
 * The last max bytes (from a line's start when the cut falls inside one),
 * or with since (a cursor: *end of an earlier call, 0 for none) what came
 * after it that the ring still holds. NUL-terminated, for the caller to
 * free; NULL without memory. *end: the cursor for the next call.
 */
char *
logring_tail(size_t max, uint64_t since, uint64_t *end)
{
	size_t n = logring_len < max ? logring_len : max, from, first, skip = 0;
	char *out;

	*end = logring_total;
	if (since > logring_total)	/* a cursor of an earlier wardd */
		since = logring_total;
	if (since > 0 && logring_total - since < n)
		n = logring_total - since;

	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	from = (logring_start + logring_len - n) % LOGRING_SIZE;
	first = LOGRING_SIZE - from < n ? LOGRING_SIZE - from : n;
	memcpy(out, logring + from, first);
	memcpy(out + first, logring, n - first);
	out[n] = '\0';
	if (since == 0 && n < logring_len) {	/* cut: at the next line */
		char *nl = memchr(out, '\n', n);

		skip = nl != NULL ? (size_t)(nl - out) + 1 : n;
		memmove(out, out + skip, n - skip + 1);
	}
	return out;
}
