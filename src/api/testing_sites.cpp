#include "api/testing_sites.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "analyze/heap_sites.h"
#include "analyze/symbolize.h"

namespace memdx::api {
namespace {

constexpr size_t kMaxCallers = 3;

std::string main_program_path() {
  std::error_code error;
  std::filesystem::path path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string() : path.string();
}

// The loaded ELF objects as the loader knows them: the exact load bias of each, which
// /proc/self/maps only implies. The vDSO and other objects without a file are left out.
int add_module(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto& modules = *static_cast<std::vector<analyze::ModuleMapping>*>(data);
  std::string path = info->dlpi_name ? info->dlpi_name : "";
  if (path.empty() && modules.empty()) path = main_program_path();
  if (path.empty() || path.front() != '/') return 0;
  uint64_t start = UINT64_MAX;
  uint64_t end = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD) continue;
    start = std::min<uint64_t>(start, info->dlpi_addr + header.p_vaddr);
    end = std::max<uint64_t>(end, info->dlpi_addr + header.p_vaddr + header.p_memsz);
  }
  if (start >= end) return 0;
  bool names_only = analyze::is_runtime_module(path);
  modules.push_back(analyze::ModuleMapping{path, info->dlpi_addr, start, end, names_only, 0, UINT64_MAX});
  return 0;
}

std::vector<analyze::ModuleMapping> loaded_modules() {
  std::vector<analyze::ModuleMapping> modules;
  dl_iterate_phdr(add_module, &modules);
  return modules;
}

// The file an address's code was loaded from ("" when none).
std::string module_of(const void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || !info.dli_fname) return {};
  return info.dli_fname;
}

testing::CodeFrame code_frame(const analyze::SourceFrame& frame) {
  return {frame.function.empty() ? analyze::format_frame(frame) : frame.function, frame.file, frame.line, frame.module};
}

// Walks a stack's frames (inlined ones included), innermost first, knowing which belong to the
// program itself and where the check (libmemdx) begins: frames past it are the test harness.
class StackReader {
 public:
  StackReader(analyze::Symbolizer& symbolizer, const testing::HeapRecorder& recorder)
      : symbolizer_(symbolizer),
        recorder_module_(module_of(reinterpret_cast<const void*>(recorder.arm))),
        library_module_(module_of(reinterpret_cast<const void*>(&testing::check_bounded))) {}

  // The site and its callers; site.function empty when no frame is in the program's own modules.
  // When the debug information lost the program's own frames (GCC at -O2 and above may drop an
  // inlined call's record), the innermost frame of the program's modules stands in: often
  // std::function's invoker of the body's lambda, which still names the function around it.
  testing::GrowthSite read(uint32_t stack_id, const testing::HeapRecorder& recorder) {
    std::array<uintptr_t, testing::kHeapRecorderMaxFrames> addresses{};
    size_t depth = recorder.stack(stack_id, addresses.data(), addresses.size());
    testing::GrowthSite site;
    std::optional<testing::CodeFrame> stand_in;
    bool found = false;
    for (size_t i = 0; i < depth; ++i) {
      for (const analyze::SourceFrame& frame : symbolizer_.resolve(addresses[i])) {
        if (frame.module == library_module_) {
          if (!found && stand_in) site.site = *stand_in;
          return site;
        }
        if (frame.module == recorder_module_ || analyze::is_runtime_module(frame.module)) continue;
        if (analyze::is_runtime_frame(frame)) {
          if (!stand_in) stand_in = code_frame(frame);
          continue;
        }
        if (!found) {
          site.site = code_frame(frame);
          found = true;
        } else if (site.callers.size() < kMaxCallers) {
          site.callers.push_back(code_frame(frame));
        } else {
          return site;
        }
      }
    }
    if (!found && stand_in) site.site = *stand_in;
    return site;
  }

 private:
  analyze::Symbolizer& symbolizer_;
  std::string recorder_module_;
  std::string library_module_;
};

}  // namespace

std::vector<testing::GrowthSite> name_growth_sites(const testing::HeapRecorder& recorder,
                                                   const std::vector<testing::HeapStackGrowth>& grown,
                                                   size_t max_sites) {
  analyze::Symbolizer symbolizer(loaded_modules());
  StackReader reader(symbolizer, recorder);
  // By site; each keeps the callers of its stack that grew most.
  using Key = std::tuple<std::string, std::string, uint32_t>;
  std::map<Key, std::pair<testing::GrowthSite, int64_t>> sites;
  for (const testing::HeapStackGrowth& stack : grown) {
    testing::GrowthSite site = reader.read(stack.stack_id, recorder);
    if (site.site.function.empty()) site.site.function = "(no frame of the program's own code)";
    Key key{site.site.function, site.site.file, site.site.line};
    auto [it, added] = sites.try_emplace(key, site, stack.growth_bytes);
    testing::GrowthSite& total = it->second.first;
    if (!added) {
      total.growth_bytes += stack.growth_bytes;
      total.growth_blocks += stack.growth_blocks;
      if (stack.growth_bytes > it->second.second) {
        total.callers = site.callers;
        it->second.second = stack.growth_bytes;
      }
    } else {
      total.growth_bytes = stack.growth_bytes;
      total.growth_blocks = stack.growth_blocks;
    }
  }
  std::vector<testing::GrowthSite> ranked;
  ranked.reserve(sites.size());
  for (auto& entry : sites) ranked.push_back(std::move(entry.second.first));
  std::sort(ranked.begin(), ranked.end(),
            [](const testing::GrowthSite& a, const testing::GrowthSite& b) { return a.growth_bytes > b.growth_bytes; });
  if (ranked.size() > max_sites) ranked.resize(max_sites);
  return ranked;
}

}  // namespace memdx::api
