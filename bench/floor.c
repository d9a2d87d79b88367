/* The floor for heapstate's benchmarks: what the same information costs in C, read the cheapest
 * way (a descriptor kept open, one pread at offset 0 into a reused buffer), and the raw allocator
 * calls. Built and run by bench/run.mjs. Prints JSON.
 *
 *   floor files N PATH...          median/p99 ns of one pread of each PATH, N times
 *   floor mallinfo2 N              mallinfo2() on this process's (small) heap
 *   floor glibc-stall CHUNKS       a heap with CHUNKS free 200-byte chunks: mallinfo2's cost and
 *                                  the worst malloc+free latency of another thread meanwhile
 *   floor je-epoch THREADS N       (under LD_PRELOAD jemalloc) epoch write + 6 reads, after THREADS
 *                                  threads allocated (one arena each, up to narenas)
 *   floor maps REGIONS             make about REGIONS separate mappings, print "ready", wait for stdin EOF
 *   floor glibc-arenas THREADS CHUNKS  THREADS live threads, each with its own arena holding CHUNKS
 *                                  200-byte chunks, every other one free (run with MALLOC_ARENA_MAX
 *                                  above THREADS): the cost of mallinfo2 and of malloc_info
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void stats(const char *name, uint64_t *v, int n, long bytes, int last) {
  qsort(v, n, sizeof *v, cmp);
  printf("  \"%s\": {\"medianNs\": %llu, \"p99Ns\": %llu, \"bytes\": %ld}%s\n", name, (unsigned long long)v[n / 2],
         (unsigned long long)v[(n * 99) / 100], bytes, last ? "" : ",");
}

static int files(int n, int count, char **paths) {
  static char buf[64 << 20];
  uint64_t *t = malloc(sizeof *t * n);
  printf("{\n");
  for (int f = 0; f < count; f++) {
    int fd = open(paths[f], O_RDONLY);
    if (fd < 0) {
      printf("  \"%s\": null%s\n", paths[f], f == count - 1 ? "" : ",");
      continue;
    }
    long got = 0;
    for (int i = 0; i < n; i++) {
      uint64_t a = now_ns();
      long total = 0, r;
      /* A seq_file hands out at most a page or so per read while more remains, so a short read
         is not the end: small files (one read holds them) stop at the first read, large ones
         (smaps) read on until the kernel returns 0. */
      while ((r = pread(fd, buf, sizeof buf, total)) > 0) {
        total += r;
        if (total < 16384 && r < 16384 && i > 0 && got == total) break;
      }
      t[i] = now_ns() - a;
      got = total;
    }
    close(fd);
    stats(paths[f], t, n, got, f == count - 1);
  }
  printf("}\n");
  free(t);
  return 0;
}

