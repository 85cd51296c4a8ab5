/* fanout_answer: the lines of the answer, by kind (a request's entry, a
 * progress line, the last line), and the outputs made from them.  ndjson
 * and body go through an orderer (fanout_order) and out as soon as the
 * input order allows; json keeps every entry until the end and builds the
 * answer a buffered batch gets, in the same shape. */
#include "fanout_answer.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fanout_input.h"
#include "fanout_order.h"
#include "fanout_scan.h"

/* How an entry is written when it did not come as a line of its own: the
 * daemon's numbers keep their short form (0.3, not 0.29999999999999999). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

struct fanout_answer {
	const json_t *batch;       /* borrowed: the URLs and ids of the requests */
	enum fanout_output output;
	FILE *out;
	size_t total;
	size_t done, failed;       /* entries seen; of those, failures */
	size_t progress_done;      /* the daemon's latest progress "done" */
	unsigned char *seen;       /* a byte per index: an entry came */
	struct fanout_order *order;  /* ndjson and body */
	json_t **entries;          /* json: each index's entry */
	json_t *last;              /* the last line, once it came */
	bool finished;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

struct fanout_answer *fanout_answer_create(const json_t *batch, enum fanout_output output,
                                           FILE *out)
{
	struct fanout_answer *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->batch = batch;
	a->output = output;
	a->out = out;
	a->total = fanout_input_count(batch);
	a->seen = calloc(a->total ? a->total : 1, 1);
	if (output == FANOUT_OUTPUT_JSON)
		a->entries = calloc(a->total ? a->total : 1, sizeof *a->entries);
	else
		a->order = fanout_order_create(a->total);
	if (a->seen == NULL || (a->entries == NULL && a->order == NULL)) {
		fanout_answer_destroy(a);
		return NULL;
	}
	return a;
}

void fanout_answer_destroy(struct fanout_answer *a)
{
	size_t i;

	if (a == NULL)
		return;
	if (a->entries != NULL)
		for (i = 0; i < a->total; i++)
			json_decref(a->entries[i]);
	free(a->entries);
	fanout_order_destroy(a->order);
	free(a->seen);
	json_decref(a->last);
	free(a);
}

bool fanout_answer_is_failure(const json_t *entry)
{
	return json_object_get(entry, "type") != NULL || json_object_get(entry, "error") != NULL;
}

/* --- output ----------------------------------------------------------- */

/* Writes every line the order allows now. */
static void drain(struct fanout_answer *a)
{
	const char *line;
	size_t len;

	while ((line = fanout_order_next(a->order, &len)) != NULL) {
		fwrite(line, 1, len, a->out);
		putc('\n', a->out);
	}
}

/* The body of an entry as body output prints it: text and base64 as the
 * string, JSON compact; the empty string when it has none.  A new string
 * in *text (free it), or NULL when out of memory. */
static char *value_text(const json_t *body, bool is_json, size_t *len)
{
	char *s;

	if (body == NULL || json_is_null(body)) {
		*len = 0;
		return strdup("");
	}
	if (json_is_string(body) && !is_json) {
		*len = json_string_length(body);
		s = malloc(*len + 1);
		if (s != NULL)
			memcpy(s, json_string_value(body), *len + 1);
		return s;
	}
	s = json_dumps(body, DUMP_FLAGS | JSON_ENCODE_ANY);
	*len = s ? strlen(s) : 0;
	return s;
}

static char *body_text(const json_t *entry, size_t *len)
{
	const json_t *body = json_object_get(entry, "body"), *err;
	const char *enc = json_string_value(json_object_get(entry, "encoding"));

	if (body == NULL && json_is_object(err = json_object_get(entry, "error"))) {
		body = json_object_get(err, "body");
		enc = json_string_value(json_object_get(err, "encoding"));
	}
	return value_text(body, enc != NULL && strcmp(enc, "json") == 0, len);
}

/* Entry i out to the orderer: raw is the line as it came (NULL: dump the
 * entry). */
