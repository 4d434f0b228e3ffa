/* A "service" for bench/ship: spins forever through a small call tree, so
 * every sample has a few user frames to unwind and symbolize. Built with
 * frame pointers. bench/ship/run.sh runs copies of it under 20 names. */
#include <stdint.h>

#define NOINLINE __attribute__((noinline))

static volatile uint64_t sink;

NOINLINE static uint64_t compute(uint64_t n) {
  uint64_t x = sink;
  for (uint64_t i = 0; i < n; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}
NOINLINE static uint64_t parse(int kind) { return compute(2000 + 300 * (uint64_t)kind); }
NOINLINE static uint64_t render(int kind) { return compute(1500 + 200 * (uint64_t)kind); }
NOINLINE static uint64_t handle_request(int kind) { return parse(kind) + render(kind); }
NOINLINE static uint64_t serve(void) {
  uint64_t s = 0;
  for (int k = 0; k < 8; ++k) s += handle_request(k);
  return s;
}

int main(void) {
  for (;;) sink += serve();
}
