#include "model/sentiment.h"

#include <cmath>

#include "common/strings.h"
#include "model/utf8.h"

namespace galley::model {

absl::Status CheckText(std::string_view text) {
  if (text.size() > kMaxTextBytes) {
    return absl::InvalidArgumentError(
        StrCat("text is ", text.size(), " bytes; the limit is ", kMaxTextBytes));
  }
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("text is not valid UTF-8");
  return absl::OkStatus();
}

Sentiment SentimentFromCompound(double c) {
  if (std::isnan(c)) c = 0;
  if (c >= 0.05) return {"Positive", static_cast<float>(0.5 + std::min(c, 1.0) / 2)};
  if (c <= -0.05) return {"Negative", static_cast<float>(0.5 + std::min(-c, 1.0) / 2)};
  return {"Neutral", static_cast<float>(1.0 - std::fabs(c) / 0.1)};
}

}  // namespace galley::model
