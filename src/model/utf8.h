// UTF-8 validation for text inputs.
#pragma once

#include <string_view>

namespace galley::model {

// True if `text` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace galley::model
