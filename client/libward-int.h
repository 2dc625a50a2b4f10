/*
 * libward-int.h: what libward's own files share and no program sees, not
 * installed. Each declaration here is hidden (WARD_INTERNAL): they carry
 * the ward_ prefix like the API, but only the functions marked WARD_EXPORT,
 * those of ward.h, are in libward.so's dynamic symbol table. struct ward
 * stays inside libward.c; the other files reach it through ward.h's
 * functions and ward_fail.
 */
#ifndef LIBWARD_INT_H
#define LIBWARD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ward.h"

#define WARD_EXPORT	__attribute__((visibility("default")))
#define WARD_INTERNAL	__attribute__((visibility("hidden")))

/* The most fds one request may pass (SCM_RIGHTS on its first byte). */
#define WARD_MAX_FDS	64

/* ---- libward.c */

int	 ward_fail(struct ward *, const char *, const char *, ...)
	    WARD_INTERNAL __attribute__((format(printf, 3, 4)));
int	 ward_plain_list(struct ward *, int) WARD_INTERNAL;
int	 ward_take_fd(struct ward *) WARD_INTERNAL;
void	 ward_drop_fds(struct ward *) WARD_INTERNAL;

/* ---- libward-decode.c */

void	 ward_copy_str(char *, size_t, const msgpack_object *) WARD_INTERNAL;
char	*ward_dup_str(const msgpack_object *) WARD_INTERNAL;
uint64_t ward_get_u64(const msgpack_object *, const char *) WARD_INTERNAL;
int64_t	 ward_get_i64(const msgpack_object *, const char *) WARD_INTERNAL;
int	 ward_get_bool(const msgpack_object *, const char *) WARD_INTERNAL;
int	 ward_is_event(const msgpack_object *) WARD_INTERNAL;
int	 ward_changes_decode(const msgpack_object *, struct ward_changes *)
	    WARD_INTERNAL;

/* ---- libward-calls.c */

void	 ward_pack_str(msgpack_packer *, const char *) WARD_INTERNAL;
void	 ward_pack_ident(msgpack_packer *, const char *, size_t) WARD_INTERNAL;

#endif /* LIBWARD_INT_H */
