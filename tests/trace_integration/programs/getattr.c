/* memdx_tracee_getattr: each new thread's first call is pthread_getattr_np on itself. glibc
 * holds the thread's lock while pthread_getattr_np calls realloc, so a tracer that answers its
 * first hook on a thread with pthread_getattr_np (to learn the stack's bounds) waits on itself
 * forever: every JVM did exactly this. Prints what each thread found, the same with or without
 * a tracer. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kThreads = 4, kOwnStackBytes = 512 * 1024 };

struct Found {
  int error;
  size_t stack_bytes;
  size_t guard_bytes;
  void* block; /* an allocation after the call, so the trace has one from every thread */
};

static void* look_at_own_stack(void* arg) {
  struct Found* found = arg;
  pthread_attr_t attr;
  found->error = pthread_getattr_np(pthread_self(), &attr);
  if (found->error == 0) {
    void* low = NULL;
    pthread_attr_getstack(&attr, &low, &found->stack_bytes);
    pthread_attr_getguardsize(&attr, &found->guard_bytes);
    pthread_attr_destroy(&attr);
  }
  found->block = malloc(4096);
  return NULL;
}

/* One thread with the default attributes or, with own_stack_bytes, a stack of that size. */
static int start_and_join(size_t own_stack_bytes, struct Found* found) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (own_stack_bytes) pthread_attr_setstacksize(&attr, own_stack_bytes);
  pthread_t thread;
  int error = pthread_create(&thread, &attr, look_at_own_stack, found);
  pthread_attr_destroy(&attr);
  if (error != 0) {
    fprintf(stderr, "pthread_create: %s\n", strerror(error));
    return 0;
  }
  pthread_join(thread, NULL);
  return 1;
}

int main(void) {
  struct Found found[kThreads + 1];
  memset(found, 0, sizeof(found));
  for (int i = 0; i < kThreads; ++i) {
    if (!start_and_join(0, &found[i])) return 1;
  }
  if (!start_and_join(kOwnStackBytes, &found[kThreads])) return 1;
  int failures = 0;
  for (int i = 0; i <= kThreads; ++i) {
    printf("thread %d: pthread_getattr_np %s, stack %zu bytes, guard %zu bytes\n", i,
           found[i].error == 0 ? "ok" : strerror(found[i].error), found[i].stack_bytes, found[i].guard_bytes);
    failures += found[i].error != 0;
    free(found[i].block);
  }
  return failures == 0 ? 0 : 2;
}
