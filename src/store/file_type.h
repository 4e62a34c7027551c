// The type of a file, in the words of the one-line messages about paths ("it is a FIFO"): shared
// by the recording writer and the commands that check their outputs and inputs.
#pragma once

#include <sys/stat.h>

namespace memdx::store {

// "a FIFO", "a character device", ... from the st_mode of stat/lstat.
inline const char* file_type_name(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a file of unknown type";
}

}  // namespace memdx::store
