// JSON text from Boost.JSON values, with numbers the way people and other JSON libraries write
// them: the shortest form that round-trips, in plain decimal when that is shorter (0.8316, 60,
// 1e-07). Boost 1.81's own serializer always writes doubles in exponent form (8.316E-1).
#pragma once

#include <string>

#include "boost/json/value.hpp"

namespace galley {

std::string JsonSerialize(const boost::json::value& value);
void JsonAppend(std::string& out, const boost::json::value& value);
// Appends `s` as a quoted JSON string (escaping quotes, backslashes and control characters).
void JsonAppendString(std::string& out, std::string_view s);
// Appends `d` as JsonAppend writes a double (null when it is not finite).
void JsonAppendDouble(std::string& out, double d);

}  // namespace galley
