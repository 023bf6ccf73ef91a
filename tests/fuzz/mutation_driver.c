/* A main() for fuzz targets built without libFuzzer.
 *
 * Takes libFuzzer-style arguments so ctest can run a target the same way
 * with either build:
 *     fuzz_json [-max_total_time=S] [-runs=N] [-seed=N] [-max_len=N] DIR|FILE...
 * It loads every regular file of the corpus directories as a seed, runs
 * each seed once, then runs a deterministic mutation loop (bit flips,
 * interesting bytes, truncation, insertion, erasure, duplication, splicing,
 * little-endian length-field and decimal-number tweaks, and length fields
 * that follow a size change) calling
 * LLVMFuzzerTestOneInput until the time or run budget ends, and prints a
 * one-line summary. Every input is passed in an exactly-sized heap copy so
 * AddressSanitizer catches reads past its end. There is no coverage
 * feedback; a small pool of earlier mutants lets mutations stack.
 *
 * If the target crashes (signal or sanitizer abort), the input is written
 * to ./crash-input-<run> before the process dies, so it can be replayed:
 *     fuzz_json crash-input-1234
 * (a file argument with -runs=0 just runs that file). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, dirent, clock_gettime */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t *data;
    size_t size;
} blob;

typedef struct {
    blob *items;
    size_t n, cap;
} blob_list;

/* The input being run, for the crash handler (this is a test program;
 * the handler has no other way to reach it). */
static const uint8_t *current_data;
static size_t current_size;
static unsigned long long current_run;

/* write() that ignores failure: there is nothing left to do about it. */
static void put(int fd, const void *p, size_t n)
{
    if (n && write(fd, p, n) < 0) return;
}

static void on_crash(int sig)
{
    char name[64];
    int len = snprintf(name, sizeof name, "crash-input-%llu", current_run);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        put(fd, current_data, current_size);
        close(fd);
        static const char msg[] = "mutation_driver: crashing input saved to ";
        put(2, msg, sizeof msg - 1);
        put(2, name, (size_t)len);
        put(2, "\n", 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void list_add(blob_list *l, const uint8_t *data, size_t size)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        if (!l->items) exit(2);
    }
    blob b = {malloc(size ? size : 1), size};
    if (!b.data) exit(2);
    if (size) memcpy(b.data, data, size);
    l->items[l->n++] = b;
}

static void load_file(blob_list *seeds, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (!buf) exit(2);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    list_add(seeds, buf, n);
    free(buf);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Loads the regular files of a directory, in name order (reproducible). */
static void load_dir(blob_list *seeds, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) exit(2);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) load_file(seeds, path);
        free(names[i]);
    }
    free(names);
}

/* xorshift64*: deterministic for a given -seed. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static size_t below(uint64_t *s, size_t n) { return n ? (size_t)(next_rand(s) % n) : 0; }

static const uint8_t interesting_bytes[] = {0,   1,   0x7f, 0x80, 0xff, '0', '9', '"',  '\\', '{', '}', '[',
                                            ']', ',', ':',  '-',  'e',  '.', ' ', '\'', '(',  ')', 'u', 0x93};
static const char *const interesting_numbers[] = {"0",  "1", "-1", "2", "7", "8", "4294967296", "18446744073709551615",
                                                  "9223372036854775807", "4611686018427387904", "576460752303423488", "1e308",
                                                  "99999999999999999999", "-0",
                                                  "1.5", "65535", "100000001"};

/* Replaces bytes [at, at+old_len) of buf (size *n, capacity cap) with
 * rep[0..rep_len), clipping at the capacity. */
static void replace(uint8_t *buf, size_t *n, size_t cap, size_t at, size_t old_len, const uint8_t *rep, size_t rep_len)
{
    size_t tail = *n - at - old_len;
    if (at + rep_len > cap) rep_len = cap - at;
    if (at + rep_len + tail > cap) tail = cap - at - rep_len;
    memmove(buf + at + rep_len, buf + at + old_len, tail);
    if (rep_len) memcpy(buf + at, rep, rep_len);
    *n = at + rep_len + tail;
}

