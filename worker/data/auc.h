// ExactAuc: the area under the ROC curve of scores against binary labels, computed
// exactly (Mann-Whitney U with tied scores counted as half), as the oracle of a generated
// data set needs it.
//
//   double auc = ExactAuc(scores.data(), labels.data(), scores.size());   // NaN if one class
//
// A label > 0.5 is a positive. O(n log n) time, O(n) extra memory.
// Thread-safety: reentrant. (Move to models/metrics once that exists; see the note there.)
#pragma once

#include <cstddef>

namespace mtps {

double ExactAuc(const float* scores, const float* labels, size_t n);

}  // namespace mtps
