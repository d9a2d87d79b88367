// heapstate's allocation sampler for glibc's malloc: a library preloaded in front of malloc
// (LD_PRELOAD=$(npx heapstate sampler-path)) that passes every call through to the malloc behind
// it (glibc's, or an allocator preloaded after it) and keeps, for about one allocation per
// HEAPSTATE_SAMPLE_BYTES bytes (512 KiB by default; Poisson byte sampling, as jemalloc's prof and
// tcmalloc do), the live object's size and its stack of return addresses, walked by frame pointers.
// heapstate's addon calls heapstate_sampler_dump(path) to have the live samples written as a
// `heap_v2` profile (jemalloc's text: the same parser reads both); nothing here parses or decides
// anything else.
//
// What keeps it safe inside malloc:
//  - it never allocates: its tables are mmap'd once, at load, and its dump writes from the stack;
//  - a thread-local guard makes any malloc reached from inside the sampler (pthread_getattr_np)
//    pass straight through, unsampled;
//  - the free path takes no lock: a 32 Ki-counter filter answers "not sampled" for almost every
//    free without touching the table; a sampled pointer is found among 16 slots and cleared with
//    one compare-and-swap, before the free behind it (so an address handed out again is never
//    confused with the old sample);
//  - the stack walk reads only inside the calling thread's own stack (its bounds from
//    pthread_getattr_np, kept per thread), each frame above the last: a function built without
//    frame pointers ends the walk early, it never reads a wild address;
//  - fork: the child keeps the parent's tables (a copy) and nothing is locked across fork; thread
//    exit: no per-thread state is registered anywhere, so there is nothing to release.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

// glibc 2.34 moved the pthread functions into libc under a new symbol version; bind to the old
// ones, which every glibc exports, so the library loads wherever Node's official binaries run.
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
#if defined(__x86_64__)
#define HS_OLD "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define HS_OLD "GLIBC_2.17"
#endif
#ifdef HS_OLD
__asm__(".symver pthread_getattr_np,pthread_getattr_np@" HS_OLD);
__asm__(".symver pthread_attr_getstack,pthread_attr_getstack@" HS_OLD);
__asm__(".symver pthread_attr_destroy,pthread_attr_destroy@" HS_OLD);
__asm__(".symver pthread_self,pthread_self@" HS_OLD);
__asm__(".symver dlsym,dlsym@" HS_OLD);
#endif
#endif

#define EXPORT __attribute__((visibility("default")))
// The AddressSanitizer build (scripts/sanitize.sh) links the sampler into its stress program with
// its entry points renamed (hs_malloc, …): ASan's runtime must serve malloc from before the
// sampler's code can run, so the sampler is called by name instead of interposed.
#ifdef HEAPSTATE_SAMPLER_PREFIX
#define HS_NAME(f) hs_##f
#else
#define HS_NAME(f) f
#endif
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define NOINLINE __attribute__((noinline))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

enum {
  MAX_FRAMES = 32,
  WINDOW = 16,       // slots searched for a pointer: two cache lines of keys
  FILTER_BITS = 15,  // 32 Ki counters
};
// Distinct stacks kept (ids; later new stacks' samples are dropped, and counted), their hash
// index's slots (twice as many) and the return addresses kept for all of them: small by default,
// since every page of a hashed table ends up touched; larger when every allocation is sampled.
static uint32_t g_max_stacks = 1 << 13;
static uint32_t g_stack_slots = 1 << 14;
static uint32_t g_frame_pool = 1 << 18;
#define BUSY ((uintptr_t)1)

// The sample table: keys (the live sampled pointers; 0 empty, BUSY while written) and, beside each,
// (size << 24 | stack id). Allocated at load with mmap; touched only where samples land.
static _Atomic uintptr_t* g_keys;
static _Atomic uint64_t* g_meta;
static size_t g_slot_mask;  // slots - 1 (a power of two)
static _Atomic uint8_t* g_filter;
static _Atomic uint32_t* g_stack_index;  // g_stack_slots: 0 empty, else stack id + 1
static uint32_t* g_stack_start;          // g_max_stacks
static uint32_t* g_stack_len;            // g_max_stacks
static uint32_t* g_stack_hash;           // g_max_stacks
static uintptr_t* g_frames;              // g_frame_pool
static _Atomic uint32_t g_nstacks;
static _Atomic uint32_t g_frames_used;

