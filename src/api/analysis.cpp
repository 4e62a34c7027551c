#include "analyze/analysis.h"
#include "analyze/trace_decode.h"
#include "api/errors.h"
#include "memdx/recording.h"

namespace memdx {

Verdict analyze_recording(const std::string& path) {
  try {
    return analyze::analyze_recording(path, {}).verdict;
  } catch (const store::StoreError& e) {
    api::throw_store_error(e);
  } catch (const analyze::TraceFormatError& e) {
    throw Error(ErrorKind::kBadRecording, path + ": " + e.what());
  }
}

}  // namespace memdx
