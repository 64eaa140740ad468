#include "model/token_rows.h"

#include <algorithm>

#include "common/strings.h"
#include "model/sentiment.h"

namespace galley::model {

Tensor TokenRows::Padded(std::string name) const {
  Tensor t{std::move(name),
           DataType::kInt64,
           {static_cast<int64_t>(rows()), static_cast<int64_t>(longest)},
           {},
           {}};
  t.raw.assign(rows() * longest * sizeof(int64_t), 0);
  auto* out = reinterpret_cast<int64_t*>(t.raw.data());
  size_t from = 0;
  for (size_t i = 0; i < rows(); ++i) {
    std::copy(ids.begin() + static_cast<std::ptrdiff_t>(from),
              ids.begin() + static_cast<std::ptrdiff_t>(ends[i]), out + i * longest);
    from = ends[i];
  }
  return t;
}

absl::StatusOr<TokenRows> TokenizeRows(const Tensor& text, const Encoder& encode) {
  const size_t rows = text.bytes.size();
  if (rows == 0) return absl::InvalidArgumentError("input 'text' has no elements");
  TokenRows out;
  out.ends.reserve(rows);
  size_t start = 0;
  for (size_t i = 0; i < rows; ++i) {
    if (absl::Status st = CheckText(text.bytes[i]); !st.ok()) {
      return absl::InvalidArgumentError(StrCat("text[", i, "]: ", st.message()));
    }
    encode(text.bytes[i], out.ids);
    out.longest = std::max(out.longest, out.ids.size() - start);
    start = out.ids.size();
    out.ends.push_back(start);
  }
  return out;
}

}  // namespace galley::model
