/*
 * libward-compat.c: the calls behind supervisorctl's clear and maintail:
 * instance.clear_log and ward.maintail. Part of libward; calls
 * libward.c's core and libward-decode.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libward-int.h"
#include "ward-proto.h"

static int
ward_compat_call(struct ward *w, const char *method, struct ward_params *p,
    struct ward_reply *r)
{
	int rc = ward_call(w, method, p->sbuf.data, p->sbuf.size, r);

	ward_params_free(p);
	if (rc == -1)
		ward_reply_free(r);
	return rc;
}

WARD_EXPORT int
ward_instance_clear_log(struct ward *w, const char *ident)
{
	struct ward_params p;
	struct ward_reply r;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 0);
	if (ward_compat_call(w, WARD_M_CLEAR_LOG, &p, &r) == -1)
		return -1;
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_maintail(struct ward *w, size_t bytes, uint64_t since, char **data,
    uint64_t *end)
{
	struct ward_params p;
	struct ward_reply r;

	*data = NULL;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, (bytes > 0) + (since > 0));
	if (bytes > 0) {
		ward_pack_str(&p.pk, "bytes");
		msgpack_pack_uint64(&p.pk, bytes);
	}
	if (since > 0) {
		ward_pack_str(&p.pk, "since");
		msgpack_pack_uint64(&p.pk, since);
	}
	if (ward_compat_call(w, WARD_M_MAINTAIL, &p, &r) == -1)
		return -1;
	*data = ward_dup_str(ward_map_get(&r.result, "data"));
	if (end != NULL)
		*end = ward_get_u64(&r.result, "end");
	ward_reply_free(&r);
	if (*data == NULL && (*data = strdup("")) == NULL)
		return ward_fail(w, "internal", "out of memory");
	return 0;
}
