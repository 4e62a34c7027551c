// Text taken from the target (command lines, process names, paths, symbol names, cgroup paths)
// made safe to print on a terminal. A process can name itself anything: "\x1b]0;pwned\x07\x1b[2J"
// as argv[0] or comm would retitle the window and clear the screen if printed raw, and a newline
// could fake a line of memdx's own output. Only terminal text goes through here: JSON keeps the
// exact bytes (its encoder escapes controls itself) and HTML has its own escaping.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace memdx::model {

// `text` with every byte a terminal could act on made visible, the rest unchanged:
//   - C0 controls and DEL: "\n", "\t", "\r", otherwise "\xNN" (lowercase hex): "\x1b", "\x07", "\x7f";
//   - C1 controls (U+0080..U+009F, two bytes in UTF-8), the bidi embeddings, overrides, isolates and
//     marks, and the line and paragraph separators: "\uXXXX" ("\u009b", "\u202e"), because they
//     reorder or break the text around them and so could disguise it;
//   - bytes that are not valid UTF-8 (a stray continuation, an overlong form, a surrogate, a cut
//     sequence): "\xNN" each;
//   - printable UTF-8 (accents, CJK, emoji) and the backslash pass as they are, so ordinary names
//     and paths read unchanged. The escaped form is for reading, not for reversing: "\x1b" typed
//     literally and an escaped ESC look the same (the JSON output has the exact bytes).
std::string terminal_safe(std::string_view text);

// `text` cut to at most `max_bytes` bytes, "..." marking the cut, on a UTF-8 character boundary so
// that a multi-byte character is never split. Text within the limit comes back unchanged.
std::string shorten(std::string_view text, size_t max_bytes);

}  // namespace memdx::model
