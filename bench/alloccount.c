/* alloccount: an LD_PRELOAD shim that counts heap allocator calls.
 *
 *   cc -O2 -shared -fPIC -o alloccount.so bench/alloccount.c -ldl
 *   ALLOCCOUNT_OUT=/tmp/counts LD_PRELOAD=./alloccount.so fanoutd ...
 *   kill -USR2 <pid>      # writes the counts so far to $ALLOCCOUNT_OUT
 *
 * bench/allocs drives it (two dumps around one batch, the difference / N).
 *
 * It wraps malloc, calloc, realloc and free, and the aligned family
 * (posix_memalign, aligned_alloc, memalign, valloc, pvalloc), counting each
 * call with relaxed atomics, plus the bytes asked for.  In glibc (2.36 here)
 * libc's own allocations, strdup, strndup, asprintf, getline, fopen, ...
 * call the public malloc/realloc/free through the PLT (glibc supports
 * replacing malloc), so they are counted as malloc etc.  The aligned family
 * does NOT go through malloc in glibc (_mid_memalign calls _int_memalign),
 * so it is wrapped separately and reported as "memalign".
 *
 * SIGUSR2 (handler installed by the constructor) writes the counts, with
 * write(2) only, to $ALLOCCOUNT_OUT.tmp and rename(2)s it to $ALLOCCOUNT_OUT,
 * so a reader sees either no file or a whole one.  Lines are "key value":
 *
 *   seq 1                  dumps so far, this one included
 *   malloc 123             calls to malloc (likewise calloc, realloc, free,
 *   ...                    memalign: the aligned family together)
 *   free_null 7            free(NULL) calls (included in free)
 *   realloc_null 2         realloc(NULL, n) calls (included in realloc)
 *   bytes 45678            bytes requested by all allocating calls
 *
 * With ALLOCCOUNT_CALLERS=1 it also records each allocating call's stack
 * (glibc backtrace(), up to MAXF frames, the shim's own frames included)
 * in a fixed hash table, and the dump adds
 *
 *   dropped <n>            allocations not recorded (table full, re-entry)
 *   stack <malloc> <calloc> <realloc> <memalign> <bytes> 0xADDR 0xADDR ...
 *
 * and then the process's /proc/self/maps after a line "maps", so the
 * addresses can be resolved later (bench/allocs does, with addr2line).
 * Unwinding costs a few microseconds per allocation; leave it off when
 * timing anything.
 *
 * The first dlsym() can itself call calloc/malloc before the real ones are
 * known: those are served from a small static arena (never freed).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>   /* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { K_MALLOC, K_CALLOC, K_REALLOC, K_MEMALIGN, K_FREE, K_FREE_NULL, K_REALLOC_NULL, K_BYTES, K_N };
static const char *const knames[K_N] = {
	"malloc", "calloc", "realloc", "memalign", "free", "free_null", "realloc_null", "bytes",
};
static _Atomic unsigned long counts[K_N];
static _Atomic unsigned long dumps;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

/* --- bootstrap arena: what dlsym allocates before the real calloc is known -- */
static _Alignas(16) unsigned char arena[16384];
static _Atomic size_t arena_used;
static _Atomic int resolving;