static int order_entry(struct fanout_answer *a, size_t i, json_t *entry, const char *raw,
                       size_t rawlen, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = rawlen;
	int rc;

	if (a->output == FANOUT_OUTPUT_BODY)
		raw = text = body_text(entry, &len);
	else if (raw == NULL) {
		raw = text = json_dumps(entry, DUMP_FLAGS);
		len = text ? strlen(text) : 0;
	}
	if (raw == NULL)
		return fail(err, errlen, "out of memory");
	rc = fanout_order_put(a->order, i, raw, len);
	free(text);
	if (rc != 0)
		return fail(err, errlen, "out of memory");
	drain(a);
	return 0;
}

/* A request's entry (a new reference taken over), from a line (raw) or a
 * buffered answer (raw NULL). */
static int on_entry(struct fanout_answer *a, json_t *entry, const char *raw, size_t rawlen,
                    char *err, size_t errlen)
{
	json_int_t index = json_integer_value(json_object_get(entry, "index"));
	int rc = 0;

	if (!json_is_integer(json_object_get(entry, "index")) || index < 0 ||
	    (size_t)index >= a->total || a->seen[index]) {
		json_decref(entry);
		return fail(err, errlen, "an entry with a bad or repeated index");
	}
	a->seen[index] = 1;
	a->done++;
	if (fanout_answer_is_failure(entry))
		a->failed++;
	if (a->output == FANOUT_OUTPUT_JSON)
		a->entries[index] = json_incref(entry);
	else
		rc = order_entry(a, (size_t)index, entry, raw, rawlen, err, errlen);
	json_decref(entry);
	return rc;
}

/* {"index": i, "id"?, "url": …} for a request with no entry of its own. */
static json_t *stand_in(const struct fanout_answer *a, size_t i)
{
	const json_t *id = fanout_input_id(a->batch, i);
	const char *url = fanout_input_url(a->batch, i);
	json_t *e = json_pack("{s:I}", "index", (json_int_t)i);

	if (e == NULL)
		return NULL;
	if (id != NULL)
		json_object_set(e, "id", (json_t *)id);
	json_object_set_new(e, "url", url ? json_string(url) : json_null());
	return e;
}

/* --- lines ------------------------------------------------------------ */

/* The body of a scanned success as body output prints it (as
 * body_text() would); a new string, or NULL when the span does not parse
 * (or out of memory). */
static char *scanned_body(const struct fanout_scan *sc, size_t *len)
{
	bool is_json = fanout_scan_is(sc->encoding, sc->encoding_len, "json");
	json_t *v;
	char *text;

	if (sc->body != NULL && sc->body[0] == '"' && !is_json &&
	    memchr(sc->body, '\\', sc->body_len) == NULL) {
		/* base64, or text with nothing escaped: the string's bytes */
		*len = sc->body_len - 2;
		text = malloc(*len + 1);
		if (text != NULL) {
			memcpy(text, sc->body + 1, *len);
			text[*len] = '\0';
		}
		return text;
	}
	if (sc->body == NULL)
		return value_text(NULL, false, len);
	v = json_loadb(sc->body, sc->body_len, JSON_DECODE_ANY, NULL);
	if (v == NULL)
		return NULL;
	text = value_text(v, is_json, len);
	json_decref(v);
	return text;
}

/* A request's line, looked at by fanout_scan only: 1 when it was taken
 * (0 when the caller must parse it), -1 on a bad index. */
