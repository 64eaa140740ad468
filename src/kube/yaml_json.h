// YAML documents as JSON values (for manifests such as the InferenceModel CRD): maps, sequences
// and scalars, with plain scalars typed by YAML 1.2's core schema (null, true/false, integers,
// floats; anything else is a string) and quoted scalars always strings.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"

namespace galley::kube {

// The first document of `yaml`. InvalidArgument with the parser's line and column on a syntax
// error; InvalidArgument for an empty document.
absl::StatusOr<boost::json::value> YamlToJson(std::string_view yaml);

}  // namespace galley::kube
