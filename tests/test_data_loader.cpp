// The loader (seeded order, batching, prefetching, parallel decoding,
// errors, progress hook), the one-class and hold-out splits, transforms,
// the RotNet rotation batch and the synthetic generator.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "data/folder.hpp"
#include "data/idx.hpp"
#include "data/image_io.hpp"
#include "data/loader.hpp"
#include "data/one_class.hpp"
#include "data/synthetic.hpp"
#include "data/transforms.hpp"
#include "runtime/error.hpp"
#include "test_data_util.hpp"

using namespace recon;
using namespace recon::data;
using namespace recon_test;

namespace {

// n images of (1, h, w): image i has pixel (y, x) = ((i + y * w + x) % 256) / 255; label i % 10.
std::shared_ptr<ArrayDataset> tagged_dataset(size_t n, int h = 4, int w = 4) {
  std::vector<uint8_t> px(n * h * w);
  std::vector<int> labels(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = (int)(i % 10);
    for (int k = 0; k < h * w; ++k) px[i * h * w + k] = (uint8_t)((i + k) % 256);
  }
  return std::make_shared<ArrayDataset>(1, h, w, std::move(px), std::move(labels), "tagged");
}

// Counts get() calls; optionally slow, optionally failing at one index.
class ProbeDataset : public Dataset {
 public:
  ProbeDataset(DatasetPtr base, int delay_ms = 0, size_t fail_at = SIZE_MAX)
      : base_(std::move(base)), delay_ms_(delay_ms), fail_at_(fail_at) {}
  size_t size() const override { return base_->size(); }
  Sample get(size_t i) const override {
    if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    ++calls;
    RECON_CHECK(i != fail_at_, "probe: sample " << i << " is broken");
    return base_->get(i);
  }
  int label(size_t i) const override { return base_->label(i); }
  std::string source(size_t i) const override { return base_->source(i); }
  mutable std::atomic<int> calls{0};

 private:
  DatasetPtr base_;
  int delay_ms_;
  size_t fail_at_;
};

std::vector<Batch> run_epoch(DataLoader& dl, int64_t epoch) {
  dl.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = dl.next()) out.push_back(std::move(*b));
  return out;
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].indices != b[i].indices) return false;
    if (a[i].images.to_vector() != b[i].images.to_vector()) return false;
    if (a[i].labels.to_vector() != b[i].labels.to_vector()) return false;
  }
  return true;
}

Image from_values(int c, int h, int w, std::vector<float> v) {
  Image img(c, h, w);
  REQUIRE(v.size() == img.numel());
  img.pixels = std::move(v);
  return img;
}

}  // namespace

// ---- thread pool ------------------------------------------------------------------------------------------

TEST_CASE("thread pool: every index once; the first exception is rethrown") {
  for (int threads : {0, 1, 3}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 20; ++round) {
      std::vector<std::atomic<int>> hits(257);
      pool.run(hits.size(), [&](size_t i) { ++hits[i]; });
      for (auto& h : hits) CHECK(h.load() == 1);
    }
    std::string m = error_of([&] {
      pool.run(50, [](size_t i) { RECON_CHECK(i != 17, "item " << i << " failed"); });
    });
    CHECK(has(m, "item 17 failed"));
    std::atomic<int> after{0};
    pool.run(10, [&](size_t) { ++after; });  // still usable
    CHECK(after == 10);
  }
}

// ---- loader --------------------------------------------------------------------------------------------

TEST_CASE("loader: batches cover a seeded permutation; rows match their samples") {
  auto ds = tagged_dataset(23);
  LoaderOptions opt;
  opt.batch_size = 5;
  opt.seed = 3;
  DataLoader dl(ds, opt);
  CHECK(dl.num_batches() == 5);
  auto batches = run_epoch(dl, 0);
  REQUIRE(batches.size() == 5);
  std::vector<size_t> seen;
  for (size_t b = 0; b < batches.size(); ++b) {
    const Batch& bt = batches[b];
    CHECK(bt.images.shape() == Shape{b < 4 ? 5 : 3, 1, 4, 4});
    CHECK(bt.labels.shape() == Shape{b < 4 ? 5 : 3});
    CHECK_FALSE(bt.masks.defined());
    auto px = bt.images.to_vector();
    auto lab = bt.labels.to_vector();
    for (int64_t r = 0; r < bt.size(); ++r) {
      size_t i = bt.indices[r];
      seen.push_back(i);
      CHECK(lab[r] == (float)(i % 10));
      for (int k = 0; k < 16; ++k) CHECK(px[r * 16 + k] == (float)((i + k) % 256) / 255.f);
    }
  }
  std::vector<size_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);
  // Shuffled: not the identity order.
  std::vector<size_t> identity(23);
  for (size_t i = 0; i < 23; ++i) identity[i] = i;
  CHECK(seen != identity);
  CHECK(seen == dl.epoch_order(0));
  // Without shuffling, the dataset order.
  opt.shuffle = false;
  DataLoader in_order(ds, opt);
  CHECK(in_order.epoch_order(0) == identity);
}

