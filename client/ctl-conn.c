/*
 * ctl-conn.c: how wardctl talks to wardd, for every command: one
 * connection (kept across the shell's commands), one call with its error
 * reported and turned into an exit status, names and ids packed as wardd
 * wants them, "did you mean" after a name that is not there. Part of the
 * shared core (ctl.h); it calls libward, ctl-output.c and ctl-words.c
 * (wardd's messages in the user's words).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl.h"

/* Connect once; later calls reuse it (the shell keeps it across lines). */
int
ctl_connect(struct ctl *c)
{
	struct ward_error err;

	if (c->w != NULL)
		return 0;
	if ((c->w = ward_connect(c->socket, &err)) == NULL) {
		c->unreachable = 1;
		fprintf(stderr, "wardctl: %s\n", err.message);
		return -1;
	}
	return 0;
}

/* Report a failed call; the exit status it deserves. */
int
ctl_failed(struct ctl *c, const char *what)
{
	const struct ward_error *e = ward_error(c->w);
	int lost = strcmp(e->code, "disconnected") == 0;
	char buf[1024];
	const char *msg = ctl_words_rewrite(e->message, c->words, buf,
	    sizeof buf);

	if (what != NULL)
		fprintf(stderr, "wardctl: %s: %s\n", what, msg);
	else
		fprintf(stderr, "wardctl: %s\n", msg);
	if (lost) {
		ward_close(c->w);
		c->w = NULL;
		c->unreachable = 1;
		return EX_UNREACHABLE;
	}
	return EX_REFUSED;
}

/* All digits: an instance id rather than a name. */
int
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
void
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

void
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

/* The names of v closest to ident, if any, as "did you mean" on stderr. */
void
ctl_suggest_among(const char *ident, const struct ward_status *v, size_t n)
{
	size_t i, shown = 0, limit = strlen(ident) / 3 + 2;

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
}

/* After a not_found for a name: the closest existing names, if any. */
static void
ctl_suggest(struct ctl *c, const char *ident)
{
	struct ward_status *v;
	size_t n;

	if (ctl_is_id(ident) || strcmp(ward_error(c->w)->code, "not_found") != 0)
		return;
	if (ward_instance_list(c->w, NULL, &v, &n) == -1)
		return;
	ctl_suggest_among(ident, v, n);
	ward_status_list_free(v, n);
}

/*
 * One call with params from pk (or none); in --json mode the result is
 * printed. Returns 0 or an exit status (the error already printed).
 */
int
ctl_call(struct ctl *c, const char *method, struct ward_params *p,
    const char *ident, struct ward_reply *keep)
{
	return ctl_call_fds(c, method, p, NULL, 0, ident, keep);
}

/* The same, passing fds with the request (they stay the caller's). */
int
ctl_call_fds(struct ctl *c, const char *method, struct ward_params *p,
    const int *fds, size_t nfds, const char *ident, struct ward_reply *keep)
{
	struct ward_reply r;
	int rc;

	if (ctl_connect(c) == -1) {
		if (p != NULL)
			ward_params_free(p);
		return EX_UNREACHABLE;
	}
	rc = ward_call_fds(c->w, method, p ? p->sbuf.data : NULL,
	    p ? p->sbuf.size : 0, fds, nfds, &r);
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

/*
 * The status of each ident into v (which the caller frees); 0, or an exit
 * status after reporting the failure (v then holds nothing to free).
 */
int
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

/*
 * Whether the connection still stands, without waiting or taking
 * anything from it: wardd's end closed (it restarted or left) shows as
 * EOF or an error; pending notifications are not a loss.
 */
int
ctl_conn_alive(struct ctl *c)
{
	char b;
	ssize_t n;

	if (c->w == NULL)
		return 0;
	n = recv(ward_fd(c->w), &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 1 || (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR));
}
