// What libmemdx exports. The library is built with hidden visibility: only what its public
// headers mark MEMDX_API is reachable from a program, so memdx's internals never clash with the
// program's own symbols (another copy of fmt or SQLite, say).
#pragma once

#define MEMDX_API __attribute__((visibility("default")))