static int on_scanned(struct fanout_answer *a, const char *line, size_t len, char *err,
                      size_t errlen)
{
	struct fanout_scan sc;
	char *body = NULL;
	size_t blen = 0;
	int rc;

	if (a->output == FANOUT_OUTPUT_JSON || fanout_scan_line(line, len, &sc) != 0 ||
	    !sc.has_index || sc.other || (sc.failure && a->output == FANOUT_OUTPUT_BODY))
		return 0;
	if (sc.index < 0 || (unsigned long long)sc.index >= a->total || a->seen[sc.index])
		return fail(err, errlen, "an entry with a bad or repeated index");
	if (a->output == FANOUT_OUTPUT_BODY && (body = scanned_body(&sc, &blen)) == NULL)
		return 0;
	a->seen[sc.index] = 1;
	a->done++;
	if (sc.failure)
		a->failed++;
	rc = body ? fanout_order_put(a->order, (size_t)sc.index, body, blen)
	          : fanout_order_put(a->order, (size_t)sc.index, line, len);
	free(body);
	if (rc != 0)
		return fail(err, errlen, "out of memory");
	drain(a);
	return 1;
}

int fanout_answer_line(struct fanout_answer *a, const char *line, size_t len, char *err,
                       size_t errlen)
{
	json_error_t je;
	json_t *v, *p;
	int rc;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	rc = on_scanned(a, line, len, err, errlen);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	v = json_loadb(line, len, 0, &je);
	if (!json_is_object(v)) {
		json_decref(v);
		return fail(err, errlen, "a line of the answer is not a JSON object");
	}
	if (json_object_get(v, "index") != NULL)
		return on_entry(a, v, line, len, err, errlen);
	if (json_is_object(p = json_object_get(v, "progress"))) {
		json_int_t d = json_integer_value(json_object_get(p, "done"));

		if (d > 0 && (size_t)d > a->progress_done)
			a->progress_done = (size_t)d;
	} else if (json_is_true(json_object_get(v, "done")) && a->last == NULL) {
		a->last = json_incref(v);
	}
	json_decref(v);
	return 0;
}

