#include "fs/recent_failures.h"

#include <algorithm>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace lazyfs::fs {

void RecentFailures::DropExpired(Clock::time_point now) {
  std::erase_if(failures_, [&](const Failure& f) { return now - f.at >= window_; });
}

void RecentFailures::Remember(uint64_t reader, uint64_t ino, uint64_t offset, uint64_t length, const Error& error,
                              Clock::time_point now) {
  std::lock_guard lock(mu_);
  DropExpired(now);
  if (failures_.size() >= kMaxEntries) failures_.erase(failures_.begin());
  failures_.push_back({reader, ino, offset, length, error, now});
  count_.store(failures_.size(), std::memory_order_relaxed);
}

std::optional<Error> RecentFailures::Find(uint64_t reader, uint64_t ino, uint64_t offset, uint64_t length,
                                          Clock::time_point now) {
  if (count_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  std::lock_guard lock(mu_);
  DropExpired(now);
  count_.store(failures_.size(), std::memory_order_relaxed);
  for (auto f = failures_.rbegin(); f != failures_.rend(); ++f) {
    if (f->reader != reader || f->ino != ino) continue;
    if (offset < f->offset || offset + length > f->offset + f->length) continue;
    auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(now - f->at);
    return Error(f->error).Context(
        fmt::format("not fetched again: the same reader's read of these bytes failed {} ago", ago));
  }
  return std::nullopt;
}

}  // namespace lazyfs::fs
