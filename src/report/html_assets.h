// The HTML report's script and style sheet, embedded in the binary at build time from
// src/report/html_assets/ (see embed.cmake there): the page must open offline, with nothing
// fetched, so everything it needs is inlined into it.
#pragma once

#include <string_view>

namespace memdx::report::html_assets {

extern const std::string_view kReportJs;   // report.js: draws the charts and flame graphs
extern const std::string_view kReportCss;  // report.css

}  // namespace memdx::report::html_assets
