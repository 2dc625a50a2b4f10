/*
 * json.h: the one JSON emitter of ward, shared by wardctl (--json, call)
 * and wardd (the status page's rows and events): a msgpack object written
 * as JSON through a write function, so each side keeps its own sink
 * (stdio for wardctl, a growing buffer for wardd).
 */
#ifndef WARD_JSON_H
#define WARD_JSON_H

#include <stddef.h>
#include <msgpack.h>

/* msgpack_packer's write signature: a packer's sink serves as well. */
typedef int (*json_write_fn)(void *arg, const char *p, size_t n);

size_t	 json_utf8_len(const unsigned char *, size_t);
void	 json_str(const char *, size_t, json_write_fn, void *);
void	 json_value(const msgpack_object *, json_write_fn, void *);
int	 json_stdio_write(void *, const char *, size_t);

#endif