TEST_CASE("loader: same seed, same batches, whatever the threads; seed and epoch change the order") {
  auto ds = tagged_dataset(41, 6, 6);
  LoaderOptions base;
  base.batch_size = 4;
  base.seed = 11;
  // A random transform, so that determinism covers per-sample randomness too.
  base.transform = transforms::compose({transforms::random_hflip(0.5f), transforms::random_crop(4, 4, 1)});
  std::vector<std::vector<Batch>> runs;
  for (auto [workers, prefetch] : {std::pair{0, 0}, std::pair{3, 0}, std::pair{0, 2}, std::pair{3, 4}}) {
    LoaderOptions o = base;
    o.num_workers = workers;
    o.prefetch = prefetch;
    DataLoader dl(ds, o);
    runs.push_back(run_epoch(dl, 2));
    // A second pass of the same epoch repeats it exactly.
    CHECK(same_batches(run_epoch(dl, 2), runs.back()));
  }
  for (size_t r = 1; r < runs.size(); ++r) CHECK_MESSAGE(same_batches(runs[0], runs[r]), "run " << r);
  CHECK(runs[0][0].images.shape() == Shape{4, 1, 4, 4});
  DataLoader dl(ds, base);
  CHECK_FALSE(same_batches(run_epoch(dl, 3), runs[0]));
  LoaderOptions other = base;
  other.seed = 12;
  DataLoader dl2(ds, other);
  CHECK_FALSE(same_batches(run_epoch(dl2, 2), runs[0]));
  CHECK(dl.epoch_order(3) != dl.epoch_order(2));
}

TEST_CASE("loader: drop_last, progress hook and bad options") {
  auto ds = tagged_dataset(23);
  LoaderOptions opt;
  opt.batch_size = 5;
  opt.drop_last = true;
  std::vector<LoaderProgress> seen;
  opt.on_batch = [&](const LoaderProgress& p) { seen.push_back(p); };
  DataLoader dl(ds, opt);
  CHECK(dl.num_batches() == 4);
  auto b = run_epoch(dl, 1);
  CHECK(b.size() == 4);
  for (auto& x : b) CHECK(x.size() == 5);
  REQUIRE(seen.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(seen[i].epoch == 1);
    CHECK(seen[i].batch == (int64_t)i);
    CHECK(seen[i].num_batches == 4);
    CHECK(seen[i].samples_done == 5 * (int64_t)(i + 1));
    CHECK(seen[i].samples_total == 20);
  }
  opt.batch_size = 0;
  CHECK(has(error_of([&] { DataLoader bad(ds, opt); }), "batch_size must be positive"));
  opt.batch_size = 30;
  CHECK(has(error_of([&] { DataLoader bad(ds, opt); }), "make no full batch"));
  opt.batch_size = 5;
  DataLoader fresh(ds, opt);
  CHECK(has(error_of([&] { fresh.next(); }), "call start_epoch() before next()"));
}

