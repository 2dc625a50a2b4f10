/*
 * util.c: small helpers every module uses: byte buffers, allocation, clocks,
 * fd flags, small files, and struct ward_err, the error a client reads.
 *
 * layer: base
 */
#include "config.h"

#include <sys/epoll.h>

#include <sys/stat.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ward.h"

/* Append n bytes; -1 with ENOMEM leaves the buffer as it was. */
int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		/* Reclaim consumed space before growing. */
		if (b->off > 0) {
			memmove(b->data, b->data + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		if (b->len + n > b->cap) {
			size_t cap = b->cap ? b->cap : 4096;
			char *d;

			while (cap < b->len + n)
				cap *= 2;
			if ((d = realloc(b->data, cap)) == NULL)
				return -1;
			b->data = d;
			b->cap = cap;
		}
	}
	if (n == 0)
		return 0;	/* p may be NULL (an empty buffer's data) */
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len) {
		b->off = b->len = 0;
		/* Give back large buffers once drained. */
		if (b->cap > 65536) {
			free(b->data);
			b->data = NULL;
			b->cap = 0;
		}
	}
}

size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, k;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t k;

	while (n > 0) {
		if ((k = utf8_seq(p, n)) == 0)
			return 0;
		p += k;
		n -= k;
	}
	return 1;
}

/*
 * A NUL-terminated copy of what a payload wrote, made valid UTF-8 (each bad
 * byte becomes U+FFFD): protocol strings are UTF-8, and a payload's bytes
 * must not break a strict client. NUL bytes become U+FFFD too.
 */
char *
utf8_clean(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out, *o;
	size_t k;

	if ((out = malloc(3 * n + 1)) == NULL)
		return NULL;
	for (o = out; n > 0; p += k, n -= k) {
		k = *p == '\0' ? 0 : utf8_seq(p, n);
		if (k == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			k = 1;
		} else {
			memcpy(o, p, k);
			o += k;
		}
	}
	*o = '\0';
	return out;
}

/* Used at start-up only, where running out of memory is fatal. */
char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n, size)) == NULL)
		fatal("calloc");
	return p;
}

/* A formatted string on the heap, or NULL when memory is out. */
char *
str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* Wall-clock milliseconds, for timestamps shown to people (never for timers). */
int64_t
now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
fd_set_flags(int fd, int nonblock, int cloexec)
{
	int fl;

	if (nonblock) {
		if ((fl = fcntl(fd, F_GETFL)) == -1 ||
		    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
			return -1;
	}
	if (cloexec) {
		if ((fl = fcntl(fd, F_GETFD)) == -1 ||
		    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)
			return -1;
	}
	return 0;
}

/*
 * A small file (/proc, cgroupfs) whole into buf, NUL-terminated, as much as
 * fits; -1 if it cannot be opened or is empty. These files never block.
 */
ssize_t
read_small_file(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - total);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total > 0 ? total : -1;
}

/*
 * text into a small file (cgroupfs: /sys/fs/cgroup/.../memory.max) in one
 * write, as the kernel takes such files: 0, or -1 with errno.
 */
int
write_small_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	n = write(fd, text, len);
	saved = errno;
	close(fd);
	if (n != (ssize_t)len) {
		errno = n == -1 ? saved : EIO;
		return -1;
	}
	return 0;
}

/* Does dir/file, a small list of words (cgroup.controllers), hold word? */
int
small_file_has(const char *dir, const char *file, const char *word)
{
	char path[PATH_MAX], buf[1024], *tok, *save;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path ||
	    read_small_file(path, buf, sizeof buf) == -1)
		return 0;
	for (tok = strtok_r(buf, " \n", &save); tok != NULL;
	    tok = strtok_r(NULL, " \n", &save)) {
		if (strcmp(tok, word) == 0)
			return 1;
	}
	return 0;
}

/*
 * A file of any size (mountinfo, at start) into a growing heap buffer, NUL-
 * terminated and the caller's; at most max bytes of it. NULL if it cannot
 * be opened.
 */
char *
read_whole_file(const char *path, size_t max)
{
	size_t cap = 65536, len = 0;
	char *buf = NULL, *nb;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (len + 1 >= cap || buf == NULL) {
			if (buf != NULL)
				cap *= 2;
			if (cap > max || (nb = realloc(buf, cap)) == NULL)
				break;
			buf = nb;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	if (buf != NULL)
		buf[len] = '\0';
	return buf;
}

/*
 * mkdir -p; existing directories are fine. For root's own paths only (the
 * socket's directory, STATE_DIR itself): statedir.c makes what is below.
 */
int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX], *p;

	if (strlen(path) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(tmp, path);
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* A decimal id alone, below ID_MAX; 0 if s is anything else. */
uint64_t
id_parse(const char *s)
{
	char *end;
	uint64_t v;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v >= ID_MAX)
		return 0;
	return v;
}

/* The id a name wardd gave holds: "ID", "NAME-ID", "SEQ~ID", "SEQ~NAME-ID". */
uint64_t
name_id(const char *name)
{
	const char *p = strrchr(name, '~'), *dash;

	p = p != NULL ? p + 1 : name;
	if ((dash = strrchr(p, '-')) != NULL)
		p = dash + 1;
	return id_parse(p);
}

/* Read the directory name under dirfd, not followed; NULL with errno. */
DIR *
opendir_at(int dirfd, const char *name)
{
	DIR *d;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	return d;
}

/*
 * Fill e with a code and a message and return -1, so a failure path reads
 * `return ward_err_set(e, CODE, ...)`. A NULL code keeps the one already
 * set: a caller rewording a callee's message need not know its code.
 */
static void
ward_err_vset(struct ward_err *e, const char *code, const char *fmt,
    va_list ap)
{
	if (code != NULL)
		e->code = code;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

int
ward_err_set(struct ward_err *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ward_err_vset(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

/* As ward_err_set, with ": " and errno's text appended (errno kept). */
int
ward_err_errno(struct ward_err *e, const char *code, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	ward_err_vset(e, code, fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

/* The one out-of-memory answer a client gets. */
int
ward_err_oom(struct ward_err *e)
{
	return ward_err_set(e, WARD_E_INTERNAL, "out of memory");
}

int	 ward_epoll_fd = -1;	/* libev's epoll set (loop.c finds it) */

/*
 * Close an fd whose ev_io watcher was just stopped. libev removes an fd
 * from its epoll set lazily, at the next loop turn, by which time the fd is
 * closed and the kernel has dropped it on its own, unless the open file
 * is still open elsewhere: in systemd's fd store (fdstore.c), whose copy
 * keeps it in wardd's epoll set. Its events then reach libev for an fd it
 * no longer knows, which libev takes for a fork and answers by rebuilding
 * the whole epoll set. Removed here first, it cannot happen.
 */
void
fd_close_watched(int fd)
{
	if (fd < 0)
		return;
	if (ward_epoll_fd != -1)
		(void)epoll_ctl(ward_epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* Free a NULL-terminated vector of strings (argv, env) and the vector;
 * NULL is fine. */
void
strv_free(char **v)
{
	char **p;

	for (p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}
