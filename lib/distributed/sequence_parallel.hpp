// Internal: sequence parallelism for a transformer's forward pass (reel/distributed.hpp).
// SpGroups holds the Ulysses × ring arrangement of the ranks; SpForward runs one forward's
// collectives on this rank: the token split, self-attention over the whole sequence (Ulysses
// all-to-all on heads, ring passes of K/V merged by log-sum-exp) and the final gather.
//
// Ranks: r = ring_index · U + ulysses_index. The tokens are split in rank order (the first
// L mod N ranks hold one more), so a Ulysses group holds one contiguous run of tokens.
//
// Failure: a rank whose own work throws keeps making every collective the others will make,
// on scratch buffers of the planned sizes, and gather() has all ranks agree (reel::agree)
// before the result is used: every rank then throws the failing rank's error. No rank waits
// for a collective that never comes.
#pragma once
#include <atomic>
#include <exception>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "reel/backend.hpp"
#include "reel/distributed.hpp"

namespace reel::dist {

// Bytes this rank sent to other ranks through each kind of collective (bench_sequence_parallel
// reads them).
struct CollectiveBytes {
  std::atomic<int64_t> all_to_all{0}, ring{0}, gather{0}, calls{0};
};

struct SpGroups {
  std::shared_ptr<Communicator> world, ulysses_group, ring_group;
  int ulysses = 1, ring = 1;
  int rank = 0, size = 1;
  int ulysses_index = 0, ring_index = 0;
  mutable CollectiveBytes bytes;
};

// Checks the degrees against the world's size and the head count (invalid_argument naming the
// one that does not fit) and splits the communicator. Every rank calls it.
std::shared_ptr<const SpGroups> make_groups(const SequenceParallel& sp, int64_t heads);

// How many of `tokens` rows each of `ranks` ranks holds.
std::vector<int64_t> split_tokens(int64_t tokens, int ranks);

class SpForward {
 public:
  // One forward of `batch` sequences of `tokens` rows, self-attention with `heads` × `head_dim`
  // in `dtype` on `device` (the backend's).
  SpForward(const SpGroups& g, int64_t batch, int64_t tokens, int64_t heads, int64_t head_dim, DType dtype,
            Device device);

  int64_t begin() const { return begin_; }  // this rank's rows [begin, end)
  int64_t end() const { return end_; }

  // Self-attention of this rank's q, k, v [B, Lr, H, hd] over every rank's keys: [B, Lr, H, hd].
  // Makes its collectives whatever happens; throws (after them) when this rank failed.
  Tensor attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                   std::string_view kernel);
  // Records this rank's failure (the first one is kept).
  void fail(std::exception_ptr e);
  // The collectives of the attention calls this rank did not make, so that `calls` were made.
  void drain(Backend& be, int calls);
  // Everyone agrees (throws the failing rank's error on every rank), then this rank's
  // [B, Lr, C] rows become everyone's [B, L, C].
  Tensor gather(Backend& be, const Tensor& local, int64_t channels);

 private:
  // Per Ulysses peer j: the bytes of this rank's rows for j's heads (mine), and of j's rows for
  // this rank's heads (peer). The scatter sends mine and receives peer; the gather the reverse.
  struct UlyssesBytes {
    std::vector<size_t> mine, peer;
  };
  UlyssesBytes ulysses_bytes() const;
  Tensor scatter_heads(Backend& be, const Tensor& x);  // [B, Lr, H, hd] → [B, S, H/U, hd]
  Tensor gather_heads(Backend& be, const Tensor& x);   // the reverse
  Tensor ring_attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                        std::string_view kernel);
  // send's and recv's data, or (when this rank failed and either is missing) disjoint parts of a
  // scratch buffer on the communicator's device: the collective runs, its bytes unused.
  std::pair<const void*, void*> buffers(const Tensor& send, size_t send_bytes, Tensor& recv, size_t recv_bytes);
  template <class F> auto guarded(F&& f) -> decltype(f());

  const SpGroups& g_;
  int64_t batch_, tokens_, heads_, head_dim_;
  DType dtype_;
  Device device_;
  std::vector<int64_t> counts_;      // rows per world rank
  std::vector<int64_t> super_;       // rows per ring index (a Ulysses group's run)
  int64_t begin_ = 0, end_ = 0;
  int calls_ = 0;
  std::exception_ptr failure_;
  Tensor scratch_;
};

}  // namespace reel::dist
