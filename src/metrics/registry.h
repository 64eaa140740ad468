// The process's metric registry and its Prometheus text exposition (format 0.0.4).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "prometheus/registry.h"

namespace galley::metrics {

// Buckets for durations in seconds, from 100 µs to 30 s.
const std::vector<double>& DurationBuckets();

class Registry {
 public:
  Registry() : registry_(std::make_shared<prometheus::Registry>()) {}
  prometheus::Registry& prom() { return *registry_; }
  // The text exposition of every family. Thread-safe.
  std::string Exposition() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace galley::metrics
