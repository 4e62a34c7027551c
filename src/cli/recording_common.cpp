#include "cli/recording_common.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "analyze/diagnose.h"
#include "analyze/snapshot.h"
#include "cli/live_view.h"
#include "cli/errors.h"
#include "proc/procfs.h"
#include "report/verdict_text.h"
#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/store_error.h"

namespace memdx::cli {

std::string default_recording_path(const std::string& name) {
  std::string safe;
  for (char c : name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (safe.empty()) safe = "target";
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &local);
  // Two runs in the same second must not collide: a recording is never overwritten.
  std::string path = fmt::format("./memdx-{}-{}.memdx", safe, stamp);
  for (int n = 2; ::access(path.c_str(), F_OK) == 0; ++n) path = fmt::format("./memdx-{}-{}-{}.memdx", safe, stamp, n);
  return path;
}

OutputFile::OutputFile(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "w")) {
  if (!file_) throw RuntimeError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
}

void OutputFile::write_all(const std::string& text) {
  if (!file_) return;
  std::rewind(file_.get());
  if (std::fwrite(text.data(), 1, text.size(), file_.get()) != text.size() || std::fflush(file_.get()) != 0) {
    throw RuntimeError(fmt::format("cannot write {}: {}", path_, std::strerror(errno)));
  }
}

model::RecordingMeta make_meta(const std::string& kind, const std::vector<std::string>& command,
                               int64_t interval_ms, pid_t root) {
  model::RecordingMeta meta;
  meta.kind = kind;
  meta.command = command;
  meta.interval_ms = interval_ms;
  meta.memdx_version = MEMDX_VERSION;
  auto now = std::chrono::system_clock::now();
  meta.started_at_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char iso[32];
  std::strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &utc);
  meta.started_at_utc = iso;
  utsname names{};
  if (::uname(&names) == 0) {
    meta.host = names.nodename;
    meta.kernel = names.release;
  }
  proc::ProcFs fs;
  model::SystemSnapshot system = analyze::take_system_snapshot(fs, root);
  if (system.mem_total_bytes > 0) meta.mem_total_bytes = system.mem_total_bytes;
  if (system.cgroup) meta.cgroup_max_bytes = system.cgroup->memory_max_bytes;
  return meta;
}

model::Verdict analyze_and_report(const std::string& recording_path, OutputFile& json_out) {
  model::Verdict verdict;
  try {
    store::RecordingReader reader = store::RecordingReader::open(recording_path);
    verdict = analyze::diagnose(reader);
  } catch (const store::StoreError& e) {
    throw RuntimeError(e.what());
  }
  std::string text = report::render_verdict_text(verdict);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  json_out.write_all(model::to_json(verdict).dump(2) + "\n");
  return verdict;
}

std::optional<record::SessionResult> record_tree(const RecordRequest& request, const std::function<pid_t()>& start_root) {
  try {
    std::optional<store::RecordingWriter> writer;
    writer.emplace(store::RecordingWriter::create(request.out_path, request.meta));
    record::block_session_signals();
    pid_t root = start_root();
    if (root < 0) {
      writer->close();
      writer.reset();
      std::remove(request.out_path.c_str());
      return std::nullopt;
    }
    writer->put_meta("root_pid", static_cast<int64_t>(root));

    proc::ProcFs fs;
    LiveView live;
    record::SessionOptions session;
    session.interval_ms = request.meta.interval_ms;
    session.duration_ms = request.duration_ms;
    session.root_is_child = request.root_is_child;
    // PSS reads may take 1% of each interval (at least 1 ms): memdx stays light at any rate.
    session.sampler.rollup_budget = std::chrono::microseconds(std::max<int64_t>(1000, request.meta.interval_ms * 10));
    if (auto cgroup = fs.memory_cgroup(root)) session.cgroup_directory = cgroup->directory;
    if (!request.quiet) session.on_tick = [&live](const record::TickStatus& status) { live.update(status); };
    record::SessionResult result = record::run_session(fs, *writer, root, session);
    writer->close();
    live.clear();
    return result;
  } catch (const store::StoreError& e) {
    throw RuntimeError(e.what());
  }
}

}  // namespace memdx::cli