/* An error group's "completed" requests, which it gives no entry. */
static int completed_stand_ins(struct fanout_answer *a, const json_t *completed, char *err,
                               size_t errlen)
{
	json_t *v, *e;
	json_int_t i;
	size_t k;

	json_array_foreach(completed, k, v) {
		i = json_integer_value(v);
		if (!json_is_integer(v) || i < 0 || (size_t)i >= a->total || a->seen[i])
			continue;
		e = stand_in(a, (size_t)i);
		if (e == NULL || json_object_set_new(e, "completed", json_true()) != 0) {
			json_decref(e);
			return fail(err, errlen, "out of memory");
		}
		if (on_entry(a, e, NULL, 0, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* The last line a stream would have ended with, from a buffered answer. */
static json_t *last_of(const json_t *answer)
{
	static const char *const keys[] = { "ok", "elapsed_ms", "error", "message",
	                                    "completed", "cancelled" };
	json_t *last = json_pack("{s:b}", "done", 1), *v;
	size_t k;

	if (last == NULL)
		return NULL;
	for (k = 0; k < sizeof keys / sizeof *keys; k++)
		if ((v = json_object_get(answer, keys[k])) != NULL)
			json_object_set(last, keys[k], v);
	return last;
}

int fanout_answer_buffered(struct fanout_answer *a, const char *body, size_t len,
                           char *err, size_t errlen)
{
	static const char *const lists[] = { "results", "errors" };
	json_error_t je;
	json_t *answer = json_loadb(body, len, 0, &je), *list, *e;
	size_t k, i;
	int rc = 0;

	if (!json_is_object(answer) || !json_is_boolean(json_object_get(answer, "ok"))) {
		json_decref(answer);
		return fail(err, errlen, "the answer is not a batch answer");
	}
	for (k = 0; k < 2 && rc == 0; k++) {
		list = json_object_get(answer, lists[k]);
		json_array_foreach(list, i, e) {
			rc = on_entry(a, json_incref(e), NULL, 0, err, errlen);
			if (rc != 0)
				break;
		}
	}
	if (rc == 0)
		rc = completed_stand_ins(a, json_object_get(answer, "completed"), err, errlen);
	if (rc == 0 && a->last == NULL && (a->last = last_of(answer)) == NULL)
		rc = fail(err, errlen, "out of memory");
	json_decref(answer);
	return rc;
}

/* --- the end ---------------------------------------------------------- */

static json_t *cancelled_entry(const struct fanout_answer *a, size_t i)
{
	json_t *e = stand_in(a, i);

	if (e != NULL && json_object_set_new(e, "error", json_pack("{s:s,s:s}", "type",
	                                     "cancelled", "message", "cancelled")) != 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

/* The answer of SPEC section 4 from the entries: results in input order,
 * or (mode all, not ok) the error group. */
static json_t *whole_answer(const struct fanout_answer *a, bool ok)
{
	const json_t *elapsed = json_object_get(a->last, "elapsed_ms");
	const char *error = json_string_value(json_object_get(a->last, "error"));
	const char *message = json_string_value(json_object_get(a->last, "message"));
	bool group = !ok && !fanout_input_settled(a->batch);
	json_t *answer, *list = json_array(), *completed = json_array(),
	       *cancelled = json_array();
	char buf[160];
	size_t i;

	for (i = 0; i < a->total; i++) {
		json_t *e = a->entries[i];

		if (!group)
			json_array_append(list, e);
		else if (!a->seen[i] || json_is_true(json_object_get(e, "completed")))
			json_array_append_new(a->seen[i] ? completed : cancelled, json_integer((json_int_t)i));
		else if (fanout_answer_is_failure(e))
			json_array_append(list, e);
		else
			json_array_append_new(completed, json_integer((json_int_t)i));
	}
	answer = json_pack("{s:b}", "ok", ok);
	if (group) {
		snprintf(buf, sizeof buf, "%zu of %zu requests failed, %zu cancelled",
		         a->failed, a->total, json_array_size(cancelled));
		json_object_set_new(answer, "error", json_string(error ? error : "batch_failed"));
		json_object_set_new(answer, "message", json_string(message ? message : buf));
	}
	json_object_set_new(answer, "elapsed_ms", elapsed ? json_copy((json_t *)elapsed)
	                                                  : json_integer(0));
	json_object_set_new(answer, group ? "errors" : "results", list);
	if (group) {
		json_object_set_new(answer, "completed", completed);
		json_object_set_new(answer, "cancelled", cancelled);
	} else {
		json_decref(completed);
		json_decref(cancelled);
	}
	return answer;
}

int fanout_answer_finish(struct fanout_answer *a, char *err, size_t errlen)
{
	json_t *e, *answer;
	size_t i;

	if (a->last == NULL)
		return fail(err, errlen, "the answer ended before its last line");
	for (i = 0; i < a->total; i++) {
		if (a->seen[i])
			continue;
		e = cancelled_entry(a, i);
		if (a->output == FANOUT_OUTPUT_JSON) {
			/* an error group lists it in "cancelled", others as an entry */
			a->entries[i] = e;
			if (e == NULL)
				return fail(err, errlen, "out of memory");
			continue;
		}
		if (e == NULL || order_entry(a, i, e, NULL, 0, err, errlen) != 0) {
			json_decref(e);
			return fail(err, errlen, "out of memory");
		}
		json_decref(e);
	}
	a->finished = true;
	if (a->output == FANOUT_OUTPUT_JSON) {
		answer = whole_answer(a, fanout_answer_ok(a));
		if (answer == NULL || json_dumpf(answer, a->out, DUMP_FLAGS) != 0) {
			json_decref(answer);
			return fail(err, errlen, "out of memory");
		}
		putc('\n', a->out);
		json_decref(answer);
	}
	return 0;
}

bool fanout_answer_ok(const struct fanout_answer *a)
{
	return a->last != NULL && json_is_true(json_object_get(a->last, "ok")) &&
	       a->failed == 0 && a->done == a->total;
}

size_t fanout_answer_done(const struct fanout_answer *a)
{
	return a->done > a->progress_done ? a->done : a->progress_done;
}

size_t fanout_answer_failed(const struct fanout_answer *a)
{
	return a->failed;
}
