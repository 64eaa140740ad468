#include "gateway/latency_window.h"

#include <algorithm>
#include <cmath>

namespace galley::gateway {

LatencyWindow::LatencyWindow(LatencyWindowOptions options) : options_(options) {
  samples_.reserve(std::max<size_t>(1, options_.capacity));
}

void LatencyWindow::Add(Duration latency) {
  const size_t capacity = std::max<size_t>(1, options_.capacity);
  if (samples_.size() < capacity) {
    samples_.push_back(latency);
  } else {
    samples_[next_] = latency;
    next_ = (next_ + 1) % capacity;
  }
  ++since_computed_;
}

std::optional<Duration> LatencyWindow::Quantile() {
  if (samples_.size() < std::max<size_t>(1, options_.min_samples)) return std::nullopt;
  const size_t every = std::max<size_t>(1, options_.capacity / 8);
  if (!quantile_ || since_computed_ >= every) {
    std::vector<Duration> sorted = samples_;
    const auto rank =
        static_cast<size_t>(std::ceil(options_.quantile * static_cast<double>(sorted.size())));
    const size_t k = std::clamp<size_t>(rank, 1, sorted.size()) - 1;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    quantile_ = sorted[k];
    since_computed_ = 0;
  }
  return quantile_;
}

Duration LatencyWindow::AttemptTimeout(Duration cap) {
  const std::optional<Duration> q = Quantile();
  if (!q) return cap;
  const auto scaled = std::chrono::duration_cast<Duration>(*q * options_.multiplier);
  return std::min(cap, std::max(options_.floor, scaled));
}

}  // namespace galley::gateway