static void mutate(uint8_t *buf, size_t *n, size_t cap, const blob_list *seeds, uint64_t *rng)
{
    size_t size = *n;
    switch (below(rng, 11)) {
    case 0: /* bit flip */
        if (size) buf[below(rng, size)] ^= (uint8_t)(1u << below(rng, 8));
        break;
    case 1: /* interesting byte */
        if (size) buf[below(rng, size)] = interesting_bytes[below(rng, sizeof interesting_bytes)];
        break;
    case 2: /* random byte */
        if (size) buf[below(rng, size)] = (uint8_t)next_rand(rng);
        break;
    case 3: /* truncate */
        *n = below(rng, size + 1);
        break;
    case 4: { /* insert 1..8 random or interesting bytes */
        uint8_t ins[8];
        size_t k = 1 + below(rng, 8);
        for (size_t i = 0; i < k; i++)
            ins[i] = below(rng, 2) ? (uint8_t)next_rand(rng) : interesting_bytes[below(rng, sizeof interesting_bytes)];
        replace(buf, n, cap, below(rng, size + 1), 0, ins, k);
        break;
    }
    case 5: /* erase a range */
        if (size) {
            size_t at = below(rng, size), k = 1 + below(rng, size - at < 16 ? size - at : 16);
            replace(buf, n, cap, at, k, NULL, 0);
        }
        break;
    case 6: /* duplicate a range of this input elsewhere in it */
        if (size) {
            size_t from = below(rng, size), k = 1 + below(rng, size - from < 64 ? size - from : 64);
            uint8_t chunk[64];
            memcpy(chunk, buf + from, k);
            replace(buf, n, cap, below(rng, size + 1), 0, chunk, k);
        }
        break;
    case 7: { /* splice: keep a prefix, continue with another seed's tail */
        const blob *o = &seeds->items[below(rng, seeds->n)];
        size_t at = below(rng, size + 1), from = below(rng, o->size + 1);
        replace(buf, n, cap, at, size - at, o->data + from, o->size - from);
        break;
    }
    case 8: { /* little-endian length field at a likely offset */
        static const size_t offsets[] = {0, 8, 8, 0, 4};
        static const size_t widths[] = {8, 2, 4, 4, 4};
        size_t which = below(rng, 5), at = offsets[which], w = widths[which];
        if (below(rng, 4) == 0) at = below(rng, size + 1), w = (size_t)1 << below(rng, 4);
        if (at + w > size) break;
        uint64_t v = 0;
        for (size_t i = 0; i < w; i++) v |= (uint64_t)buf[at + i] << (8 * i);
        switch (below(rng, 4)) {
        case 0: v += below(rng, 17) - 8; break;
        case 1: v = size - below(rng, 16); break;
        case 2: v = ~(uint64_t)0 >> below(rng, 64); break;
        default: v = below(rng, 2) ? 0 : v * 2;
        }
        for (size_t i = 0; i < w; i++) buf[at + i] = (uint8_t)(v >> (8 * i));
        break;
    }
    case 9: { /* replace a run of decimal digits with an interesting number */
        if (!size) break;
        size_t start = below(rng, size);
        while (start < size && !(buf[start] >= '0' && buf[start] <= '9')) start++;
        if (start == size) break;
        size_t end = start;
        while (end < size && buf[end] >= '0' && buf[end] <= '9') end++;
        const char *num = interesting_numbers[below(rng, sizeof interesting_numbers / sizeof *interesting_numbers)];
        replace(buf, n, cap, start, end - start, (const uint8_t *)num, strlen(num));
        break;
    }
    default: /* swap two bytes */
        if (size > 1) {
            size_t a = below(rng, size), b = below(rng, size);
            uint8_t t = buf[a];
            buf[a] = buf[b];
            buf[b] = t;
        }
    }
}

/* After mutations changed the size by delta, adds delta to a little-endian
 * length field at a likely place (safetensors: 8 bytes at 0; npy: 2 or 4
 * bytes at 8), so an edit inside a header keeps the header length right
 * and reaches the checks behind it. */
