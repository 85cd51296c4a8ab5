/* jsonscan: one cheap pass over a batch body before jansson builds its
 * tree.  It counts the elements of the batch and estimates what the tree
 * would cost, so that a batch that is too long or too expensive is refused
 * before anything is allocated for it, and it remembers where each number
 * token starts, so that numbers reach the upstream and the answer spelled
 * as the client wrote them (jsonscan_dump writes them back).  The scan
 * borrows the body; the caller owns the struct and frees what it holds
 * with jsonscan_free(). */
#ifndef FANOUTD_JSONSCAN_H
#define FANOUTD_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct jsonscan_pair;

struct jsonscan {
	const char *data;       /* the body (borrowed) */
	size_t len;
	char root;              /* '[' or '{' when the root is a container */
	bool batch_found;       /* the root is an array, or an object whose
	                         * "requests" is an array */
	size_t batch_len;       /* elements of that array */
	size_t values;          /* JSON values seen (keys not counted) */
	size_t cost;            /* estimated bytes of the jansson tree */
	bool too_deep;          /* nesting passed jansson's limit: the scan
	                         * stopped there, as jansson will */
	size_t *numbers;        /* offset of each number token, in document
	                         * order (owned); dropped once cost > budget */
	size_t nnumbers;
	struct jsonscan_pair *pairs;  /* number node -> offset, by node (owned) */
	size_t npairs;
};

/* Scan len bytes of data.  Counting goes on to the end (the batch length
 * must be exact for its message), but number offsets are kept only while
 * the cost stays within budget, so the scan itself never costs more than a
 * fraction of the budget.  Never fails; bytes that are not JSON are left
 * for jansson to report. */
void jsonscan_run(struct jsonscan *s, const char *data, size_t len, size_t budget);

/* After jansson parsed the same bytes into root (with duplicate keys
 * refused, so the tree's document order is the text's): pair each number
 * node with its token.  If they do not match up, no pairs are kept and
 * jsonscan_number_text() returns NULL for every node. */
void jsonscan_pair(struct jsonscan *s, const json_t *root);

/* The client's text of number node v (*len bytes, not NUL-terminated),
 * or NULL when it is not known. */
const char *jsonscan_number_text(const struct jsonscan *s, const json_t *v, size_t *len);

/* Compact JSON text of v (malloc'd, NUL-terminated; *len without the
 * NUL), each number as the client spelled it where scan knows it (scan
 * may be NULL), else in the shortest form that reads back the same. */
char *jsonscan_dump(const json_t *v, const struct jsonscan *scan, size_t *len);

void jsonscan_free(struct jsonscan *s);

#endif