TEST_CASE("loader: the background thread prefetches a bounded number of batches, in order") {
  auto base = tagged_dataset(40);
  auto probe = std::make_shared<ProbeDataset>(base, 2);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.num_workers = 2;
  opt.prefetch = 3;
  opt.seed = 5;
  DataLoader dl(probe, opt);
  dl.start_epoch(0);
  auto first = dl.next();
  REQUIRE(first);
  // Without asking, the producer decodes ahead: up to `prefetch` batches wait
  // in the queue and one more is being built.
  const int limit = 4 * (1 + 3 + 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (probe->calls < 4 * (1 + 3) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(probe->calls >= 4 * (1 + 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(probe->calls <= limit);
  // The prefetched batches equal those built without a background thread.
  std::vector<Batch> got = {*first};
  while (auto b = dl.next()) got.push_back(std::move(*b));
  LoaderOptions sync = opt;
  sync.prefetch = 0;
  sync.num_workers = 0;
  DataLoader ref(base, sync);
  CHECK(same_batches(got, run_epoch(ref, 0)));
  // Abandoning an epoch midway and destroying the loader must not hang.
  dl.start_epoch(1);
  CHECK(dl.next());
}

TEST_CASE("loader: a decoding error surfaces in next() with its message, then the epoch ends") {
  auto probe = std::make_shared<ProbeDataset>(tagged_dataset(20), 0, 13);
  for (int prefetch : {0, 2}) {
    LoaderOptions opt;
    opt.batch_size = 4;
    opt.shuffle = false;
    opt.prefetch = prefetch;
    DataLoader dl(probe, opt);
    dl.start_epoch(0);
    int good = 0;
    std::string m;
    for (;;) {
      try {
        auto b = dl.next();
        if (!b) break;
        ++good;
      } catch (const Error& e) {
        m = e.what();
      }
    }
    CHECK(good == 3);  // batches 0..2; batch 3 holds sample 13
    CHECK(has(m, "probe: sample 13 is broken"));
    CHECK_FALSE(dl.next());
  }
}

TEST_CASE("loader: images of different sizes in one batch are refused, naming both") {
  TempDir tmp;
  fs::create_directories(tmp / "n");
  write_png(tmp / "n/a.png", Image(1, 8, 8, 0.5f));
  write_png(tmp / "n/b.png", Image(1, 8, 9, 0.5f));
  FolderOptions fo;
  fo.normal_dir = tmp / "n";
  auto ds = load_folder(fo);
  LoaderOptions opt;
  opt.batch_size = 2;
  opt.shuffle = false;
  DataLoader dl(ds, opt);
  dl.start_epoch(0);
  std::string m = error_of([&] { dl.next(); });
  CHECK(has(m, "b.png is (1, 8, 9)"));
  CHECK(has(m, "a.png is (1, 8, 8)"));
  CHECK(has(m, "add a resize transform"));
  // With a resize transform the batch forms.
  opt.transform = transforms::resize(8, 8);
  DataLoader ok(ds, opt);
  ok.start_epoch(0);
  auto b = ok.next();
  REQUIRE(b);
  CHECK(b->images.shape() == Shape{2, 1, 8, 8});
}

TEST_CASE("loader: masks travel with their images through transforms") {
  TempDir tmp;
  SyntheticOptions so;
  so.size = 20;
  so.train_count = 2;
  so.test_good_count = 2;
  so.test_defect_count = 2;
  so.seed = 4;
  write_synthetic_mvtec(tmp.path(), "grid", so);
  auto test = load_mvtec(tmp.path(), "grid", Split::Test);
  LoaderOptions opt;
  opt.batch_size = 3;
  opt.seed = 9;
  opt.transform = transforms::compose({transforms::random_hflip(0.5f), transforms::random_vflip(0.5f),
                                       transforms::resize(16, 16, ResizeMode::Area)});
  DataLoader dl(test, opt);
  auto batches = run_epoch(dl, 0);
  int64_t total = 0;
  for (const Batch& b : batches) {
    REQUIRE(b.masks.defined());
    CHECK(b.masks.shape() == Shape{b.size(), 1, 16, 16});
    auto m = b.masks.to_vector();
    auto lab = b.labels.to_vector();
    for (int64_t r = 0; r < b.size(); ++r) {
      float area = 0;
      for (int k = 0; k < 256; ++k) {
        float v = m[r * 256 + k];
        CHECK((v == 0.f || v == 1.f));
        area += v;
      }
      CHECK(lab[r] == (b.kinds[r] == "good" ? 0.f : 1.f));
      if (b.kinds[r] == "good") CHECK(area == 0);
      else CHECK_MESSAGE(area > 0, b.sources[r]);
    }
    total += b.size();
  }
  CHECK(total == 2 + 3 * 2);
}

// ---- splits ------------------------------------------------------------------------------------------------

TEST_CASE("one-class split: class k minus a seeded calibration part; test labels = (class != k)") {
  auto train = tagged_dataset(100);  // labels i % 10: ten images per class
  auto test = tagged_dataset(50);
  AnomalySplit s = one_class_split(train, test, 3, 0.2, 7);
  REQUIRE(s.train->size() == 8);
  REQUIRE(s.calibration->size() == 2);
  std::set<size_t> parts;
  for (auto* d : {s.train.get(), s.calibration.get()}) {
    auto& sub = dynamic_cast<const SubsetDataset&>(*d);
    for (size_t k = 0; k < sub.size(); ++k) {
      CHECK(sub.label(k) == 0);
      CHECK(sub.get(k).label == 0);
      CHECK(train->label(sub.indices()[k]) == 3);
      parts.insert(sub.indices()[k]);
    }
  }
  CHECK(parts.size() == 10);  // disjoint, and together all of class 3
  REQUIRE(s.test->size() == 50);
  int anomalies = 0;
  for (size_t i = 0; i < 50; ++i) {
    CHECK(s.test->label(i) == (test->label(i) != 3 ? 1 : 0));
    anomalies += s.test->label(i);
  }
  CHECK(anomalies == 45);
  // Same seed, same split; another seed, another calibration set.
  auto again = one_class_split(train, test, 3, 0.2, 7);
  CHECK(dynamic_cast<const SubsetDataset&>(*again.calibration).indices() ==
        dynamic_cast<const SubsetDataset&>(*s.calibration).indices());
  bool differs = false;
  for (uint64_t seed = 8; seed < 14; ++seed) {
    auto o = one_class_split(train, test, 3, 0.2, seed);
    differs |= dynamic_cast<const SubsetDataset&>(*o.calibration).indices() !=
               dynamic_cast<const SubsetDataset&>(*s.calibration).indices();
  }
  CHECK(differs);
  CHECK(has(error_of([&] { one_class_split(train, test, 11, 0.2, 1); }), "class 11 has no training images (empty class)"));
  CHECK(has(error_of([&] { one_class_split(train, test, 3, 1.0, 1); }), "calibration fraction must be in [0, 1)"));
  CHECK(has(error_of([&] { one_class_split(train, test, 3, 0.01, 1); }), "leaves no calibration images"));
  CHECK(one_class_split(train, test, 3, 0.0, 1).calibration->size() == 0);
}

TEST_CASE("one-class split on Fashion-MNIST") {
  REQUIRE_MESSAGE(fs::is_directory(kFashionMnistDir),
                  kFashionMnistDir << " is missing: install the Debian package dataset-fashion-mnist");
  DatasetPtr train = load_fashion_mnist(Split::Train), test = load_fashion_mnist(Split::Test);
  AnomalySplit s = one_class_split(train, test, 0, 0.1, 1);
  CHECK(s.train->size() == 5400);
  CHECK(s.calibration->size() == 600);
  CHECK(s.test->size() == 10000);
  int normal = 0;
  for (size_t i = 0; i < s.test->size(); ++i) normal += s.test->label(i) == 0;
  CHECK(normal == 1000);
  LoaderOptions opt;
  opt.batch_size = 128;
  opt.seed = 1;
  DataLoader dl(s.train, opt);
  dl.start_epoch(0);
  auto b = dl.next();
  REQUIRE(b);
  CHECK(b->images.shape() == Shape{128, 1, 28, 28});
  for (float l : b->labels.to_vector()) CHECK(l == 0.f);
}

TEST_CASE("hold-out split: normals into train / calibration / test, anomalies all in test") {
  std::vector<FileEntry> entries;
  for (int i = 0; i < 30; ++i) entries.push_back({"f" + std::to_string(i) + ".png", {}, i < 20 ? 0 : 1, ""});
  auto all = std::make_shared<FileDataset>(entries, false);
  AnomalySplit s = holdout_split(all, 0.25, 0.25, 3);
  CHECK(s.train->size() == 10);
  CHECK(s.calibration->size() == 5);
  REQUIRE(s.test->size() == 15);
  int anomalies = 0;
  for (size_t i = 0; i < 15; ++i) anomalies += s.test->label(i);
  CHECK(anomalies == 10);
  std::set<std::string> names;
  for (auto* d : {s.train.get(), s.calibration.get(), s.test.get()})
    for (size_t i = 0; i < d->size(); ++i) names.insert(d->source(i));
  CHECK(names.size() == 30);
  for (size_t i = 0; i < s.train->size(); ++i) CHECK(s.train->label(i) == 0);
  CHECK(has(error_of([&] { holdout_split(all, 0.5, 0.5, 1); }), "sum below 1"));
}

// ---- transforms -------------------------------------------------------------------------------------------

TEST_CASE("resize: bilinear (align_corners = false), area and nearest against hand values") {
  Image a = from_values(1, 2, 2, {0, 1, 2, 3});
  Image up = resize(a, 4, 4, ResizeMode::Bilinear);
  // Source coordinates (o + 0.5) / 2 - 0.5 clamped: 0, 0.25, 0.75, 1.
  const float w[4] = {0, 0.25f, 0.75f, 1};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(up.at(0, y, x) == doctest::Approx(2 * w[y] + w[x]));
  Image b(1, 4, 4);
  for (int k = 0; k < 16; ++k) b.pixels[k] = (float)k;
  Image area = resize(b, 2, 2, ResizeMode::Area);
  CHECK(area.pixels == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});  // 2x2 block means
  Image row = from_values(1, 1, 3, {0, 3, 6});
  Image r2 = resize(row, 1, 2, ResizeMode::Area);
  CHECK(r2.pixels[0] == doctest::Approx((0 + 0.5 * 3) / 1.5));  // covers [0, 1.5)
  CHECK(r2.pixels[1] == doctest::Approx((0.5 * 3 + 6) / 1.5));  // covers [1.5, 3)
  Image near = resize(b, 2, 2, ResizeMode::Nearest);
  CHECK(near.pixels == std::vector<float>{0, 2, 8, 10});
  // Bilinear shrink by 2 samples between pixels: mean of 2x2 blocks too.
  CHECK(resize(b, 2, 2, ResizeMode::Bilinear).pixels == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});
}

TEST_CASE("crops, colour, normalize, flips and rot90") {
  Image b(2, 3, 4);
  for (size_t k = 0; k < b.numel(); ++k) b.pixels[k] = (float)k;
  Image c = center_crop(b, 1, 2);  // top 1, left 1
  CHECK(c.pixels == std::vector<float>{5, 6, 17, 18});
  CHECK(has(error_of([&] { crop(b, 2, 0, 2, 2); }), "outside the 3x4 image"));
  Image rgb = from_values(3, 1, 1, {1, 0.5f, 0});
  CHECK(to_gray(rgb).pixels[0] == doctest::Approx(0.299 + 0.587 * 0.5));
  CHECK(to_rgb(to_gray(rgb)).channels == 3);
  Image n = rgb;
  normalize(n, {0.5f, 0.5f, 0.5f}, {0.5f});
  CHECK(n.pixels == std::vector<float>{1, 0, -1});
  CHECK(has(error_of([&] { normalize(n, {0, 0}, {1}); }), "2 means and 1 stds for 3 channels"));
  Image q = from_values(1, 2, 2, {1, 2, 3, 4});
  CHECK(rot90(q, 1).pixels == std::vector<float>{2, 4, 1, 3});  // torch.rot90 k=1
  CHECK(rot90(q, 2).pixels == std::vector<float>{4, 3, 2, 1});
  CHECK(rot90(q, 3).pixels == std::vector<float>{3, 1, 4, 2});
  CHECK(rot90(q, -1).pixels == rot90(q, 3).pixels);
  Image r = rot90(b, 1);
  CHECK(r.height == 4);
  CHECK(r.width == 3);
  CHECK(rot90(rot90(r, 1), 2).pixels == b.pixels);
  CHECK(flip_horizontal(q).pixels == std::vector<float>{2, 1, 4, 3});
  CHECK(flip_vertical(q).pixels == std::vector<float>{3, 4, 1, 2});
}

TEST_CASE("random transforms: seeded, and the mask follows the image") {
  Sample s;
  s.image = Image(1, 6, 6);
  for (size_t k = 0; k < 36; ++k) s.image.pixels[k] = (float)k;
  s.mask = Image(1, 6, 6, 0.f);
  s.mask.at(0, 1, 4) = 1.f;  // marks the image pixel of value 10
  Transform t = transforms::compose(
      {transforms::random_hflip(0.5f), transforms::random_vflip(0.5f), transforms::random_crop(4, 4)});
  std::set<std::vector<float>> outcomes;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Sample a = s, b = s;
    Generator g1(seed), g2(seed);
    t(a, g1);
    t(b, g2);
    CHECK(a.image.pixels == b.image.pixels);
    CHECK(a.image.height == 4);
    outcomes.insert(a.image.pixels);
    // Wherever the marked pixel went, the mask went with it.
    for (size_t k = 0; k < 16; ++k) CHECK((a.mask.pixels[k] == 1.f) == (a.image.pixels[k] == 10.f));
  }
  CHECK(outcomes.size() > 10);  // the seeds explore flips and windows
  Sample never = s, always = s;
  Generator g(1);
  transforms::random_hflip(0.f)(never, g);
  transforms::random_hflip(1.f)(always, g);
  CHECK(never.image.pixels == s.image.pixels);
  CHECK(always.image.pixels == flip_horizontal(s.image).pixels);
}

TEST_CASE("rotation batch: 4 copies per image, labels 0..3") {
  Generator g(2);
  Tensor x = Tensor::uniform({2, 3, 5, 5}, g);
  RotationBatch rb = make_rotation_batch(x);
  CHECK(rb.images.shape() == Shape{8, 3, 5, 5});
  CHECK(rb.labels.to_vector() == std::vector<float>{0, 1, 2, 3, 0, 1, 2, 3});
  auto all = rb.images.to_vector();
  auto src = x.to_vector();
  for (int i = 0; i < 2; ++i) {
    Image im(3, 5, 5);
    std::copy(src.begin() + i * 75, src.begin() + (i + 1) * 75, im.pixels.begin());
    for (int k = 0; k < 4; ++k) {
      std::vector<float> got(all.begin() + (4 * i + k) * 75, all.begin() + (4 * i + k + 1) * 75);
      CHECK(got == rot90(im, k).pixels);
    }
  }
  CHECK(has(error_of([&] { make_rotation_batch(Tensor::zeros({1, 1, 2, 3})); }), "expected square"));
  RotationDataset rd(tagged_dataset(3));
  CHECK(rd.size() == 12);
  CHECK(rd.label(6) == 2);
  CHECK(rd.get(6).image.pixels == rot90(tagged_dataset(3)->get(1).image, 2).pixels);
}

// ---- synthetic data ------------------------------------------------------------------------------------------

TEST_CASE("synthetic: masks are exactly the painted pixels; same seed, same files") {
  SyntheticOptions so;
  so.size = 32;
  for (SyntheticDefect d : {SyntheticDefect::Scratch, SyntheticDefect::Hole, SyntheticDefect::Blob}) {
    CAPTURE(std::string(defect_name(d)));
    // The same generator state gives the same texture; the defect is drawn after.
    Generator g1(21), g2(21);
    Sample good = synthetic_sample(so, 99, SyntheticDefect::None, g1);
    Sample bad = synthetic_sample(so, 99, d, g2);
    CHECK(good.label == 0);
    CHECK(bad.label == 1);
    CHECK(bad.kind == defect_name(d));
    int area = 0, changed_inside = 0;
    for (size_t p = 0; p < good.image.plane(); ++p) {
      bool in = bad.mask.pixels[p] == 1.f;
      area += in;
      bool changed = false;
      for (int c = 0; c < 3; ++c) changed |= good.image.pixels[c * good.image.plane() + p] != bad.image.pixels[c * good.image.plane() + p];
      if (!in) CHECK(!changed);
      changed_inside += in && changed;
    }
    CHECK(area > 3);
    CHECK(area < 32 * 32 / 2);
    CHECK(changed_inside > area / 2);
  }
  TempDir a, b;
  so.train_count = 3;
  so.test_good_count = 1;
  so.test_defect_count = 1;
  so.seed = 5;
  write_synthetic_mvtec(a.path(), "c", so);
  write_synthetic_mvtec(b.path(), "c", so);
  for (const char* f : {"c/train/good/002.png", "c/test/hole/000.png", "c/ground_truth/blob/000_mask.png"}) {
    CAPTURE(std::string(f));
    REQUIRE(fs::exists(a / f));
    CHECK(read_bytes(a / f) == read_bytes(b / f));
  }
  // Different categories get different textures.
  write_synthetic_mvtec(a.path(), "d", so);
  CHECK(read_bytes(a / "c/train/good/000.png") != read_bytes(a / "d/train/good/000.png"));
}
