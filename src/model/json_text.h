// The text of memdx's JSON documents. Paths and command lines on Linux are bytes, not always
// UTF-8 (and a damaged trace can name anything): such bytes become U+FFFD instead of making the
// whole document fail to print.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace memdx::model {

inline std::string json_text(const nlohmann::ordered_json& document) {
  return document.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace memdx::model
