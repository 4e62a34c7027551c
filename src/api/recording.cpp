#include "memdx/recording.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "api/errors.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "record/meta.h"
#include "record/session.h"
#include "store/recording_writer.h"
#include "store/schema.h"

namespace memdx {

// Shared by the Recording and its thread; on the heap, so that moving a Recording moves nothing
// the thread holds.
struct Recording::State {
  std::string path;
  pid_t root = 0;
  std::optional<store::RecordingWriter> writer;
  record::SessionOptions session;

  std::mutex mutex;
  std::condition_variable wake;
  bool stop_requested = false;  // under mutex
  std::atomic<bool> finished{false};
  std::optional<std::string> store_error;  // written by the thread before `finished`
  std::thread thread;
  bool stopped = false;

  // The thread: samples until stop(), the duration or the end of the tree, then closes the file.
  void record() {
    try {
      record::SessionResult result = record::run_session(proc::ProcFs(), *writer, root, session);
      store_error = result.store_error;
      writer->close();
    } catch (const store::StoreError& e) {
      if (!store_error) store_error = e.what();
    } catch (const std::exception& e) {
      if (!store_error) store_error = e.what();
    }
    writer.reset();
    finished = true;
  }

  // What the session waits on between samples: stop(), never the host's signals.
  bool wait_for_stop(int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex);
    return wake.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return stop_requested; });
  }
};

Recording::Recording(std::unique_ptr<State> state) : state_(std::move(state)) {}
Recording::Recording(Recording&&) noexcept = default;
Recording& Recording::operator=(Recording&& other) noexcept {
  if (this != &other) {
    try {
      if (state_) stop();
    } catch (const Error&) {  // a move cannot report it; the file keeps what was written
    }
    state_ = std::move(other.state_);
  }
  return *this;
}

Recording::~Recording() {
  try {
    if (state_) stop();
  } catch (const Error&) {  // a destructor cannot report it; the file keeps what was written
  }
}

Recording Recording::start(pid_t pid, const std::string& path, const RecordOptions& options) {
  api::check_pid(pid);
  if (options.interval_ms < 10) {
    throw Error(ErrorKind::kInvalidArgument,
                "an interval of " + std::to_string(options.interval_ms) + " ms is too short: at least 10 ms");
  }
  if (options.duration_ms && *options.duration_ms <= 0) {
    throw Error(ErrorKind::kInvalidArgument, "a recording's duration must be positive");
  }
  proc::ProcFs fs;
  auto cmdline = fs.read_pid_file(pid, "cmdline");
  if (!cmdline.ok()) api::throw_read_error(cmdline.error());
  std::vector<std::string> command = proc::parse_cmdline(*cmdline);

  auto state = std::make_unique<State>();
  state->path = path;
  state->root = pid;
  try {
    state->writer.emplace(
        store::RecordingWriter::create(path, record::make_meta(fs, "watch", command, options.interval_ms, pid)));
    state->writer->put_meta(store::meta_key::kRootPid, static_cast<int64_t>(pid));
  } catch (const store::StoreError& e) {
    api::throw_store_error(e);
  }
  state->session = record::session_options_for(fs, pid, options.interval_ms);
  state->session.duration_ms = options.duration_ms;
  state->session.root_command = command;
  state->session.raise_fd_limit = false;  // the host's limits are its own
  State* shared = state.get();
  state->session.wait_for_stop = [shared](int64_t timeout_ms) { return shared->wait_for_stop(timeout_ms); };
  try {
    state->thread = std::thread([shared] { shared->record(); });
  } catch (const std::system_error& e) {
    throw Error(ErrorKind::kSystem, std::string("cannot start the recording's thread: ") + e.what());
  }
  return Recording(std::move(state));
}

void Recording::stop() {
  if (!state_ || state_->stopped) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop_requested = true;
  }
  state_->wake.notify_all();
  state_->thread.join();
  state_->stopped = true;
  if (state_->store_error) throw Error(ErrorKind::kSystem, *state_->store_error);
}

bool Recording::finished() const {
  return state_ && state_->finished;
}

const std::string& Recording::path() const {
  static const std::string kNone;
  return state_ ? state_->path : kNone;
}

}  // namespace memdx
