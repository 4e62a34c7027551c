// The tracer's one thread of its own: every 50 ms it sends the buffers of threads that have gone
// quiet, so what a thread recorded reaches memdx within 200 ms whatever the thread does next (it
// may block for hours, or the process may be SIGKILLed). A busy thread flushes its own buffer; the
// flusher only picks up what would otherwise wait.
//
// It blocks every signal (the program's handlers never run on it), runs with the tracer's guard
// set (nothing it does is recorded), and has a 64 KiB stack. A program that must be single-
// threaded for a moment (unshare or setns into a user or mount namespace) gets it: the hooks of
// those calls stop the flusher and start it again after.
#pragma once

namespace memdx::trace {

// Starts the flusher unless it runs. Only from points where the program holds no lock of
// libc's: the library's constructor, the child after fork, the hooks of unshare and setns.
void flusher_start() noexcept;
// Stops it and waits for it; it may be started again. Whether a running flusher was stopped.
bool flusher_stop() noexcept;
// In the child after fork: the flusher did not survive the fork (flusher_start starts the child's).
void flusher_after_fork_child() noexcept;

}  // namespace memdx::trace
