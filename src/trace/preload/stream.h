// The connection of this process image to memdx's collector: one UNIX stream socket, written
// under a mutex by whichever thread flushes. Nothing here unwinds or allocates, so holding the
// mutex is short (one sendmsg).
//
// Trust runs both ways. Before sending anything the tracer checks that the socket's listener is
// the collector memdx named (its pid, and its uid is ours or root): a name taken over after memdx
// exited learns nothing. Its first bytes are the run's secret (wire::StreamAuth), which the
// collector checks before it stores a byte.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "trace/format/wire.h"

namespace memdx::trace {

// Where the collector listens and how to prove this process is one memdx started.
struct StreamTarget {
  char socket_path[108];
  uint8_t key[wire::kKeyBytes];
  pid_t collector_pid;
};

// Connects to the collector, checks it, and sends the secret and the hello. False when memdx is
// not there or the listener is not memdx's collector.
bool stream_open(const StreamTarget& target, uint64_t sample_bytes, uint32_t max_depth, uint32_t hello_flags) noexcept;

// After fork, in the child: releases the lock the prepare handler held and drops the parent's
// connection (without touching the parent's socket state). stream_open may then open the child's.
void stream_after_fork_child() noexcept;

bool stream_is_open() noexcept;

// Sends one batch: header + the given pieces, all or nothing from the reader's view (the lock
// keeps batches whole). Returns false and closes the stream when the collector has gone; the
// tracer then stops recording.
bool stream_send(wire::BatchKind kind, pid_t tid, const iovec* pieces, int piece_count) noexcept;

// The socket's descriptor, for the hooks of close, close_range, closefrom, dup2 and dup3: a
// program that closes every descriptor (daemons do) must not cut the trace. -1 when none.
int stream_descriptor() noexcept;
// dup2/dup3 are about to put another file at `fd`: when that is the socket, the socket moves to
// another descriptor first.
void stream_move_off(int fd) noexcept;

// fork(): the prepare handler takes the lock so that the child never sees it held mid-batch;
// the parent releases it, the child re-initialises it.
void stream_lock_for_fork() noexcept;
void stream_unlock_after_fork_parent() noexcept;

uint64_t monotonic_ns() noexcept;
// CLOCK_MONOTONIC_COARSE (a few ms resolution, no syscall): for the tracer's own timers.
uint64_t coarse_ns() noexcept;

}  // namespace memdx::trace
