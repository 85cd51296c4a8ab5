/* fields: joining an answer head's repeated names (see fields.h). */
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "xalloc.h"

/* A field and where it came in the head. */
struct fields_entry {
	struct exchange_field f;
	size_t idx;
};

static int by_name_then_idx(const void *a, const void *b)
{
	const struct fields_entry *x = a, *y = b;
	size_t n = x->f.name_len < y->f.name_len ? x->f.name_len : y->f.name_len;
	int c = memcmp(x->f.name, y->f.name, n);

	if (c != 0)
		return c;
	if (x->f.name_len != y->f.name_len)
		return x->f.name_len < y->f.name_len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int by_idx(const void *a, const void *b)
{
	const struct fields_entry *x = a, *y = b;

	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int same_name(const struct exchange_field *a, const struct exchange_field *b)
{
	return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

static void reserve(struct fields_joiner *j, size_t n, size_t bytes)
{
	if (n > j->entries_cap) {
		j->entries_cap = n;
		j->entries = xrealloc(j->entries, n * sizeof *j->entries);
		j->fields = xrealloc(j->fields, n * sizeof *j->fields);
	}
	if (bytes > j->joined_cap) {
		j->joined_cap = bytes;
		j->joined = xrealloc(j->joined, bytes);
	}
}

/* One group of same-named entries [from, to) as one field, its values
 * written into joined at *off. */
static struct fields_entry join_group(struct fields_joiner *j, size_t from, size_t to,
                                      size_t *off)
{
	struct fields_entry out = j->entries[from];
	char *start = j->joined + *off;
	size_t i;

	for (i = from; i < to; i++) {
		if (i > from) {
			memcpy(j->joined + *off, ", ", 2);
			*off += 2;
		}
		if (j->entries[i].f.value_len > 0)
			memcpy(j->joined + *off, j->entries[i].f.value, j->entries[i].f.value_len);
		*off += j->entries[i].f.value_len;
	}
	out.f.value = start;
	out.f.value_len = (size_t)(j->joined + *off - start);
	return out;
}

size_t fields_join(struct fields_joiner *j, const char *arena, size_t arena_len,
                   const struct fields_raw *raw, size_t n)
{
	size_t i, k, ngroups = 0, off = 0;

	if (n == 0)
		return 0;
	reserve(j, n, arena_len + 2 * n);
	for (i = 0; i < n; i++) {
		j->entries[i].f = (struct exchange_field){ arena + raw[i].name_off, raw[i].name_len,
		                                           arena + raw[i].value_off, raw[i].value_len };
		j->entries[i].idx = i;
	}
	qsort(j->entries, n, sizeof *j->entries, by_name_then_idx);
	/* groups are written over the entries' own front: a group's slot
	 * index never passes the first entry still to read */
	for (i = 0; i < n; i = k) {
		for (k = i + 1; k < n && same_name(&j->entries[k].f, &j->entries[i].f); k++)
			;
		j->entries[ngroups++] = join_group(j, i, k, &off);
	}
	qsort(j->entries, ngroups, sizeof *j->entries, by_idx);
	for (i = 0; i < ngroups; i++)
		j->fields[i] = j->entries[i].f;
	return ngroups;
}

void fields_joiner_free(struct fields_joiner *j)
{
	free(j->entries);
	free(j->fields);
	free(j->joined);
	memset(j, 0, sizeof *j);
}
