/*
 * ctl-words.c: wardd's error messages in the words the user typed.
 * wardd names the protocol keys it checked ("'hangup_timeout_ms' must be
 * 1 to 604800000"); someone who typed --hangup-timeout should read
 * "--hangup-timeout: must be 1 to 604800000". A command that sent keys
 * from flags lists them (struct ctl_word: key and the flag as typed) in
 * c->words for its call; keys other commands send are in the table
 * below. Only quoted keys ('KEY', or 'KEY.SUB' for a map's entry) are
 * rewritten, so a key's name in free text stays as it is. Part of the
 * shared core (ctl.h): ctl_failed in ctl-conn.c calls it; it calls
 * nothing but libc.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* Keys the other commands send, and the flag (or word) that gave them. */
static const struct ctl_word ctl_words_std[] = {
	{ "timeout_ms", "--timeout" },		/* stop, restart */
	{ "kill_instances", "--leave-running" },	/* shutdown */
	{ "limit", "-n" },			/* history */
	{ "bytes", "-n" },			/* tail */
	{ "exe", "--exe" },			/* reexec */
	{ "state", "STATE" },			/* payload */
	{ NULL, NULL }
};

/* The flag for key (len bytes) in list, or NULL. */
static const char *
ctl_words_find(const struct ctl_word *list, const char *key, size_t len)
{
	for (; list != NULL && list->key != NULL; list++) {
		if (strlen(list->key) == len && memcmp(list->key, key, len) == 0)
			return list->flag;
	}
	return NULL;
}

/*
 * msg with each quoted key of sent (or of the table) replaced by its
 * flag; a message that opens with one reads "FLAG: the rest". Into out,
 * which is returned (msg itself when nothing matched or out is short).
 */
const char *
ctl_words_rewrite(const char *msg, const struct ctl_word *sent, char *out,
    size_t len)
{
	const char *r = msg, *first = msg, *q, *end, *flag;
	size_t o = 0, klen, n;
	int changed = 0;

	/* "memory_max needs the cgroup memory controller": bare, first */
	klen = strcspn(msg, " :'.");
	if ((msg[klen] == ' ' || msg[klen] == ':') &&
	    ((flag = ctl_words_find(sent, msg, klen)) != NULL ||
	    (flag = ctl_words_find(ctl_words_std, msg, klen)) != NULL) &&
	    strlen(flag) < len) {
		o = (size_t)snprintf(out, len, "%s", flag);
		r = msg + klen;
		changed = 1;
		first = NULL;	/* a quoted key after it is not the first */
	}
	while ((q = strchr(r, '\'')) != NULL &&
	    (end = strchr(q + 1, '\'')) != NULL) {
		klen = strcspn(q + 1, ".'");
		if ((flag = ctl_words_find(sent, q + 1, klen)) == NULL)
			flag = ctl_words_find(ctl_words_std, q + 1, klen);
		if (flag == NULL) {
			n = (size_t)(end - r) + 1;	/* as it is, quotes and all */
			if (o + n >= len)
				return msg;
			memcpy(out + o, r, n);
			o += n;
			r = end + 1;
			continue;
		}
		n = (size_t)(q - r);
		if (o + n >= len)
			return msg;
		memcpy(out + o, r, n);
		o += n;
		/* 'rlimits.nofile' -> "--rlimit nofile" */
		n = (size_t)snprintf(out + o, len - o, "%s%s%.*s", flag,
		    q[1 + klen] == '.' ? " " : "",
		    q[1 + klen] == '.' ? (int)(end - q - klen - 2) : 0,
		    q + klen + 2);
		if (o + n >= len)
			return msg;
		o += n;
		r = end + 1;
		if (q == first && *r == ' ') {	/* "'key' must" -> "flag: must" */
			if (o + 1 >= len)
				return msg;
			out[o++] = ':';
		}
		changed = 1;
	}
	if (!changed || o + strlen(r) >= len)
		return msg;
	strcpy(out + o, r);
	return out;
}
