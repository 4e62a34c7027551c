// What the output paths of a command name, and the check that no two of them name one file.
//
// An output is written where its path leads: `-` and the names of open descriptors
// (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N) are that descriptor; a symbolic link
// leads to the file it names. Two outputs that lead to one file would overwrite each other, and
// an output that leads to the recording `memdx report` reads would replace it: both are refused
// before anything starts.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace memdx::cli {

// The descriptor `path` names: 1 for "-", "/dev/stdout", "/dev/fd/1" and "/proc/self/fd/1",
// 2 for "/dev/stderr", N for "/dev/fd/N" and "/proc/self/fd/N"; nullopt for any other path.
// Whether that descriptor is open is not checked.
std::optional<int> named_descriptor(const std::string& path);

// Where the symbolic link at `path` leads, link after link, whether or not its end exists (a
// dangling link names the file to create); `path` itself when it is no link. A descriptor's name
// (/dev/stdout) ends the walk. Throws RuntimeError ("cannot write PATH: ...") on a loop of links,
// and on a link another user made in a sticky, world-writable directory such as /tmp: the
// kernel refuses to follow those (fs.protected_symlinks) and reading links by hand must not
// bypass that, or root running memdx would write wherever anyone's planted link points.
std::string follow_links(const std::string& path);

enum class OutputKind {
  kReport,     // written by OutputFile: `-` is standard output, links are followed
  kRecording,  // a SQLite file at exactly that path: `-` is a file of that name
};

// One output of a command, as the user named it.
struct NamedOutput {
  std::string label;  // the option, e.g. "--json"
  std::string path;   // empty: not asked for
  OutputKind kind = OutputKind::kReport;
};

// Throws UsageError when two outputs lead to the same file, or when one leads to `input_recording`
// (the recording `memdx report` reads; empty for none). The same file is the same device and inode
// when it exists, the same canonical name (the real path of its directory, and its own name) when
// it does not, and the same descriptor for `-`, /dev/stdout and their kin. A character device may
// be named twice: writing twice to /dev/null is harmless. Throws RuntimeError as follow_links does.
void check_distinct_outputs(const std::vector<NamedOutput>& outputs, const std::string& input_recording = {});

}  // namespace memdx::cli