static int mi2(int n) {
  struct mallinfo2 (*f)(void) = (struct mallinfo2 (*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
  if (!f) return printf("{}\n"), 0;
  uint64_t *t = malloc(sizeof *t * n);
  for (int i = 0; i < n; i++) {
    uint64_t a = now_ns();
    struct mallinfo2 m = f();
    t[i] = now_ns() - a;
    if (m.arena == 1) puts("");
  }
  printf("{\n");
  stats("mallinfo2", t, n, 0, 1);
  printf("}\n");
  return 0;
}

static volatile int stop_flag;
static uint64_t worst;

static void *allocator_thread(void *arg) {
  (void)arg;
  while (!stop_flag) {
    uint64_t a = now_ns();
    /* 2 KiB: above glibc's tcache limit (1032 bytes), so each call takes its arena's lock. */
    void *volatile p = malloc(2048);
    free(p);
    uint64_t d = now_ns() - a;
    if (d > worst) worst = d;
  }
  return NULL;
}

static int glibc_stall(long chunks) {
  void **v = malloc(sizeof *v * chunks);
  for (long i = 0; i < chunks; i++) v[i] = malloc(200);
  for (long i = 0; i < chunks; i += 2) free(v[i]); /* every other one: they cannot coalesce */
  struct mallinfo2 (*f)(void) = (struct mallinfo2 (*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
  pthread_t th;
  pthread_create(&th, NULL, allocator_thread, NULL);
  usleep(20000);
  worst = 0;
  uint64_t t[20];
  for (int i = 0; i < 20; i++) {
    uint64_t a = now_ns();
    struct mallinfo2 m = f();
    t[i] = now_ns() - a;
    if (m.arena == 1) puts("");
  }
  stop_flag = 1;
  pthread_join(th, NULL);
  qsort(t, 20, sizeof *t, cmp);
  printf("{\"chunks\": %ld, \"mallinfo2MedianNs\": %llu, \"worstOtherThreadNs\": %llu}\n", chunks,
         (unsigned long long)t[10], (unsigned long long)worst);
  return 0;
}

static pthread_barrier_t arenas_ready, arenas_done;
static long arena_chunks;

static void *fill_arena(void *arg) {
  (void)arg;
  void **v = malloc(sizeof *v * arena_chunks);
  for (long i = 0; i < arena_chunks; i++) v[i] = malloc(200);
  for (long i = 0; i < arena_chunks; i += 2) free(v[i]);
  pthread_barrier_wait(&arenas_ready);
  pthread_barrier_wait(&arenas_done); /* alive while measured: its arena stays attached */
  return NULL;
}

static int glibc_arenas(int threads, long chunks) {
  struct mallinfo2 (*f)(void) = (struct mallinfo2 (*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
  if (!f || threads < 1 || threads > 1024) return printf("{}\n"), 0;
  arena_chunks = chunks;
  pthread_barrier_init(&arenas_ready, NULL, threads + 1);
  pthread_barrier_init(&arenas_done, NULL, threads + 1);
  pthread_t *th = malloc(sizeof *th * threads);
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, fill_arena, NULL);
  pthread_barrier_wait(&arenas_ready);
  uint64_t mi[20], info[20];
  size_t heaps = 0;
  for (int i = 0; i < 20; i++) {
    uint64_t a = now_ns();
    struct mallinfo2 m = f();
    mi[i] = now_ns() - a;
    if (m.arena == 1) puts("");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    a = now_ns();
    malloc_info(0, out);
    fclose(out);
    info[i] = now_ns() - a;
    heaps = 0;
    for (char *p = buf; (p = strstr(p, "<heap nr=")) != NULL; p++) heaps++;
    free(buf);
  }
  pthread_barrier_wait(&arenas_done);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  qsort(mi, 20, sizeof *mi, cmp);
  qsort(info, 20, sizeof *info, cmp);
  printf("{\"threads\": %d, \"arenas\": %zu, \"chunksPerArena\": %ld, \"mallinfo2MedianNs\": %llu, \"mallocInfoMedianNs\": %llu}\n",
         threads, heaps, chunks, (unsigned long long)mi[10], (unsigned long long)info[10]);
  return 0;
}

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static void *touch_arena(void *arg) {
  (void)arg;
  void *volatile p = malloc(1 << 16);
  free(p);
  return NULL;
}

static int je_epoch(int threads, int n) {
  mallctl_fn mc = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  if (!mc) return printf("{}\n"), 0;
  pthread_t th[256];
  if (threads > 256) threads = 256;
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, touch_arena, NULL);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  const char *names[] = {"stats.allocated", "stats.active", "stats.resident", "stats.mapped", "stats.metadata", "stats.retained"};
  uint64_t *t = malloc(sizeof *t * n);
  for (int i = 0; i < n; i++) {
    uint64_t a = now_ns();
    uint64_t e = 1;
    size_t l = sizeof e;
    mc("epoch", &e, &l, &e, sizeof e);
    for (int k = 0; k < 6; k++) {
      size_t v, vl = sizeof v;
      mc(names[k], &v, &vl, NULL, 0);
    }
    t[i] = now_ns() - a;
  }
  unsigned narenas = 0;
  size_t l = sizeof narenas;
  mc("arenas.narenas", &narenas, &l, NULL, 0);
  qsort(t, n, sizeof *t, cmp);
  printf("{\"threads\": %d, \"narenas\": %u, \"medianNs\": %llu, \"p99Ns\": %llu}\n", threads, narenas,
         (unsigned long long)t[n / 2], (unsigned long long)t[(n * 99) / 100]);
  return 0;
}

static int maps(long regions) {
  long page = sysconf(_SC_PAGESIZE);
  /* REGIONS mappings in all (within vm.max_map_count, 65530 by default): every other page made
     readable and touched, so neighbouring mappings differ and none merge. */
  long half = regions / 2;
  char *base = mmap(NULL, (size_t)half * 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return perror("mmap"), 1;
  for (long i = 0; i < half; i++) {
    char *p = base + i * 2 * page;
    mprotect(p, page, PROT_READ | PROT_WRITE);
    p[0] = 1;
  }
  printf("ready\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "files")) return files(atoi(argv[2]), argc - 3, argv + 3);
  if (argc == 3 && !strcmp(argv[1], "mallinfo2")) return mi2(atoi(argv[2]));
  if (argc == 3 && !strcmp(argv[1], "glibc-stall")) return glibc_stall(atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "je-epoch")) return je_epoch(atoi(argv[2]), atoi(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "maps")) return maps(atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "glibc-arenas")) return glibc_arenas(atoi(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: see the comment at the top of floor.c\n");
  return 2;
}
