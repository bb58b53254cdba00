// Anomaly-detection protocols over labelled datasets.
// One-class: normal class k trains on its training images minus a held-out
// calibration fraction (seeded split) and tests on the whole test set with
// label = (class != k). Hold-out: a set of normals (label 0) and anomalies
// (label 1), e.g. a PIPED class, splits its normals into train, calibration
// and test; the test set also holds every anomaly.
#pragma once
#include <cstdint>

#include "data/dataset.hpp"

namespace recon::data {

struct AnomalySplit {
  DatasetPtr train;        // normal images only, label 0
  DatasetPtr calibration;  // held-out normal images, label 0 (may be empty)
  DatasetPtr test;         // label 0 normal, 1 anomalous
};

// Throws when class k has no training images or the fraction leaves train
// or (for a fraction above 0) calibration empty.
AnomalySplit one_class_split(const DatasetPtr& train_set, const DatasetPtr& test_set, int normal_class,
                             double calibration_fraction, uint64_t seed);

// `all` holds labels 0 (normal) and 1 (anomalous). Fractions are of the
// normals; round(f * n) each.
AnomalySplit holdout_split(const DatasetPtr& all, double test_fraction, double calibration_fraction,
                           uint64_t seed);

}  // namespace recon::data
