// Detection metrics over image scores. Labels: 0 normal, 1 anomalous; a
// higher score means "more anomalous".
#pragma once
#include <vector>

namespace recon::eval {

// Area under the ROC curve, exact and tie-aware: the probability that a
// random anomaly scores above a random normal, ties counting one half (the
// Mann-Whitney U statistic divided by n0 n1; Hanley & McNeil 1982). Throws
// when a class is empty or the sizes differ.
double auroc(const std::vector<float>& scores, const std::vector<int>& labels);

}  // namespace recon::eval
