// AUROC by ranking: average ranks over ties, then the Mann-Whitney U.
#include "eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/error.hpp"

namespace recon::eval {

double auroc(const std::vector<float>& scores, const std::vector<int>& labels) {
  RECON_CHECK(scores.size() == labels.size(),
              "auroc: " << scores.size() << " scores for " << labels.size() << " labels");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  for (float s : scores) RECON_CHECK(!std::isnan(s), "auroc: a score is NaN");
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum_pos = 0;  // sum of the (1-based, tie-averaged) ranks of the anomalies
  size_t n_pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = 0.5 * (double)(i + 1 + j);  // mean of ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      int l = labels[order[k]];
      RECON_CHECK(l == 0 || l == 1, "auroc: label " << l << " at index " << order[k] << " is not 0 or 1");
      if (l == 1) {
        rank_sum_pos += avg_rank;
        ++n_pos;
      }
    }
    i = j;
  }
  const size_t n_neg = labels.size() - n_pos;
  RECON_CHECK(n_pos > 0 && n_neg > 0, "auroc: needs both normal and anomalous samples (got " << n_neg
                                          << " normal, " << n_pos << " anomalous)");
  const double u = rank_sum_pos - (double)n_pos * (double)(n_pos + 1) / 2.0;
  return u / ((double)n_pos * (double)n_neg);
}

}  // namespace recon::eval