static size_t g_period = 512 * 1024;  // mean bytes between samples; 1: every allocation; 0: off
static int g_ready;                   // tables made: sample from now on
static _Atomic uint64_t g_dropped;    // samples not kept: the table's window or the stacks full
static _Atomic uint64_t g_samples;    // samples taken since load
static _Atomic int g_dumping;

static TLS int64_t t_left;  // bytes until this thread's next sample
static TLS uint64_t t_rng;
static TLS int t_busy;    // inside the sampler: pass through
static TLS int t_bounds;  // 0 not asked, 1 known, -1 unknown
static TLS uintptr_t t_stack_lo, t_stack_hi;

// What the sampler passes every call to: the next object in lookup order that defines each
// function (glibc's, or an allocator preloaded after the sampler), found with dlsym(RTLD_NEXT) on
// the first call. Whatever dlsym allocates meanwhile is served from a small static block (never
// freed; free ignores it).
static void* (*next_malloc)(size_t);
static void (*next_free)(void*);
static void* (*next_calloc)(size_t, size_t);
static void* (*next_realloc)(void*, size_t);
static void* (*next_memalign)(size_t, size_t);
static void* (*next_aligned_alloc)(size_t, size_t);
static int (*next_posix_memalign)(void**, size_t, size_t);
static void* (*next_valloc)(size_t);
static void* (*next_pvalloc)(size_t);
static _Atomic int g_resolved;
static TLS int t_resolving;
static _Alignas(64) char g_boot[64 * 1024];
static _Atomic size_t g_boot_used;

static void* boot_alloc(size_t n) {
  size_t size = (n + 63) & ~(size_t)63;
  size_t at = atomic_fetch_add(&g_boot_used, size);
  if (at + size > sizeof g_boot) return NULL;
  return g_boot + at;  // zeroed: static storage, never reused
}

static int in_boot(const void* p) {
  return (const char*)p >= g_boot && (const char*)p < g_boot + sizeof g_boot;
}

