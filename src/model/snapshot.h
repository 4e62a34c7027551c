// The JSON form (memdx.inspect/1) of a memory snapshot, whose value types are memdx/snapshot.h's.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "memdx/snapshot.h"

namespace memdx::model {

// The value types are the public ones (memdx/snapshot.h): one definition for the library and memdx.
using memdx::category_description;
using memdx::category_name;
using memdx::CgroupSummary;
using memdx::FdSummary;
using memdx::GpuDevice;
using memdx::GpuSource;
using memdx::GpuUsage;
using memdx::InspectReport;
using memdx::kAllRegionCategories;
using memdx::MemoryTotals;
using memdx::ModuleUsage;
using memdx::Note;
using memdx::NoteKind;
using memdx::ProcessSnapshot;
using memdx::PsiSummary;
using memdx::Region;
using memdx::RegionCategory;
using memdx::RegionTotals;
using memdx::SystemSnapshot;
using memdx::to_string;
using memdx::tree_totals;
using memdx::TreeTotals;

nlohmann::ordered_json to_json(const InspectReport& report);

}  // namespace memdx::model
