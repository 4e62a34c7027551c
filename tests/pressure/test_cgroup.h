// A child memory cgroup for one test, under the test process's own cgroups: in the cgroup v1 memory
// hierarchy (with a hard limit) where it is mounted, and in the unified hierarchy (for a PSI file of
// its own) where that is mounted. Removed on destruction, after its processes are killed.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace memdx_test {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// The mount point of the cgroup hierarchy of fs type `fs_type` ("cgroup" with `option` among its
// super options, or "cgroup2"), from /proc/self/mountinfo; "" when none.
inline std::string cgroup_mount(const std::string& fs_type, const std::string& option) {
  std::istringstream lines(read_text("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(lines, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash));
    std::istringstream tail(line.substr(dash + 3));
    std::string id, parent, dev, root, mount_point, type, source, options;
    head >> id >> parent >> dev >> root >> mount_point;
    tail >> type >> source >> options;
    if (type != fs_type) continue;
    if (!option.empty() && ("," + options + ",").find("," + option + ",") == std::string::npos) continue;
    return mount_point;
  }
  return "";
}

// The path of this process's cgroup in hierarchy `controller` ("" for the unified one).
inline std::string own_cgroup(const std::string& controller) {
  std::istringstream lines(read_text("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    bool match = controller.empty() ? line.substr(0, first) == "0"
                                    : ("," + controllers + ",").find("," + controller + ",") != std::string::npos;
    if (match) return line.substr(second + 1);
  }
  return "";
}

class TestCgroup {
 public:
  // `limit_bytes`: the v1 memory.limit_in_bytes (or the v2 memory.max where v1 is absent).
  explicit TestCgroup(uint64_t limit_bytes) {
    std::string name = "memdx-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++);
    std::string v1_mount = cgroup_mount("cgroup", "memory");
    if (!v1_mount.empty()) {
      std::string dir = v1_mount + own_cgroup("memory");
      if (dir.back() != '/') dir += '/';
      dir += name;
      if (::mkdir(dir.c_str(), 0755) == 0) {
        v1_dir_ = dir;
        limited_ = write_text(v1_dir_ + "/memory.limit_in_bytes", std::to_string(limit_bytes));
      }
    }
    std::string v2_mount = cgroup_mount("cgroup2", "");
    if (!v2_mount.empty()) {
      std::string dir = v2_mount + own_cgroup("");
      if (dir.back() != '/') dir += '/';
      dir += name;
      if (::mkdir(dir.c_str(), 0755) == 0) {
        v2_dir_ = dir;
        if (v1_dir_.empty()) limited_ = write_text(v2_dir_ + "/memory.max", std::to_string(limit_bytes));
      }
    }
  }
  ~TestCgroup() {
    for (const std::string& dir : {v1_dir_, v2_dir_}) {
      if (dir.empty()) continue;
      for (const std::string& child : children_of(dir)) remove(child);  // enter_child's, first
      remove(dir);
    }
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  // Moves the calling process into the cgroup(s). For a forked child, before it allocates.
  bool enter() const {
    std::string pid = std::to_string(::getpid());
    bool ok = true;
    if (!v1_dir_.empty()) ok = write_text(v1_dir_ + "/cgroup.procs", pid) && ok;
    if (!v2_dir_.empty()) ok = write_text(v2_dir_ + "/cgroup.procs", pid) && ok;
    return ok;
  }

  // Moves the calling process into the child cgroup `name` of the cgroup(s), made if missing: a
  // process below the limited cgroup, as a service below the slice that holds the limit.
  bool enter_child(const std::string& name) const {
    std::string pid = std::to_string(::getpid());
    bool ok = true;
    for (const std::string& dir : {v1_dir_, v2_dir_}) {
      if (dir.empty()) continue;
      std::string child = dir + "/" + name;
      ::mkdir(child.c_str(), 0755);
      ok = write_text(child + "/cgroup.procs", pid) && ok;
    }
    return ok;
  }

  bool limited() const { return limited_; }
  const std::string& v1_dir() const { return v1_dir_; }
  const std::string& v2_dir() const { return v2_dir_; }

 private:
  // Nothing of a test may outlive it; a cgroup with processes cannot be removed.
  static void remove(const std::string& dir) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      std::istringstream pids(read_text(dir + "/cgroup.procs"));
      pid_t pid = 0;
      bool any = false;
      while (pids >> pid) {
        ::kill(pid, SIGKILL);
        any = true;
      }
      if (!any && ::rmdir(dir.c_str()) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }

  static std::vector<std::string> children_of(const std::string& dir) {
    std::vector<std::string> children;
    if (DIR* listing = ::opendir(dir.c_str())) {
      while (const dirent* entry = ::readdir(listing)) {
        std::string name = entry->d_name;
        if (entry->d_type == DT_DIR && name != "." && name != "..") children.push_back(dir + "/" + name);
      }
      ::closedir(listing);
    }
    return children;
  }

  static int& counter() {
    static int value = 0;
    return value;
  }

  std::string v1_dir_;
  std::string v2_dir_;
  bool limited_ = false;
};

}  // namespace memdx_test
