/* How this disk serves concurrent fdatasync calls (docs/benchmarks.md, "Redis door: end-to-end
 * latency…"): THREADS threads each write 5,000 bytes at the next offset of one preallocated
 * file, then fdatasync it, for 3 seconds; prints fsyncs per second and their mean time.
 *
 *   gcc -O2 -pthread scripts/fsync-probe.c -o /tmp/fsync-probe
 *   /tmp/fsync-probe THREADS [FILE]      # FILE defaults to ./fsync-probe.dat, removed after
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WRITE_BYTES 5000
#define FILE_MIB 256
#define THREADS_MAX 16

static int fd;
static atomic_long next_offset;
static atomic_int stop;
static long syncs[THREADS_MAX];
static double sync_seconds[THREADS_MAX];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *writer(void *arg) {
    long index = (long)arg;
    char buffer[WRITE_BYTES];
    memset(buffer, 'x', sizeof buffer);
    while (!atomic_load(&stop)) {
        long offset = atomic_fetch_add(&next_offset, WRITE_BYTES);
        if (offset + WRITE_BYTES > (long)FILE_MIB << 20) break;
        if (pwrite(fd, buffer, WRITE_BYTES, offset) != WRITE_BYTES) { perror("pwrite"); exit(1); }
        double started = now();
        if (fdatasync(fd) != 0) { perror("fdatasync"); exit(1); }
        sync_seconds[index] += now() - started;
        syncs[index]++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    const char *path = argc > 2 ? argv[2] : "fsync-probe.dat";
    if (threads < 1 || threads > THREADS_MAX) { fprintf(stderr, "THREADS is 1..%d\n", THREADS_MAX); return 2; }
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); return 1; }
    /* Written, not just allocated: the probe's writes then change no file size or extent. */
    char *zeros = calloc(1, 1 << 20);
    for (int i = 0; i < FILE_MIB; i++)
        if (write(fd, zeros, 1 << 20) != 1 << 20) { perror("write"); return 1; }
    fsync(fd);
    pthread_t ids[THREADS_MAX];
    for (long i = 0; i < threads; i++) pthread_create(&ids[i], NULL, writer, (void *)i);
    double started = now();
    sleep(3);
    atomic_store(&stop, 1);
    long total = 0;
    double seconds = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        total += syncs[i];
        seconds += sync_seconds[i];
    }
    double elapsed = now() - started;
    printf("threads=%d fsyncs/s=%.0f mean=%.0f us\n", threads, total / elapsed, seconds / total * 1e6);
    close(fd);
    unlink(path);
    free(zeros);
    return 0;
}
