/*
 * log.c: wardd's own log. Lines go to stderr with sd-daemon "<N>" level
 * prefixes, which journald turns into priorities when stderr is its stream.
 * log_warn appends strerror(errno); log_warnx does not; fatal exits.
 *
 * layer: base
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "ward.h"

static int log_level = LOG_LVL_INFO;
static int log_journal;		/* send to the journal, not stderr */

static const char *const log_level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARNING] = "warning",
	[LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void
log_init(int level)
{
	log_level = level;
}

/* Whether lines go to the journal (deaths are then structured entries). */
int
log_to_journal(void)
{
	return log_journal;
}

void
log_set_level(int level)
{
	log_level = level;
}

/*
 * Under systemd, JOURNAL_STREAM names the journal's stream by dev:ino;
 * when it is our stderr, log to the journal directly (with priorities and
 * fields) rather than through the stream.
 */
int
log_set_target(enum log_target t)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (t == LOG_TARGET_AUTO)
		log_journal = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
		    fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
	else
		log_journal = t == LOG_TARGET_JOURNAL;
	return log_journal;
}

/* A level by name ("debug") or number ("7"); -1 when neither. */
int
log_level_parse(const char *s)
{
	int i;

	for (i = LOG_LVL_ERR; i <= LOG_LVL_DEBUG; i++) {
		if (strcmp(s, log_level_names[i]) == 0)
			return i;
	}
	if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	if (strcmp(s, "warn") == 0)
		return LOG_LVL_WARNING;
	return -1;
}

/* Each line as stderr gets it, for ward.maintail (logring.c). */
static void
log_keep(int level, const char *msg, const char *err)
{
	char line[2300];

	snprintf(line, sizeof line, err ? "<%d>%s: %s" : "<%d>%s", level, msg,
	    err);
	logring_add(line);
}

static void
log_vwrite(int level, const char *fmt, va_list ap, int with_errno)
{
	char msg[2048];
	int saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	log_keep(level, msg, with_errno ? strerror(saved) : NULL);
	if (log_journal) {
		if (with_errno)
			sd_journal_send("MESSAGE=%s: %s", msg, strerror(saved),
			    "PRIORITY=%d", level, "ERRNO=%d", saved,
			    "SYSLOG_IDENTIFIER=wardd", NULL);
		else
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
			    "SYSLOG_IDENTIFIER=wardd", NULL);
	} else if (with_errno)
		fprintf(stderr, "<%d>%s: %s\n", level, msg, strerror(saved));
	else
		fprintf(stderr, "<%d>%s\n", level, msg);
	errno = saved;
}

#define LOG_FN(fn, level, with_errno)			\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	log_vwrite(level, fmt, ap, with_errno);		\
	va_end(ap);					\
}

LOG_FN(log_warn, LOG_LVL_WARNING, 1)
LOG_FN(log_warnx, LOG_LVL_WARNING, 0)
LOG_FN(log_notice, LOG_LVL_NOTICE, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap, 0);
	va_end(ap);
	exit(1);
}
