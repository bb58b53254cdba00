// ThreadPool, batch assembly and the prefetching DataLoader.
#include "data/loader.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "runtime/error.hpp"

namespace recon::data {

// ---- ThreadPool ----------------------------------------------------------------------------------

struct ThreadPool::Job {
  const std::function<void(size_t)>* fn = nullptr;
  size_t n = 0;
  std::atomic<size_t> next{0};
  size_t finished = 0;  // guarded by done_mutex
  std::exception_ptr error;
  std::mutex done_mutex;
  std::condition_variable done;
};

ThreadPool::ThreadPool(int num_threads) {
  RECON_CHECK(num_threads >= 0, "ThreadPool: negative thread count " << num_threads);
  for (int i = 0; i < num_threads; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

// Takes indices until none are left. fn is called only for i < n, and run()
// waits for all n, so a thread that arrives late never calls a stale fn.
void ThreadPool::work(Job& job) {
  for (;;) {
    size_t i = job.next.fetch_add(1);
    if (i >= job.n) return;
    std::exception_ptr err;
    try {
      (*job.fn)(i);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(job.done_mutex);
    if (err && !job.error) job.error = err;
    if (++job.finished == job.n) job.done.notify_all();
  }
}

void ThreadPool::worker() {
  uint64_t seen = 0;
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(mutex_);
      wake_.wait(lk, [&] { return stop_ || job_id_ != seen; });
      if (stop_) return;
      seen = job_id_;
      job = job_;
    }
    if (job) work(*job);
  }
}

void ThreadPool::run(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  if (!threads_.empty()) {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      job_ = job;
      ++job_id_;
    }
    wake_.notify_all();
  }
  work(*job);
  {
    std::unique_lock<std::mutex> lk(job->done_mutex);
    job->done.wait(lk, [&] { return job->finished == job->n; });
  }
  {
    std::lock_guard<std::mutex> lk(mutex_);
    if (job_ == job) job_.reset();
  }
  if (job->error) std::rethrow_exception(job->error);
}

// ---- batches -------------------------------------------------------------------------------------

Batch Batch::to(Device device) const {
  Batch b = *this;
  if (images.defined()) b.images = images.to(device);
  if (labels.defined()) b.labels = labels.to(device);
  if (masks.defined()) b.masks = masks.to(device);
  return b;
}

Batch assemble(std::vector<Sample>& samples, const std::vector<size_t>& indices, bool with_masks, bool pinned) {
  RECON_CHECK(!samples.empty(), "loader: empty batch");
  const Image& first = samples[0].image;
  const std::string first_source = samples[0].source;  // sources are moved out below
  const int64_t n = (int64_t)samples.size(), c = first.channels, h = first.height, w = first.width;
  Batch b;
  // Page-locked when the batch goes to the GPU: its copy then runs async.
  auto host = [pinned](const Shape& shape) { return pinned ? Tensor::empty_pinned(shape) : Tensor::empty(shape); };
  b.images = host({n, c, h, w});
  b.labels = host({n});
  if (with_masks) b.masks = host({n, 1, h, w});
  const size_t chw = (size_t)(c * h * w), hw = (size_t)(h * w);
  for (int64_t i = 0; i < n; ++i) {
    Sample& s = samples[i];
    RECON_CHECK(s.image.channels == c && s.image.height == h && s.image.width == w,
                "loader: " << s.source << " is " << s.image.shape_str() << " but " << first_source << " is "
                           << first.shape_str() << "; images in a batch must match (add a resize transform)");
    std::memcpy(b.images.data() + i * chw, s.image.pixels.data(), chw * sizeof(float));
    b.labels.data()[i] = (float)s.label;
    if (with_masks) {
      RECON_CHECK(!s.mask.empty(), "loader: " << s.source << " has no mask but the dataset has masks");
      RECON_CHECK(s.mask.channels == 1 && s.mask.same_size(s.image),
                  "loader: the mask of " << s.source << " is " << s.mask.shape_str() << ", its image "
                                         << s.image.shape_str() << " (mask size differs from image size)");
      std::memcpy(b.masks.data() + i * hw, s.mask.pixels.data(), hw * sizeof(float));
    }
    b.kinds.push_back(std::move(s.kind));
    b.sources.push_back(std::move(s.source));
  }
  b.indices = indices;
  return b;
}

// ---- DataLoader -------------------------------------------------------------------------------------

// SplitMix64 finaliser: decorrelates the keys of neighbouring samples.
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

DataLoader::DataLoader(DatasetPtr dataset, LoaderOptions opt)
    : dataset_(std::move(dataset)), opt_(std::move(opt)), pool_(opt_.num_workers) {
  RECON_CHECK(dataset_ != nullptr, "DataLoader: null dataset");
  RECON_CHECK(dataset_->size() > 0, "DataLoader: empty dataset");
  RECON_CHECK(opt_.batch_size > 0, "DataLoader: batch_size must be positive, got " << opt_.batch_size);
  RECON_CHECK(opt_.prefetch >= 0, "DataLoader: prefetch must be >= 0, got " << opt_.prefetch);
  RECON_CHECK(num_batches() > 0, "DataLoader: " << dataset_->size() << " samples make no full batch of "
                                                << opt_.batch_size << " with drop_last");
}

DataLoader::~DataLoader() { stop_producer(); }

int64_t DataLoader::num_batches() const {
  int64_t n = (int64_t)dataset_->size();
  return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

std::vector<size_t> DataLoader::epoch_order(int64_t epoch) const {
  if (!opt_.shuffle) {
    std::vector<size_t> order(dataset_->size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    return order;
  }
  Generator gen(mix64(opt_.seed ^ mix64((uint64_t)epoch)));
  return random_permutation(dataset_->size(), gen);
}

Batch DataLoader::build(int64_t b) {
  const int64_t start = b * opt_.batch_size;
  const int64_t n = std::min<int64_t>(opt_.batch_size, (int64_t)order_.size() - start);
  std::vector<size_t> indices(order_.begin() + start, order_.begin() + start + n);
  std::vector<Sample> samples(n);
  // Each sample's transform randomness: its own stream, keyed by (seed, epoch, position).
  // 0xD1B5...: an odd 64-bit multiplier (from the R2 sequence) spreading epochs apart.
  const uint64_t epoch_key = mix64(mix64(opt_.seed) ^ (uint64_t)epoch_ * 0xD1B54A32D192ED03ull);
  pool_.run((size_t)n, [&](size_t j) {
    samples[j] = dataset_->get(indices[j]);
    if (opt_.transform) {
      Generator gen(mix64(epoch_key ^ mix64((uint64_t)(start + (int64_t)j))));
      opt_.transform(samples[j], gen);
    }
  });
  return assemble(samples, indices, dataset_->has_masks(), opt_.device.is_cuda());
}

void DataLoader::produce() {
  const int64_t nb = num_batches();
  for (int64_t b = 0; b < nb; ++b) {
    Item item;
    try {
      item.batch = build(b);
    } catch (...) {
      item.error = std::current_exception();
    }
    std::unique_lock<std::mutex> lk(mutex_);
    changed_.wait(lk, [&] { return stop_ || (int64_t)queue_.size() < opt_.prefetch; });
    if (stop_) break;
    bool failed = item.error != nullptr;
    queue_.push_back(std::move(item));
    changed_.notify_all();
    if (failed) break;
  }
  std::lock_guard<std::mutex> lk(mutex_);
  producer_done_ = true;
  changed_.notify_all();
}

void DataLoader::stop_producer() {
  if (producer_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    producer_.join();
  }
  queue_.clear();
  stop_ = false;
  producer_done_ = false;
}

void DataLoader::start_epoch(int64_t epoch) {
  RECON_CHECK(epoch >= 0, "DataLoader: negative epoch " << epoch);
  stop_producer();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  delivered_ = 0;
  samples_done_ = 0;
  failed_ = false;
  if (opt_.prefetch > 0) producer_ = std::thread([this] { produce(); });
}

std::optional<Batch> DataLoader::next() {
  RECON_CHECK(epoch_ >= 0, "DataLoader: call start_epoch() before next()");
  if (failed_ || delivered_ >= num_batches()) return std::nullopt;
  Batch batch;
  if (opt_.prefetch == 0) {
    try {
      batch = build(delivered_);
    } catch (...) {
      failed_ = true;
      throw;
    }
  } else {
    Item item;
    {
      std::unique_lock<std::mutex> lk(mutex_);
      changed_.wait(lk, [&] { return !queue_.empty() || producer_done_; });
      RECON_CHECK(!queue_.empty(), "DataLoader: the producer stopped before batch " << delivered_);
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    changed_.notify_all();
    if (item.error) {
      failed_ = true;
      std::rethrow_exception(item.error);
    }
    batch = std::move(item.batch);
  }
  samples_done_ += batch.size();
  if (opt_.on_batch)
    opt_.on_batch({epoch_, delivered_, num_batches(), samples_done_,
                   std::min<int64_t>(num_batches() * opt_.batch_size, (int64_t)order_.size())});
  ++delivered_;
  if (opt_.device != Device::cpu()) batch = batch.to(opt_.device);
  return batch;
}

}  // namespace recon::data
