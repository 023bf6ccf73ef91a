/* Scratch directories for the file-format tests: created under $TMPDIR
 * (or /tmp), listed to prove no temporary files are left behind, and
 * removed with their contents at the end of a test. Include it before any
 * system header: mkdtemp and dirent need POSIX.1-2008. */
#ifndef STRATA_TESTS_TMPDIR_H
#define STRATA_TESTS_TMPDIR_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char path[512];
} tmpdir;

/* Fills d->path with a fresh empty directory; returns 0 on success. */
static int tmpdir_make(tmpdir *d)
{
    const char *base = getenv("TMPDIR");
    snprintf(d->path, sizeof d->path, "%s/strata-test-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(d->path) ? 0 : -1;
}

/* "<dir>/<name>" in a static buffer slot (4 slots, reused in turn). Room
 * for the longest path and a dirent name, so snprintf never truncates. */
static const char *tmpdir_file(const tmpdir *d, const char *name)
{
    static char bufs[4][sizeof d->path + sizeof((struct dirent *)0)->d_name];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", d->path, name);
    return b;
}

/* Number of entries in the directory (excluding . and ..). */
static int tmpdir_count(const tmpdir *d)
{
    DIR *dir = opendir(d->path);
    if (!dir) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dir);
    return n;
}

static void tmpdir_remove(const tmpdir *d)
{
    DIR *dir = opendir(d->path);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tmpdir_file(d, e->d_name));
    closedir(dir);
    rmdir(d->path);
}

#endif
