// Model metadata the fuzz targets decode against: a text model and a multi-input numeric model.
#pragma once

#include "model/backend.h"

namespace galley::fuzz {

const model::ModelMetadata& TextModel();
const model::ModelMetadata& NumericModel();
// Decodes `body` as an inference request for each model and, when it decodes, encodes the
// decoded tensors back as a response; also decodes it as an /inference/analyze body.
void DecodeEverything(std::string_view body);

}  // namespace galley::fuzz
