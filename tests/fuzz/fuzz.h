/* fuzz: what the libFuzzer harnesses share with replay.c.  A harness
 * defines LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize);
 * it is linked either with libFuzzer (`make fuzz`, clang) or with
 * replay.c (`make check`, any compiler), so it must not use anything of
 * libFuzzer's but these two entry points. */
#ifndef FANOUTD_FUZZ_H
#define FANOUTD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant: on failure print where and why, then abort() so libFuzzer
 * (and the replay) report a crash with the input that caused it. */
#define FUZZ_CHECK(cond, ...)                                                \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
			        __LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

#endif
