// JSON text from Boost.JSON values, with numbers the way people and other JSON libraries write
// them: the shortest form that round-trips, in plain decimal when that is shorter (0.8316, 60,
// 1e-07). Boost 1.81's own serializer always writes doubles in exponent form (8.316E-1).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "boost/json/value.hpp"

namespace galley {

std::string JsonSerialize(const boost::json::value& value);
void JsonAppend(std::string& out, const boost::json::value& value);
// Appends `s` as a quoted JSON string (escaping quotes, backslashes and control characters).
void JsonAppendString(std::string& out, std::string_view s);
// Appends `d` as JsonAppend writes a double (null when it is not finite).
void JsonAppendDouble(std::string& out, double d);
// The first key that appears twice in one object of `text` (JSON that already parsed), if any.
// RFC 8259 §4 leaves duplicate names' meaning to implementations; an API that silently keeps one
// of them hides a client's mistake, so request parsers reject them.
// `max_depth` as the parse that accepted `text`.
std::optional<std::string> FindDuplicateKey(std::string_view text, size_t max_depth = 64);

}  // namespace galley
