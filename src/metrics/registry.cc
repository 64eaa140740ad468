#include "metrics/registry.h"

#include "prometheus/text_serializer.h"

namespace galley::metrics {

const std::vector<double>& DurationBuckets() {
  static const std::vector<double>* const kBuckets =
      new std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                              0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
  return *kBuckets;
}

std::string Registry::Exposition() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace galley::metrics
