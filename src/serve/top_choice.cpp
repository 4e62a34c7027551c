#include "serve/top_choice.h"

#include <algorithm>
#include <functional>
#include <tuple>
#include <utility>

namespace memdx::serve {

std::optional<uint64_t> TopByPss::estimate(const Known& known, uint64_t rss_bytes) {
  // Pages gained since the reading count whole (they may be private), pages lost as they were.
  if (!known.pss_bytes) return std::nullopt;
  int64_t moved = static_cast<int64_t>(rss_bytes) - static_cast<int64_t>(known.rss_bytes);
  int64_t pss = static_cast<int64_t>(*known.pss_bytes) + moved;
  return static_cast<uint64_t>(std::clamp<int64_t>(pss, 0, static_cast<int64_t>(rss_bytes)));
}

std::vector<pid_t> TopByPss::choose(std::vector<TopCandidate> candidates, size_t count, int64_t now_ms,
                                    const ReadPss& read_pss) {
  last_reads_ = 0;
  last_unread_ = 0;
  // What is remembered of the processes still there (and not of a reused pid).
  std::unordered_map<pid_t, Known> kept;
  kept.reserve(std::min(known_.size(), candidates.size()));
  for (const TopCandidate& candidate : candidates) {
    auto found = known_.find(candidate.pid);
    if (found != known_.end() && found->second.start_ticks == candidate.start_ticks) {
      kept.emplace(candidate.pid, found->second);
    }
  }
  known_ = std::move(kept);
  if (count == 0) {
    chosen_.clear();
    return {};
  }

  std::sort(candidates.begin(), candidates.end(), [](const TopCandidate& a, const TopCandidate& b) {
    return a.rss_bytes != b.rss_bytes ? a.rss_bytes > b.rss_bytes : a.pid < b.pid;
  });
  // A process chosen last time ranks an eighth above its PSS: two of nearly equal size at the
  // N-th place would otherwise take turns, and each turn ends one series and starts another.
  auto ranked = [this](const TopCandidate& candidate, uint64_t bytes) {
    auto found = chosen_.find(candidate.pid);
    bool incumbent = found != chosen_.end() && found->second == candidate.start_ticks;
    return incumbent ? bytes + bytes / 8 : bytes;
  };
  // The best `count` so far as a min-heap of (rank, pid, start ticks): its front is the one to beat.
  std::vector<std::tuple<uint64_t, pid_t, uint64_t>> best;
  best.reserve(count);
  auto started = std::chrono::steady_clock::now();
  for (const TopCandidate& candidate : candidates) {
    // PSS <= RSS: once the N-th rank is at least what this RSS could rank, no process further
    // down can enter.
    if (best.size() == count && candidate.rss_bytes + candidate.rss_bytes / 8 <= std::get<0>(best.front())) break;
    std::optional<uint64_t> pss = candidate.known_pss_bytes;
    if (!pss) {
      auto found = known_.find(candidate.pid);
      const Known* known = found != known_.end() ? &found->second : nullptr;
      // A reading is kept for its refresh unless the process grew or shrank by more than an
      // eighth since (a model loading, a cache filling): then it is read again. A slow read waits
      // out its cost whatever happens.
      bool moved = known != nullptr && (candidate.rss_bytes > known->rss_bytes + known->rss_bytes / 8 ||
                                        candidate.rss_bytes < known->rss_bytes - known->rss_bytes / 8);
      bool recent = known != nullptr && !moved && now_ms - known->read_ms < options_.refresh.count();
      bool waiting = known != nullptr && now_ms < known->next_read_ms;
      if (recent || waiting) {
        pss = estimate(*known, candidate.rss_bytes);
      } else if (std::chrono::steady_clock::now() - started <= options_.read_budget) {
        auto read_started = std::chrono::steady_clock::now();
        pss = read_pss(candidate.pid);
        double read_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - read_started).count();
        known_[candidate.pid] = Known{candidate.start_ticks, candidate.rss_bytes, pss, now_ms,
                                      now_ms + static_cast<int64_t>(read_ms * options_.cost_factor)};
        ++last_reads_;
      } else {
        // Out of time: an older reading is a better guess than RSS; a later choice reads it.
        ++last_unread_;
        if (known != nullptr) pss = estimate(*known, candidate.rss_bytes);
      }
    }
    uint64_t value = std::min(pss.value_or(candidate.rss_bytes), candidate.rss_bytes);
    std::tuple<uint64_t, pid_t, uint64_t> entry{ranked(candidate, value), candidate.pid, candidate.start_ticks};
    if (best.size() < count) {
      best.push_back(entry);
      std::push_heap(best.begin(), best.end(), std::greater<>());
    } else if (entry > best.front()) {
      std::pop_heap(best.begin(), best.end(), std::greater<>());
      best.back() = entry;
      std::push_heap(best.begin(), best.end(), std::greater<>());
    }
  }
  std::sort(best.begin(), best.end(), std::greater<>());
  std::vector<pid_t> chosen;
  chosen.reserve(best.size());
  chosen_.clear();
  for (const auto& [rank, pid, start_ticks] : best) {
    chosen.push_back(pid);
    chosen_.emplace(pid, start_ticks);
  }
  return chosen;
}

}  // namespace memdx::serve
