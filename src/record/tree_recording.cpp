#include "record/tree_recording.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/recording_writer.h"
#include "store/schema.h"
#include "store/store_error.h"
#include "trace/format/chunk.h"
#include "trace/format/wire.h"

extern char** environ;

namespace memdx::record {

std::vector<std::string> traced_environment(const std::vector<std::string>& base, const std::string& library,
                                            const CollectorAddress& collector, const TraceSettings& settings) {
  namespace wire = trace::wire;
  constexpr std::string_view kPreload = "LD_PRELOAD=";
  std::vector<std::string> environment;
  std::string preload = std::string(kPreload) + library;
  for (const std::string& entry : base) {
    if (entry.starts_with(kPreload)) {
      if (entry.size() > kPreload.size()) preload += ":" + entry.substr(kPreload.size());
    } else if (!entry.starts_with("MEMDX_TRACE_")) {
      environment.push_back(entry);
    }
  }
  environment.push_back(preload);
  environment.push_back(fmt::format("{}={}", wire::kEnvSocket, collector.socket_path));
  environment.push_back(fmt::format("{}={}", wire::kEnvKey, collector.key_hex));
  environment.push_back(fmt::format("{}={}", wire::kEnvCollectorPid, collector.collector_pid));
  environment.push_back(fmt::format("{}={}", wire::kEnvMaxDepth, settings.max_depth));
  environment.push_back(fmt::format("{}={}", wire::kEnvSampleBytes, settings.sample_bytes));
  return environment;
}

std::vector<std::string> current_environment() {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry; ++entry) environment.emplace_back(*entry);
  return environment;
}

namespace {

void store_trace_chunks(TraceCollector& collector, store::RecordingWriter& writer) {
  for (StoredTraceChunk& chunk : collector.take_chunks()) {
    writer.add_trace_chunk(trace::kChunkKind, 0, chunk.t_ms, chunk.data);
  }
}

// Connections the collector refused, kept in the recording ("trace_refused": how many, and the
// first few with pid, uid and why) so that a report says the trace was offered foreign bytes.
void store_refusals(const TraceReceived& trace, store::RecordingWriter& writer) {
  if (trace.refused_count == 0) return;
  nlohmann::json list = nlohmann::json::array();
  for (const RefusedPeer& peer : trace.refused) {
    list.push_back({{"pid", peer.pid}, {"uid", peer.uid}, {"reason", refusal_text(peer.reason)}});
  }
  writer.put_meta(store::meta_key::kTraceRefusedConnections, static_cast<int64_t>(trace.refused_count));
  writer.put_meta(store::meta_key::kTraceRefused, list.dump());
}

SessionOptions session_options(const proc::ProcFs& fs, const TreeRecordingRequest& request,
                               const TreeRecordingObserver& observer, pid_t root) {
  SessionOptions session = session_options_for(fs, root, request.meta.interval_ms);
  session.duration_ms = request.duration_ms;
  session.root_is_child = request.root_is_child;
  session.root_command = request.meta.command;
  session.follow_tree = request.follow_tree;
  session.sample_memory = request.sample_memory;
  session.on_tick = observer.on_tick;
  session.on_root_exit = observer.on_root_exit;
  if (observer.wait_for_stop) {
    session.wait_for_stop = observer.wait_for_stop;
    session.raise_fd_limit = false;  // the host's limits are its own
  }
  return session;
}

// Writing failed: said once, and remembered as the session's store error.
void note_store_error(const TreeRecordingObserver& observer, std::optional<std::string>& store_error,
                      const std::string& reason) {
  if (store_error) return;
  store_error = reason;
  if (observer.on_store_error) observer.on_store_error(reason);
}

// After the session: what the processes sent before they ended is still in the sockets; read it
// all, then store it unless writing has already failed.
TraceReceived finish_trace(TraceCollector& collector, store::RecordingWriter& writer,
                           const TreeRecordingObserver& observer, std::optional<std::string>& store_error) {
  collector.finish(std::chrono::seconds(2));
  CollectorStats stats = collector.stats();
  TraceReceived trace{stats.streams,       stats.bytes_received, stats.bytes_compressed,
                      collector.refused(), stats.refused,        stats.dropped};
  if (!store_error) {
    try {
      store_trace_chunks(collector, writer);
      store_refusals(trace, writer);
    } catch (const store::StoreError& e) {
      note_store_error(observer, store_error, e.what());
    }
  }
  return trace;
}

}  // namespace

std::optional<TreeRecordingOutcome> record_tree(
    const proc::ProcFs& fs, const TreeRecordingRequest& request, const TreeRecordingObserver& observer,
    const std::function<pid_t(const std::vector<std::string>& environment)>& start_root) {
  std::optional<store::RecordingWriter> writer;
  writer.emplace(store::RecordingWriter::create(request.out_path, request.meta));
  // Before any thread starts: the collector's thread must not take the session's signals. A host
  // that waits its own way (a library) keeps its signals.
  if (!observer.wait_for_stop) block_session_signals();
  std::unique_ptr<TraceCollector> collector;
  std::vector<std::string> environment = request.environment;
  if (request.tracer_library) {
    collector = TraceCollector::start();
    environment = traced_environment(request.environment, *request.tracer_library, collector->address(), request.trace);
  }
  if (observer.before_root_starts) observer.before_root_starts();
  pid_t root = start_root(environment);
  if (root < 0) {
    collector.reset();
    writer->close();
    writer.reset();
    std::remove(request.out_path.c_str());
    return std::nullopt;
  }
  writer->put_meta(store::meta_key::kRootPid, static_cast<int64_t>(root));
  if (observer.root_started) observer.root_started(root);

  SessionOptions session = session_options(fs, request, observer, root);
  if (collector) {
    session.on_store = [&collector](store::RecordingWriter& w) { store_trace_chunks(*collector, w); };
    session.on_store_discard = [&collector] { collector->take_chunks(); };
  }
  session.on_store_error = observer.on_store_error;
  TreeRecordingOutcome outcome;
  outcome.session = run_session(fs, *writer, root, session);
  if (observer.session_ended) observer.session_ended(outcome.session);
  std::optional<std::string>& store_error = outcome.session.store_error;
  if (collector) outcome.trace = finish_trace(*collector, *writer, observer, store_error);
  try {
    writer->close();
  } catch (const store::StoreError& e) {
    note_store_error(observer, store_error, e.what());
  }
  return outcome;
}

}  // namespace memdx::record