static int in_arena(const void *p)
{
	return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

static void *arena_alloc(size_t n)
{
	size_t need = (n + 15) & ~(size_t)15, off = atomic_fetch_add(&arena_used, need);

	if (off + need > sizeof arena)
		return NULL;
	return arena + off;   /* static storage: already zero, fine for calloc */
}

static void resolve(void)
{
	if (real_free)
		return;
	atomic_store(&resolving, 1);
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
	real_pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	atomic_store(&resolving, 0);
}

/* --- callers (ALLOCCOUNT_CALLERS=1) ------------------------------------------- */
#define MAXF 16
#define NSLOTS 32768   /* distinct stacks; power of two */
struct slot {
	_Atomic int state;   /* 0 empty, 1 being filled, 2 ready */
	int depth;
	void *frames[MAXF];
	_Atomic unsigned long n[K_MEMALIGN + 1];
	_Atomic unsigned long bytes;
};
static struct slot *slots;   /* mmap'ed by the constructor: not from malloc */
static _Atomic unsigned long dropped;
static int callers;
static __thread int in_hook __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) void record(int kind, size_t bytes)
{
	void *fr[MAXF];
	int depth, i;
	uintptr_t h = 1469598103934665603u;
	unsigned idx, probe;

	if (in_hook) {   /* backtrace's own first-use allocations */
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return;
	}
	in_hook = 1;
	depth = backtrace(fr, MAXF);
	in_hook = 0;
	for (i = 0; i < depth; i++)
		h = (h ^ (uintptr_t)fr[i]) * 1099511628211u;
	idx = (unsigned)(h ^ (h >> 29)) & (NSLOTS - 1);
	for (probe = 0; probe < 64; probe++, idx = (idx + 1) & (NSLOTS - 1)) {
		struct slot *s = &slots[idx];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == 0) {
			int zero = 0;

			if (atomic_compare_exchange_strong(&s->state, &zero, 1)) {
				s->depth = depth;
				memcpy(s->frames, fr, sizeof(void *) * (size_t)depth);
				atomic_store_explicit(&s->state, 2, memory_order_release);
				st = 2;
			} else {
				st = zero;
			}
		}
		if (st == 2 && s->depth == depth && memcmp(s->frames, fr, sizeof(void *) * (size_t)depth) == 0) {
			atomic_fetch_add_explicit(&s->n[kind], 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
}

static inline void count(int kind, size_t bytes)
{
	atomic_fetch_add_explicit(&counts[kind], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&counts[K_BYTES], bytes, memory_order_relaxed);
	if (callers)
		record(kind, bytes);
}

/* --- the wrappers ------------------------------------------------------------ */
void *malloc(size_t n)
{
	if (!real_malloc) {
		if (atomic_load(&resolving))
			return arena_alloc(n);
		resolve();
	}
	count(K_MALLOC, n);
	return real_malloc(n);
}

void *calloc(size_t nmemb, size_t size)
{
	if (!real_calloc) {
		if (atomic_load(&resolving))
			return size && nmemb > SIZE_MAX / size ? NULL : arena_alloc(nmemb * size);
		resolve();
	}
	count(K_CALLOC, nmemb * size);
	return real_calloc(nmemb, size);
}

void *realloc(void *p, size_t n)
{
	if (in_arena(p)) {   /* move it out; its old size is unknown: copy what may be it */
		size_t left = (size_t)(arena + sizeof arena - (unsigned char *)p);
		void *q = malloc(n);   /* the arena while resolving, else counted */

		if (q)
			memcpy(q, p, n < left ? n : left);
		return q;
	}
	if (!real_realloc) {
		if (atomic_load(&resolving))
			return arena_alloc(n);
		resolve();
	}
	if (!p)
		atomic_fetch_add_explicit(&counts[K_REALLOC_NULL], 1, memory_order_relaxed);
	count(K_REALLOC, n);
	return real_realloc(p, n);
}

void free(void *p)
{
	if (in_arena(p))
		return;
	atomic_fetch_add_explicit(&counts[K_FREE], 1, memory_order_relaxed);
	if (!p) {
		atomic_fetch_add_explicit(&counts[K_FREE_NULL], 1, memory_order_relaxed);
		return;
	}
	if (!real_free)
		resolve();
	real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	resolve();
	count(K_MEMALIGN, n);
	return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	resolve();
	count(K_MEMALIGN, n);
	return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n)
{
	resolve();
	count(K_MEMALIGN, n);
	return real_memalign(align, n);
}

void *valloc(size_t n)
{
	resolve();
	count(K_MEMALIGN, n);
	return real_valloc(n);
}

void *pvalloc(size_t n)
{
	resolve();
	count(K_MEMALIGN, n);
	return real_pvalloc(n);
}

/* --- the dump: async-signal-safe (open, write, read, close, rename) ---------- */
static char out_path[4096], tmp_path[4100];

struct wbuf {
	int fd;
	size_t len;
	char b[8192];
};

static void wflush(struct wbuf *w)
{
	size_t off = 0;

	while (off < w->len) {
		ssize_t k = write(w->fd, w->b + off, w->len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	w->len = 0;
}

static void wbytes(struct wbuf *w, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = sizeof w->b - w->len, k = n < room ? n : room;

		memcpy(w->b + w->len, s, k);
		w->len += k;
		s += k;
		n -= k;
		if (w->len == sizeof w->b)
			wflush(w);
	}
}

static void wstr(struct wbuf *w, const char *s)
{
	wbytes(w, s, strlen(s));
}

static void wnum(struct wbuf *w, unsigned long v, int base)
{
	char t[24];
	int i = (int)sizeof t;

	do {
		t[--i] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v);
	if (base == 16)
		wstr(w, "0x");
	wbytes(w, t + i, sizeof t - (size_t)i);
}

static void on_usr2(int sig)
{
	static struct wbuf w;   /* one dump at a time: SIGUSR2 is blocked meanwhile */
	int saved = errno, k, i, fd;
	char rb[4096];
	ssize_t got;

	(void)sig;
	w.len = 0;
	w.fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		errno = saved;
		return;
	}
	wstr(&w, "seq ");
	wnum(&w, atomic_fetch_add(&dumps, 1) + 1, 10);
	wstr(&w, "\n");
	for (k = 0; k < K_N; k++) {
		wstr(&w, knames[k]);
		wstr(&w, " ");
		wnum(&w, atomic_load_explicit(&counts[k], memory_order_relaxed), 10);
		wstr(&w, "\n");
	}
	if (callers) {
		wstr(&w, "dropped ");
		wnum(&w, atomic_load(&dropped), 10);
		wstr(&w, "\n");
		for (i = 0; i < NSLOTS; i++) {
			struct slot *s = &slots[i];

			if (atomic_load_explicit(&s->state, memory_order_acquire) != 2)
				continue;
			wstr(&w, "stack");
			for (k = 0; k <= K_MEMALIGN; k++) {
				wstr(&w, " ");
				wnum(&w, atomic_load_explicit(&s->n[k], memory_order_relaxed), 10);
			}
			wstr(&w, " ");
			wnum(&w, atomic_load_explicit(&s->bytes, memory_order_relaxed), 10);
			for (k = 0; k < s->depth; k++) {
				wstr(&w, " ");
				wnum(&w, (unsigned long)(uintptr_t)s->frames[k], 16);
			}
			wstr(&w, "\n");
		}
		wstr(&w, "maps\n");
		fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			while ((got = read(fd, rb, sizeof rb)) > 0 || (got < 0 && errno == EINTR))
				if (got > 0)
					wbytes(&w, rb, (size_t)got);
			close(fd);
		}
	}
	wflush(&w);
	close(w.fd);
	rename(tmp_path, out_path);
	errno = saved;
}

__attribute__((constructor)) static void alloccount_init(void)
{
	const char *p = getenv("ALLOCCOUNT_OUT"), *c = getenv("ALLOCCOUNT_CALLERS");
	struct sigaction sa;
	size_t n;

	resolve();
	if (!p || !*p)
		p = "alloccount.out";
	n = strlen(p);
	if (n >= sizeof out_path)
		n = sizeof out_path - 1;
	memcpy(out_path, p, n);
	memcpy(tmp_path, out_path, n);
	memcpy(tmp_path + n, ".tmp", 5);
	if (c && *c && strcmp(c, "0") != 0) {
		void *m = mmap(NULL, sizeof(struct slot) * NSLOTS, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m != MAP_FAILED) {
			void *fr[2];

			slots = m;
			in_hook = 1;   /* backtrace's first call loads libgcc_s */
			backtrace(fr, 2);
			in_hook = 0;
			callers = 1;
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
}
