// The module map of the traced process (every loaded ELF object with its address range), sent
// at start, after each dlopen/dlclose, and again into a forked child's new stream, so the
// reader can symbolize stacks with the files that were actually mapped.
#pragma once

namespace memdx::trace {

// Walks the loaded objects (dl_iterate_phdr); sends a module record for each new one and an
// unmodule record for each one gone, then lets the unwinder forget unmapped code.
void scan_modules() noexcept;

// In a forked child, on its new stream: the modules known to the parent, from memory (the
// loader's lock may have been held by a thread that does not exist in the child).
void send_known_modules() noexcept;

void modules_lock_for_fork() noexcept;
void modules_unlock_after_fork_parent() noexcept;
void modules_after_fork_child() noexcept;

}  // namespace memdx::trace
