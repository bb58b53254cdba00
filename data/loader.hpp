// DataLoader: seeded shuffled batches of (N, C, H, W) float32 images plus
// labels (and masks when the dataset has them). A background thread builds
// batches ahead of the consumer (up to `prefetch` of them); inside a batch,
// a pool of worker threads decodes and transforms samples in parallel. The
// batch order and every random transform depend only on (seed, epoch), never
// on thread timing: sample j of an epoch gets its own Generator keyed by
// (seed, epoch, j).
//
// Batches are produced on the host, in page-locked memory when opt.device
// is a GPU; next() moves them there with Tensor::to, an asynchronous copy on
// the runtime stream (nothing waits for it on the host).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.hpp"
#include "data/transforms.hpp"
#include "runtime/device.hpp"
#include "runtime/tensor.hpp"

namespace recon::data {

struct Batch {
  Tensor images;  // (N, C, H, W) float32, in [0, 1] unless a transform normalised
  Tensor labels;  // (N) float32 labels
  Tensor masks;   // (N, 1, H, W) of 0/1, or undefined when the dataset has no masks
  std::vector<size_t> indices;       // dataset index of each row
  std::vector<std::string> kinds;    // Sample::kind of each row
  std::vector<std::string> sources;  // Sample::source of each row
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  Batch to(Device device) const;     // tensors copied to `device`, the rest shared
};

struct LoaderProgress {
  int64_t epoch = 0;
  int64_t batch = 0;          // index of the batch just delivered, 0-based
  int64_t num_batches = 0;    // in this epoch
  int64_t samples_done = 0;   // in this epoch, including this batch
  int64_t samples_total = 0;  // in this epoch
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;     // drop a last, smaller batch
  uint64_t seed = 0;
  int num_workers = 2;        // decoding threads besides the producer (0: the producer decodes alone)
  int prefetch = 2;           // batches built ahead by a background thread (0: built inside next())
  Transform transform;        // applied to every sample; may be empty
  Device device = Device::cpu();  // where next() delivers batches
  std::function<void(const LoaderProgress&)> on_batch;  // progress hook, called by next()
};

// A fixed pool of threads running index loops (used by DataLoader).
class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  // Calls fn(0..n-1) across the pool and the calling thread; returns when all
  // calls have finished; rethrows the first exception one of them threw.
  void run(size_t n, const std::function<void(size_t)>& fn);
  int size() const { return (int)threads_.size(); }

 private:
  struct Job;
  void worker();
  static void work(Job& job);
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Job> job_;
  uint64_t job_id_ = 0;
  bool stop_ = false;
};

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, LoaderOptions opt);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;
  int64_t epoch() const { return epoch_; }
  const Dataset& dataset() const { return *dataset_; }
  // Starts (or restarts) an epoch; a running one is abandoned.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch, or nullopt at its end. A decoding
  // or transform error is rethrown here (naming the file), and ends the epoch.
  std::optional<Batch> next();
  // The sample order of an epoch (dataset indices).
  std::vector<size_t> epoch_order(int64_t epoch) const;

 private:
  struct Item {
    Batch batch;
    std::exception_ptr error;
  };
  Batch build(int64_t b);  // decodes, transforms and assembles batch b of the current epoch
  void produce();          // the background thread
  void stop_producer();

  DatasetPtr dataset_;
  LoaderOptions opt_;
  ThreadPool pool_;
  int64_t epoch_ = -1;
  std::vector<size_t> order_;
  int64_t delivered_ = 0;  // batches handed out this epoch
  int64_t samples_done_ = 0;
  bool failed_ = false;

  std::thread producer_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> queue_;
  bool producer_done_ = false;
  bool stop_ = false;
};

// A (C, H, W) batch of samples decoded and stacked; throws, naming the
// offending source, when shapes differ or masks are missing.
// pinned: build the host tensors in page-locked memory (batches bound for the GPU).
Batch assemble(std::vector<Sample>& samples, const std::vector<size_t>& indices, bool with_masks,
               bool pinned = false);

}  // namespace recon::data
