/* Two threads passing one byte back and forth through two pipes as fast as
 * they can: every pass is a wakeup and, when the other side was asleep, a
 * context switch on each side. The context-switch storm bench/offcpu runs
 * under each off-CPU profiler.
 *
 *   pingpong ROUND_TRIPS
 *
 * Prints "round_trips wall_s switches" (voluntary context switches of the
 * process's threads, from getrusage). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static long trips;

__attribute__((noinline)) static void pong_side(void) {
  char c;
  for (long i = 0; i < trips; ++i) {
    if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) exit(2);
  }
}

static void* ponger(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "ponger");
  pong_side();
  return NULL;
}

__attribute__((noinline)) static void ping_side(void) {
  char c = 'x';
  for (long i = 0; i < trips; ++i) {
    if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) exit(2);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pingpong ROUND_TRIPS\n");
    return 2;
  }
  trips = atol(argv[1]);
  if (pipe(ping) || pipe(pong)) return 2;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pthread_t t;
  if (pthread_create(&t, NULL, ponger, NULL)) return 2;
  ping_side();
  pthread_join(t, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%ld %.6f %ld\n", trips, (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
         ru.ru_nvcsw);
  return 0;
}