static void resolve(void) {
  t_resolving = 1;
  next_malloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "malloc");
  next_free = (void (*)(void*))dlsym(RTLD_NEXT, "free");
  next_calloc = (void* (*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  next_realloc = (void* (*)(void*, size_t))dlsym(RTLD_NEXT, "realloc");
  next_memalign = (void* (*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
  next_aligned_alloc = (void* (*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
  next_posix_memalign = (int (*)(void**, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
  next_valloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "valloc");
  next_pvalloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
  t_resolving = 0;
  if (next_malloc == NULL || next_free == NULL || next_calloc == NULL || next_realloc == NULL) {
    static const char line[] = "heapstate sampler: no malloc behind it (dlsym RTLD_NEXT failed)\n";
    ssize_t ignored = write(2, line, sizeof line - 1);
    (void)ignored;
    abort();
  }
  atomic_store_explicit(&g_resolved, 1, memory_order_release);
}

// True when the next functions are known; false while this thread is resolving them (the caller
// then serves from the static block).
static inline int ready_to_forward(void) {
  if (__builtin_expect(atomic_load_explicit(&g_resolved, memory_order_acquire), 1)) return 1;
  if (t_resolving) return 0;
  resolve();
  return 1;
}

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// ln(x) for x in (0, 1]: x = m·2^e with m in [1, 2), ln m by the series of atanh (libm's log is
// versioned GLIBC_2.29, newer than what Node's binaries need).
static double ln(double x) {
  union {
    double d;
    uint64_t u;
  } v = {x};
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double s = (v.d - 1) / (v.d + 1), s2 = s * s, term = s, sum = 0;
  for (int k = 1; k < 24; k += 2) {
    sum += term / k;
    term *= s2;
  }
  return e * 0.6931471805599453 + 2 * sum;
}

// Bytes until the next sample: exponential with mean g_period.
static int64_t next_gap(void) {
  if (t_rng == 0)
    t_rng = mix((uintptr_t)&t_rng ^ ((uint64_t)time(NULL) << 20) ^ 0x9e3779b97f4a7c15ULL) | 1;
  t_rng ^= t_rng << 13;
  t_rng ^= t_rng >> 7;
  t_rng ^= t_rng << 17;
  double u = ((t_rng >> 11) + 1) * (1.0 / 9007199254740993.0);  // (0, 1]
  double gap = -ln(u) * (double)g_period;
  return gap < 1 ? 1 : (int64_t)gap;
}

static void thread_bounds(void) {
  pthread_attr_t a;
  void* addr = NULL;
  size_t size = 0;
  t_bounds = -1;
  if (pthread_getattr_np(pthread_self(), &a) != 0) return;
  if (pthread_attr_getstack(&a, &addr, &size) == 0 && size > 0) {
    t_stack_lo = (uintptr_t)addr;
    t_stack_hi = (uintptr_t)addr + size;
    t_bounds = 1;
  }
  pthread_attr_destroy(&a);
}

// The return addresses from `ra` (the allocation function's caller) outwards, following the saved
// frame pointers from `fp` (the allocation function's own frame: [fp] the caller's frame, [fp+1]
// `ra`), only while each frame lies above the last and inside this thread's stack.
static int walk(uintptr_t* out, uintptr_t ra, uintptr_t* fp) {
  int n = 0;
  out[n++] = ra;
  if (t_bounds == 0) thread_bounds();
  if (t_bounds != 1) return n;
  uintptr_t lo = (uintptr_t)fp, hi = t_stack_hi;
  if (lo < t_stack_lo || lo + 2 * sizeof(uintptr_t) > hi) return n;
  while (n < MAX_FRAMES) {
    uintptr_t next = fp[0];
    if (next <= lo || next + 2 * sizeof(uintptr_t) > hi || (next & (sizeof(uintptr_t) - 1)) != 0)
      break;
    fp = (uintptr_t*)next;
    lo = next;
    uintptr_t r = fp[1];
    if (r < 4096) break;
    out[n++] = r;
  }
  return n;
}

static uint32_t hash_frames(const uintptr_t* f, int n) {
  uint64_t h = (uint64_t)n;
  for (int i = 0; i < n; i++) h = mix(h ^ f[i]);
  return (uint32_t)h;
}

// The stack's id, kept once (an insert-only table); UINT32_MAX when the stacks are full.
static uint32_t stack_id(const uintptr_t* f, int n) {
  uint32_t h = hash_frames(f, n);
  // At most half the index is ever used: a stack is found, or a free slot, within a few probes.
  for (uint32_t probe = 0; probe < 256; probe++) {
    _Atomic uint32_t* slot = &g_stack_index[(h + probe) & (g_stack_slots - 1)];
    uint32_t v = atomic_load_explicit(slot, memory_order_acquire);
    if (v == 0) {
      uint32_t id = atomic_fetch_add(&g_nstacks, 1);
      uint32_t start = atomic_fetch_add(&g_frames_used, (uint32_t)n);
      if (id >= g_max_stacks || start + (uint32_t)n > g_frame_pool) return UINT32_MAX;
      memcpy(&g_frames[start], f, (size_t)n * sizeof *f);
      g_stack_start[id] = start;
      g_stack_len[id] = (uint32_t)n;
      g_stack_hash[id] = h;
      uint32_t expected = 0;
      if (atomic_compare_exchange_strong_explicit(slot, &expected, id + 1, memory_order_release,
                                                  memory_order_acquire))
        return id;
      v = expected;  // another thread took the slot first: this id stays unused
    }
    uint32_t id = v - 1;
    if (g_stack_hash[id] == h && g_stack_len[id] == (uint32_t)n &&
        memcmp(&g_frames[g_stack_start[id]], f, (size_t)n * sizeof *f) == 0)
      return id;
  }
  return UINT32_MAX;
}

static inline size_t slot_of(uintptr_t p) { return (size_t)mix(p) & g_slot_mask & ~(size_t)7; }
// The filter's counter for a pointer: a few instructions on every free (blocks are 16-byte
// aligned; the shifted copy folds in the bits above 1 MiB).
static inline size_t filter_of(uintptr_t p) {
  return (size_t)((p >> 4) ^ (p >> 20)) & ((1u << FILTER_BITS) - 1);
}

static NOINLINE void take_sample(void* p, size_t size, uintptr_t ra, uintptr_t* fp) {
  t_busy = 1;
  uintptr_t frames[MAX_FRAMES];
  int n = walk(frames, ra, fp);
  uint32_t id = stack_id(frames, n);
  atomic_fetch_add_explicit(&g_samples, 1, memory_order_relaxed);
  if (id == UINT32_MAX) {
    atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
    t_busy = 0;
    return;
  }
  uintptr_t key = (uintptr_t)p;
  _Atomic uint8_t* f = &g_filter[filter_of(key)];
  // A counter at 255 stays there (the free path then always searches the table for that value).
  uint8_t c = atomic_load_explicit(f, memory_order_relaxed);
  while (c < 255 && !atomic_compare_exchange_weak(f, &c, (uint8_t)(c + 1))) {
  }
  size_t base = slot_of(key);
  for (size_t i = 0; i < WINDOW; i++) {
    size_t s = (base + i) & g_slot_mask;
    uintptr_t expected = 0;
    if (atomic_compare_exchange_strong(&g_keys[s], &expected, BUSY)) {
      uint64_t sz = size > ((1ULL << 40) - 1) ? ((1ULL << 40) - 1) : size;
      atomic_store_explicit(&g_meta[s], sz << 24 | id, memory_order_relaxed);
      atomic_store_explicit(&g_keys[s], key, memory_order_release);
      t_busy = 0;
      return;
    }
  }
  // No slot in its window: the filter's count goes back (no free will find this pointer).
  c = atomic_load_explicit(f, memory_order_relaxed);
  while (c > 0 && c < 255 && !atomic_compare_exchange_weak(f, &c, (uint8_t)(c - 1))) {
  }
  atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
  t_busy = 0;
}

// An allocation that used up this thread's gap: draw the next and take the sample. Kept out of
// line, so that the allocation functions' common path stays a subtraction and a test.
static NOINLINE void crossed(void* p, size_t size, uintptr_t ra, uintptr_t* fp) {
  if (g_period == 0) {
    t_left = INT64_MAX;
    return;
  }
  if (g_period == 1) {
    t_left = 0;
    take_sample(p, size, ra, fp);
    return;
  }
  // The first allocation of a thread draws its gap first; every other one reached here crossed it.
  int first = t_rng == 0;
  int64_t carried = t_left;
  t_left = next_gap();
  if (first) {
    t_left += carried;
    if (t_left > 0) return;
    t_left = next_gap();
  }
  take_sample(p, size, ra, fp);
}

// Called for every allocation that returned `p` of `size` bytes.
static inline void account(void* p, size_t size, uintptr_t ra, uintptr_t* fp) {
  if (UNLIKELY(!g_ready) || p == NULL || t_busy) return;
  t_left -= (int64_t)size;
  if (UNLIKELY(t_left <= 0)) crossed(p, size, ra, fp);
}

// Called for every pointer about to be freed: its sample, if it has one, is cleared.
static inline void forget(void* p) {
  if (UNLIKELY(!g_ready) || p == NULL) return;
  uintptr_t key = (uintptr_t)p;
  _Atomic uint8_t* f = &g_filter[filter_of(key)];
  if (__builtin_expect(atomic_load_explicit(f, memory_order_relaxed) == 0, 1)) return;
  size_t base = slot_of(key);
  for (size_t i = 0; i < WINDOW; i++) {
    size_t s = (base + i) & g_slot_mask;
    if (atomic_load_explicit(&g_keys[s], memory_order_relaxed) != key) continue;
    uintptr_t expected = key;
    if (atomic_compare_exchange_strong(&g_keys[s], &expected, 0)) {
      uint8_t c = atomic_load_explicit(f, memory_order_relaxed);
      while (c > 0 && c < 255 && !atomic_compare_exchange_weak(f, &c, (uint8_t)(c - 1))) {
      }
    }
    return;
  }
}

#define CALLER() (uintptr_t) __builtin_return_address(0), (uintptr_t*)__builtin_frame_address(0)

EXPORT void* HS_NAME(malloc)(size_t n) {
  if (UNLIKELY(!ready_to_forward())) return boot_alloc(n);
  void* p = next_malloc(n);
  account(p, n, CALLER());
  return p;
}

EXPORT void HS_NAME(free)(void* p) {
  if (UNLIKELY(in_boot(p))) return;
  if (UNLIKELY(!ready_to_forward())) return;
  forget(p);
  next_free(p);
}

EXPORT void* HS_NAME(calloc)(size_t n, size_t m) {
  if (UNLIKELY(!ready_to_forward())) return (m != 0 && n > SIZE_MAX / m) ? NULL : boot_alloc(n * m);
  void* p = next_calloc(n, m);
  account(p, n * m, CALLER());
  return p;
}

EXPORT void* HS_NAME(realloc)(void* old, size_t n) {
  if (UNLIKELY(!ready_to_forward() || in_boot(old))) {
    // The static block's objects do not know their size: copy what can be and never free them.
    void* p = ready_to_forward() ? next_malloc(n) : boot_alloc(n);
    if (p != NULL && old != NULL) {
      size_t room = (size_t)(g_boot + sizeof g_boot - (char*)old);
      memcpy(p, old, n < room ? n : room);
    }
    return p;
  }
  forget(old);
  void* p = next_realloc(old, n);
  // realloc(old, 0) freed `old`; a failed realloc left `old` as it was (now unsampled: the sample
  // is lost rather than kept for a pointer that may be freed by another path).
  account(p, n, CALLER());
  return p;
}

// The aligned forms: served by the next object's own; one it lacks is refused (ENOMEM) rather
// than served by an allocator other than the one that will free it.
EXPORT void* HS_NAME(memalign)(size_t alignment, size_t n) {
  if (UNLIKELY(!ready_to_forward()) || next_memalign == NULL) return NULL;
  void* p = next_memalign(alignment, n);
  account(p, n, CALLER());
  return p;
}

EXPORT void* HS_NAME(aligned_alloc)(size_t alignment, size_t n) {
  if (UNLIKELY(!ready_to_forward()) || next_aligned_alloc == NULL) return NULL;
  void* p = next_aligned_alloc(alignment, n);
  account(p, n, CALLER());
  return p;
}

EXPORT int HS_NAME(posix_memalign)(void** out, size_t alignment, size_t n) {
  if (UNLIKELY(!ready_to_forward()) || next_posix_memalign == NULL) return ENOMEM;
  int rc = next_posix_memalign(out, alignment, n);
  if (rc == 0) account(*out, n, CALLER());
  return rc;
}

EXPORT void* HS_NAME(valloc)(size_t n) {
  if (UNLIKELY(!ready_to_forward()) || next_valloc == NULL) return NULL;
  void* p = next_valloc(n);
  account(p, n, CALLER());
  return p;
}

EXPORT void* HS_NAME(pvalloc)(size_t n) {
  if (UNLIKELY(!ready_to_forward()) || next_pvalloc == NULL) return NULL;
  void* p = next_pvalloc(n);
  account(p, n, CALLER());
  return p;
}

// ---- the dump: heap_v2 text, written without allocating ----

struct out {
  int fd;
  int error;
  size_t used;
  char buf[8192];
};

static void flush(struct out* o) {
  size_t done = 0;
  while (done < o->used && o->error == 0) {
    ssize_t w = write(o->fd, o->buf + done, o->used - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      o->error = w < 0 ? errno : EIO;
    else
      done += (size_t)w;
  }
  o->used = 0;
}

static void put(struct out* o, const char* s, size_t n) {
  while (n > 0) {
    if (o->used == sizeof o->buf) flush(o);
    size_t k = sizeof o->buf - o->used;
    if (k > n) k = n;
    memcpy(o->buf + o->used, s, k);
    o->used += k;
    s += k;
    n -= k;
  }
}

static void puts_(struct out* o, const char* s) { put(o, s, strlen(s)); }

static void putu(struct out* o, uint64_t v) {
  char t[24];
  int i = sizeof t;
  do {
    t[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(o, t + i, sizeof t - (size_t)i);
}

static void putx(struct out* o, uint64_t v) {
  char t[20];
  int i = sizeof t;
  do {
    t[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  t[--i] = 'x';
  t[--i] = '0';
  put(o, t + i, sizeof t - (size_t)i);
}

// Writes the live samples to a new file at `path` (created 0600, never an existing one): 0, or an
// errno. Frame addresses are return addresses; /proc/self/maps follows, as jemalloc writes it.
EXPORT int heapstate_sampler_dump(const char* path) {
  if (!g_ready) return ENOENT;
  int prev = t_busy;
  t_busy = 1;
  // One dump at a time; a dump held by a thread that no longer exists (a fork's child) is given
  // up on after about two seconds.
  int spins = 0;
  int expected = 0;
  while (!atomic_compare_exchange_weak(&g_dumping, &expected, 1)) {
    expected = 0;
    if (++spins > 2000) {
      t_busy = prev;
      return EBUSY;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  int rc = 0;
  uint32_t nstacks = atomic_load(&g_nstacks);
  if (nstacks > g_max_stacks) nstacks = g_max_stacks;
  size_t scratch = (size_t)g_max_stacks * 2 * sizeof(uint64_t);
  uint64_t* acc = mmap(NULL, scratch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int fd = -1;
  if (acc == MAP_FAILED) {
    rc = ENOMEM;
    goto done;
  }
  uint64_t total_n = 0, total_b = 0;
  for (size_t s = 0; s <= g_slot_mask; s++) {
    uintptr_t k = atomic_load_explicit(&g_keys[s], memory_order_acquire);
    if (k == 0 || k == BUSY) continue;
    uint64_t m = atomic_load_explicit(&g_meta[s], memory_order_relaxed);
    if (atomic_load_explicit(&g_keys[s], memory_order_acquire) != k) continue;
    uint32_t id = (uint32_t)(m & 0xffffff);
    if (id >= nstacks) continue;
    acc[2 * id] += 1;
    acc[2 * id + 1] += m >> 24;
    total_n += 1;
    total_b += m >> 24;
  }
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = errno;
    goto done;
  }
  struct out o = {fd, 0, 0, {0}};
  puts_(&o, "heap_v2/");
  putu(&o, g_period);
  puts_(&o, "\n  t*: ");
  putu(&o, total_n);
  puts_(&o, ": ");
  putu(&o, total_b);
  puts_(&o, " [0: 0]\n");
  // Not part of jemalloc's text (its parsers skip it): what the sampler could not keep.
  puts_(&o, "  heapstate-sampler: samples ");
  putu(&o, atomic_load(&g_samples));
  puts_(&o, " dropped ");
  putu(&o, atomic_load(&g_dropped));
  puts_(&o, "\n");
  for (uint32_t id = 0; id < nstacks; id++) {
    if (acc[2 * id] == 0) continue;
    puts_(&o, "@");
    for (uint32_t i = 0; i < g_stack_len[id]; i++) {
      puts_(&o, " ");
      putx(&o, g_frames[g_stack_start[id] + i]);
    }
    puts_(&o, "\n  t*: ");
    putu(&o, acc[2 * id]);
    puts_(&o, ": ");
    putu(&o, acc[2 * id + 1]);
    puts_(&o, " [0: 0]\n");
  }
  puts_(&o, "\nMAPPED_LIBRARIES:\n");
  int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (maps >= 0) {
    for (;;) {
      if (o.used == sizeof o.buf) flush(&o);
      ssize_t r = read(maps, o.buf + o.used, sizeof o.buf - o.used);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      o.used += (size_t)r;
    }
    close(maps);
  }
  flush(&o);
  rc = o.error;
done:
  if (fd >= 0 && close(fd) != 0 && rc == 0) rc = errno;
  if (acc != MAP_FAILED) munmap(acc, scratch);
  atomic_store(&g_dumping, 0);
  t_busy = prev;
  return rc;
}

// Resident bytes of one of its tables (mincore: the pages touched so far), 0 when unknown.
static uint64_t resident(const void* table, size_t bytes) {
  if (table == NULL) return 0;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) return 0;
  size_t pages = (bytes + (size_t)page - 1) / (size_t)page;
  unsigned char vec[512];
  uint64_t total = 0;
  for (size_t at = 0; at < pages; at += sizeof vec) {
    size_t k = pages - at < sizeof vec ? pages - at : sizeof vec;
    if (mincore((char*)table + at * (size_t)page, k * (size_t)page, vec) != 0) return 0;
    for (size_t i = 0; i < k; i++) total += vec[i] & 1;
  }
  return total * (uint64_t)page;
}

// The sampler's settings and counts, as many as `n` of: [mean bytes between samples, table slots,
// samples taken, samples dropped, its tables' resident bytes]. Returns how many it wrote.
EXPORT size_t heapstate_sampler_stats(uint64_t* out, size_t n) {
  uint64_t v[5] = {g_period, g_slot_mask + 1, atomic_load(&g_samples), atomic_load(&g_dropped), 0};
  if (n >= 5 && g_ready) {
    size_t slots = g_slot_mask + 1;
    v[4] = resident(g_keys, slots * sizeof *g_keys) + resident(g_meta, slots * sizeof *g_meta) +
           resident(g_filter, (size_t)1 << FILTER_BITS) +
           resident(g_stack_index, g_stack_slots * sizeof *g_stack_index) +
           resident(g_stack_start, g_max_stacks * sizeof *g_stack_start) +
           resident(g_stack_len, g_max_stacks * sizeof *g_stack_len) +
           resident(g_stack_hash, g_max_stacks * sizeof *g_stack_hash) +
           resident(g_frames, g_frame_pool * sizeof *g_frames);
  }
  size_t k = n < 5 ? n : 5;
  for (size_t i = 0; i < k; i++) out[i] = v[i];
  return k;
}

static size_t env_size(const char* name, size_t fallback) {
  const char* v = getenv(name);
  if (v == NULL || *v == '\0') return fallback;
  size_t n = 0;
  for (; *v >= '0' && *v <= '9'; v++) {
    if (n > (SIZE_MAX - 9) / 10) return fallback;
    n = n * 10 + (size_t)(*v - '0');
  }
  return *v == '\0' ? n : fallback;
}

// Its tables are named in smaps ([anon:heapstate-sampler], Linux 5.17 and later with
// CONFIG_ANON_VMA_NAME; elsewhere they stay unnamed): what it holds is read like any region's.
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static void* map(size_t bytes) {
  void* p =
      mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, bytes,
        (unsigned long)"heapstate-sampler");
  return p;
}

__attribute__((constructor)) static void start(void) {
  t_busy = 1;
  g_period = env_size("HEAPSTATE_SAMPLE_BYTES", 512 * 1024);
  // Every allocation sampled holds every live object of the process: a larger table by default.
  size_t slots = env_size("HEAPSTATE_SAMPLER_SLOTS", g_period == 1 ? (1u << 21) : (1u << 13));
  if (g_period == 1) {
    g_max_stacks = 1 << 17;
    g_stack_slots = 1 << 18;
    g_frame_pool = 1 << 22;
  }
  size_t pow = 16;
  while (pow < slots && pow < ((size_t)1 << 30)) pow <<= 1;
  g_keys = map(pow * sizeof *g_keys);
  g_meta = map(pow * sizeof *g_meta);
  g_filter = map((size_t)1 << FILTER_BITS);
  g_stack_index = map(g_stack_slots * sizeof *g_stack_index);
  g_stack_start = map(g_max_stacks * sizeof *g_stack_start);
  g_stack_len = map(g_max_stacks * sizeof *g_stack_len);
  g_stack_hash = map(g_max_stacks * sizeof *g_stack_hash);
  g_frames = map(g_frame_pool * sizeof *g_frames);
  if (!g_keys || !g_meta || !g_filter || !g_stack_index || !g_stack_start || !g_stack_len ||
      !g_stack_hash || !g_frames) {
    t_busy = 0;
    return;  // no tables: every call passes through, and a dump answers ENOENT
  }
  g_slot_mask = pow - 1;

  // The main thread's stack bounds now, outside malloc (pthread_getattr_np reads /proc/self/maps
  // for it).
  thread_bounds();
  atomic_thread_fence(memory_order_seq_cst);
  g_ready = 1;
  t_busy = 0;
}
