/* What the installed memdx traces: 1,000 blocks of 1 KiB kept by keep_some() until exit. */
#include <stdlib.h>
#include <string.h>

static char* kept[1000];

__attribute__((noinline)) void keep_some(void) {
  for (int i = 0; i < 1000; ++i) {
    kept[i] = malloc(1024);
    memset(kept[i], 1, 1024);
  }
}

int main(void) {
  keep_some();
  return kept[999][0] == 1 ? 0 : 1;
}
