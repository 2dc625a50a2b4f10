/*
 * table.c: an intrusive, chained hash table. The nodes live inside the
 * objects they index (an instance has one node per key), so lookups by id
 * and by name are O(1) and indexing allocates nothing per object.
 *
 * layer: base
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

/* FNV-1a, 64 bit: keys are short (ids, names up to 64 bytes). */
static uint64_t
table_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;

	while (len-- > 0) {
		h ^= *p++;
		h *= 1099511628211ULL;
	}
	return h;
}

void
table_init(struct table *t)
{
	memset(t, 0, sizeof *t);
}

void
table_free(struct table *t)
{
	free(t->buckets);
	memset(t, 0, sizeof *t);
}

static int
table_grow(struct table *t)
{
	struct table_node **nb, *n, *next;
	size_t nn = t->nbuckets ? t->nbuckets * 2 : 64, i;

	if ((nb = calloc(nn, sizeof *nb)) == NULL)
		return -1;
	for (i = 0; i < t->nbuckets; i++) {
		for (n = t->buckets[i]; n != NULL; n = next) {
			next = n->next;
			n->next = nb[n->hash & (nn - 1)];
			nb[n->hash & (nn - 1)] = n;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = nn;
	return 0;
}

/* The key must stay valid (and unchanged) while the node is in the table. */
int
table_insert(struct table *t, struct table_node *n, const void *key, size_t len)
{
	if (t->count + 1 > t->nbuckets && table_grow(t) == -1 &&
	    t->nbuckets == 0)
		return -1;
	n->key = key;
	n->keylen = len;
	n->hash = table_hash(key, len);
	n->next = t->buckets[n->hash & (t->nbuckets - 1)];
	t->buckets[n->hash & (t->nbuckets - 1)] = n;
	t->count++;
	return 0;
}

void
table_remove(struct table *t, struct table_node *n)
{
	struct table_node **pp;

	if (t->nbuckets == 0)
		return;
	for (pp = &t->buckets[n->hash & (t->nbuckets - 1)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->count--;
			return;
		}
	}
}

struct table_node *
table_find(const struct table *t, const void *key, size_t len)
{
	struct table_node *n;
	uint64_t h;

	if (t->nbuckets == 0)
		return NULL;
	h = table_hash(key, len);
	for (n = t->buckets[h & (t->nbuckets - 1)]; n != NULL; n = n->next) {
		if (n->hash == h && n->keylen == len &&
		    memcmp(n->key, key, len) == 0)
			return n;
	}
	return NULL;
}
