#include "memdx/history.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace memdx {

std::string to_json(const std::vector<MetricsRecord>& records) {
  // ordered_json: the values keep the caller's order, and "schema" comes first.
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const MetricsRecord& record : records) {
    nlohmann::ordered_json values = nlohmann::ordered_json::object();
    for (const auto& [name, value] : record.values) {
      values[name] = std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
    }
    array.push_back({{"t_unix_ms", record.t_unix_ms}, {"values", std::move(values)}});
  }
  nlohmann::ordered_json document = {{"schema", "memdx.history/1"}, {"records", std::move(array)}};
  // Names come from the program: invalid UTF-8 is replaced rather than thrown as nlohmann's own
  // exception type, which must not leave the library.
  return document.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace memdx
