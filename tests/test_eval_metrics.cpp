// Image-level metrics against hand-computed cases.
#include <doctest/doctest.h>

#include "eval/metrics.hpp"
#include "runtime/error.hpp"

using recon::eval::auroc;

TEST_CASE("auroc: perfect, reversed, and chance orderings") {
  CHECK(auroc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}) == doctest::Approx(1.0));
  CHECK(auroc({0.9f, 0.8f, 0.2f, 0.1f}, {0, 0, 1, 1}) == doctest::Approx(0.0));
  // Pairs (pos, neg): 0.8>0.1, 0.8>0.2... written out: pos {0.3, 0.8}, neg {0.1, 0.5}:
  // 0.3>0.1 yes, 0.3>0.5 no, 0.8>0.1 yes, 0.8>0.5 yes -> 3/4.
  CHECK(auroc({0.1f, 0.3f, 0.5f, 0.8f}, {0, 1, 0, 1}) == doctest::Approx(0.75));
}

TEST_CASE("auroc: ties count one half") {
  // Everything tied: 0.5 exactly.
  CHECK(auroc({1, 1, 1, 1, 1}, {0, 1, 0, 1, 1}) == doctest::Approx(0.5));
  // pos {2, 1}, neg {1, 0}: 2>1 1, 2>0 1, 1=1 0.5, 1>0 1 -> 3.5/4.
  CHECK(auroc({2, 1, 1, 0}, {1, 1, 0, 0}) == doctest::Approx(0.875));
}

TEST_CASE("auroc: bad input is rejected") {
  CHECK_THROWS_WITH_AS(auroc({1, 2}, {0, 0}), doctest::Contains("needs both normal and anomalous"), recon::Error);
  CHECK_THROWS_WITH_AS(auroc({1, 2}, {0}), doctest::Contains("2 scores for 1 labels"), recon::Error);
  CHECK_THROWS_WITH_AS(auroc({1, 2}, {0, 2}), doctest::Contains("label 2"), recon::Error);
}
