// The sentiment pipeline's pre- and post-processing stages, shared by every sentiment backend:
// text checks before the model, and compound score -> label and confidence after it.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace galley::model {

// Pre-processing: a text must be valid UTF-8 and at most kMaxTextBytes long.
inline constexpr size_t kMaxTextBytes = 64 * 1024;
absl::Status CheckText(std::string_view text);

struct Sentiment {
  std::string_view label;  // "Positive", "Negative" or "Neutral"
  float confidence;        // in [0.5, 1]
};

// Post-processing of a VADER compound score c in [-1, 1], with the thresholds VADER's authors
// recommend (c >= 0.05 positive, c <= -0.05 negative, else neutral):
//   Positive / Negative: confidence = 0.5 + |c| / 2      (0.525 .. 1)
//   Neutral:             confidence = 1 - |c| / 0.1      (0.5 .. 1, 1 at c = 0)
Sentiment SentimentFromCompound(double compound);

}  // namespace galley::model
