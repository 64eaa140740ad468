// The shared first step of the text models' pre-processing (text_classifier.h, text_embedder.h):
// every text of a BYTES tensor checked (sentiment.h's CheckText) and turned into token ids by a
// tokenizer, then laid out as one [rows, longest] INT64 tensor padded with 0.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tensor.h"

namespace galley::model {

struct TokenRows {
  std::vector<int64_t> ids;  // every row's ids, one after the other
  std::vector<size_t> ends;  // where each row's ids end in `ids`
  size_t longest = 0;        // the longest row's length

  size_t rows() const { return ends.size(); }
  size_t length(size_t row) const { return ends[row] - (row == 0 ? 0 : ends[row - 1]); }
  // The rows as one INT64 tensor [rows, longest], padded with 0.
  Tensor Padded(std::string name) const;
};

// Appends the ids of one text to the vector.
using Encoder = std::function<void(std::string_view, std::vector<int64_t>&)>;

// InvalidArgument naming the row when a text is not valid UTF-8 or too long, or when `text`
// has no rows.
absl::StatusOr<TokenRows> TokenizeRows(const Tensor& text, const Encoder& encode);

}  // namespace galley::model
