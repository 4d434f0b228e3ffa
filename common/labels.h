// Labels: a series' label names and values, sorted by name, names unique.
// The one label type of every layer: target discovery, relabeling, the
// config's static labels, the upload encoders. LabelSet
// (agent/model/types.h) is its immutable, hashed form that series are
// keyed by.
#pragma once

#include <map>
#include <string>

namespace ember {

using Labels = std::map<std::string, std::string>;

}  // namespace ember