static void follow_length(uint8_t *buf, size_t n, int64_t delta, uint64_t *rng)
{
    static const size_t offsets[] = {0, 8, 8}, widths[] = {8, 2, 4};
    size_t which = below(rng, 3), at = offsets[which], w = widths[which];
    if (at + w > n) return;
    uint64_t v = 0;
    for (size_t i = 0; i < w; i++) v |= (uint64_t)buf[at + i] << (8 * i);
    v += (uint64_t)delta;
    for (size_t i = 0; i < w; i++) buf[at + i] = (uint8_t)(v >> (8 * i));
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run_one(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) exit(2);
    if (size) memcpy(copy, data, size);
    current_data = copy;
    current_size = size;
    LLVMFuzzerTestOneInput(copy, size);
    current_data = NULL;
    free(copy);
    current_run++;
}

int main(int argc, char **argv)
{
    double max_time = -1;
    long long max_runs = -1;
    uint64_t seed = 1;
    size_t max_len = 0;
    blob_list seeds = {0}, pool = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "-max_total_time=", 16) == 0) max_time = atof(a + 16);
        else if (strncmp(a, "-runs=", 6) == 0) max_runs = atoll(a + 6);
        else if (strncmp(a, "-seed=", 6) == 0) seed = strtoull(a + 6, NULL, 10);
        else if (strncmp(a, "-max_len=", 9) == 0) max_len = (size_t)atoll(a + 9);
        else if (a[0] == '-') fprintf(stderr, "mutation_driver: ignoring option %s\n", a);
        else {
            struct stat st;
            if (stat(a, &st) == 0 && S_ISDIR(st.st_mode)) load_dir(&seeds, a);
            else if (stat(a, &st) == 0) load_file(&seeds, a);
            else fprintf(stderr, "mutation_driver: no such corpus %s\n", a);
        }
    }
    if (max_time < 0 && max_runs < 0) max_time = 10;
    if (seeds.n == 0) list_add(&seeds, NULL, 0);
    size_t largest = 0;
    for (size_t i = 0; i < seeds.n; i++)
        if (seeds.items[i].size > largest) largest = seeds.items[i].size;
    if (max_len == 0) max_len = largest * 2 > 4096 ? largest * 2 : 4096;
    if (seed == 0) seed = 1;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL | 1;

    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_crash);

    double start = now_seconds(), elapsed = 0;
    for (size_t i = 0; i < seeds.n; i++) run_one(seeds.items[i].data, seeds.items[i].size);
    uint8_t *buf = malloc(max_len + 1);
    if (!buf) return 2;
    while (max_runs < 0 || (long long)current_run < max_runs) {
        if ((current_run & 15) == 0) {
            elapsed = now_seconds() - start;
            if (max_time >= 0 && elapsed >= max_time) break;
        }
        const blob *base = pool.n && below(&rng, 4) == 0 ? &pool.items[below(&rng, pool.n)] : &seeds.items[below(&rng, seeds.n)];
        size_t n = base->size < max_len ? base->size : max_len;
        memcpy(buf, base->data, n);
        for (size_t k = 1 + below(&rng, 4); k > 0; k--) mutate(buf, &n, max_len, &seeds, &rng);
        if (n != base->size && below(&rng, 2)) follow_length(buf, n, (int64_t)n - (int64_t)base->size, &rng);
        run_one(buf, n);
        if (below(&rng, 16) == 0) {
            if (pool.n < 64) {
                list_add(&pool, buf, n);
            } else {
                blob *slot = &pool.items[below(&rng, pool.n)];
                free(slot->data);
                slot->data = malloc(n ? n : 1);
                if (!slot->data) return 2;
                if (n) memcpy(slot->data, buf, n);
                slot->size = n;
            }
        }
    }
    elapsed = now_seconds() - start;
    printf("mutation_driver: %llu runs in %.1f s (%zu seeds, seed %llu, max_len %zu)\n", current_run, elapsed, seeds.n,
           (unsigned long long)seed, max_len);
    free(buf);
    for (size_t i = 0; i < seeds.n; i++) free(seeds.items[i].data);
    for (size_t i = 0; i < pool.n; i++) free(pool.items[i].data);
    free(seeds.items);
    free(pool.items);
    return 0;
}
