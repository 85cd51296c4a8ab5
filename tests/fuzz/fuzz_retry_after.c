/* fuzz_retry_after: the two parsers of src/retry.c that read bytes from
 * outside: Retry-After's value (from any upstream) and a retry_on list
 * (from the config file).
 *
 * Input layout: all of it is the value, as is (no NUL: ASan sees a read
 * past it), read against a few wall clocks (1970, 2015, 2050, year 9999,
 * before 1970, NaN, absurdly far).  Then a NUL-terminated copy is read
 * as a retry_on list.
 *
 * Checks, Retry-After: the result is -1 or in [0, RETRY_AFTER_CAP_MS],
 * never NaN or inf; white space around the value changes nothing; a
 * number (a digit first) means the same whatever the clock.  retry_on: a
 * list accepted formats to text that parses back to the same set and
 * formats the same again; a refused one leaves the set alone and says
 * why; a single name (no separator in it) is accepted as a list exactly
 * when retry_on_add_name takes it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "retry.h"

#include <math.h>
#include <string.h>

static const double clocks[] = {
	0,
	1445412470000.0,            /* 10 s before Wed, 21 Oct 2015 07:28:00 GMT */
	1700000000000.5,
	2524608000000.0,            /* 2050-01-01 */
	253402300799000.0,          /* 9999-12-31 23:59:59 */
	-1e12,                      /* 1938 */
	1e300,
	NAN,
};

static void check_result(double v, const char *what, double now)
{
	FUZZ_CHECK(v == -1 || (v >= 0 && v <= RETRY_AFTER_CAP_MS), "%s at %g: %g", what, now,
	           v);
	FUZZ_CHECK(isfinite(v), "%s at %g: %g", what, now, v);
}

static void check_retry_after(const uint8_t *data, size_t size)
{
	const char *value = (const char *)data;
	char *padded = malloc(size + 4);
	double v, number = 0;
	bool is_number;
	size_t i, lead;

	FUZZ_CHECK(padded != NULL, "out of memory");
	memcpy(padded, " \t", 2);
	memcpy(padded + 2, data, size);
	memcpy(padded + 2 + size, "\t ", 2);
	for (lead = 0; lead < size && (value[lead] == ' ' || value[lead] == '\t'); lead++)
		;
	is_number = lead < size && value[lead] >= '0' && value[lead] <= '9';
	for (i = 0; i < sizeof clocks / sizeof *clocks; i++) {
		v = retry_after_ms(value, size, clocks[i]);
		check_result(v, "value", clocks[i]);
		FUZZ_CHECK(retry_after_ms(padded, size + 4, clocks[i]) == v,
		           "padded differs at %g (%g)", clocks[i], v);
		if (!is_number)
			continue;
		if (i == 0)
			number = v;
		FUZZ_CHECK(v == number, "a number depends on the clock: %g, %g", v, number);
	}
	free(padded);
}

static void check_list(const uint8_t *data, size_t size)
{
	struct retry_on on, before, again;
	char *list = malloc(size + 1);
	char err[128], text[4096], text2[4096];
	bool ok;

	FUZZ_CHECK(list != NULL, "out of memory");
	memcpy(list, data, size);
	list[size] = '\0';
	retry_on_default(&before);
	on = before;
	err[0] = '\0';
	ok = retry_on_parse_list(&on, list, err, sizeof err);
	if (ok) {
		retry_on_format(&on, text, sizeof text);
		FUZZ_CHECK(retry_on_parse_list(&again, text, err, sizeof err),
		           "\"%s\" formats to \"%s\", refused: %s", list, text, err);
		FUZZ_CHECK(memcmp(&on, &again, sizeof on) == 0, "\"%s\" round trip", text);
		retry_on_format(&again, text2, sizeof text2);
		FUZZ_CHECK(strcmp(text, text2) == 0, "\"%s\" then \"%s\"", text, text2);
	} else {
		FUZZ_CHECK(memcmp(&on, &before, sizeof on) == 0, "a refused list changed on");
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err), "no message");
	}
	/* one name, no separator: the list is that name */
	if (size > 0 && strlen(list) == size && strcspn(list, ", \t") == size) {
		memset(&again, 0, sizeof again);
		FUZZ_CHECK(retry_on_add_name(&again, (const char *)data, size) == ok,
		           "\"%s\": as a name %d, as a list %d", list, !ok, ok);
	}
	free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_retry_after(data, size);
	check_list(data, size);
	return 0;
}
