// Sequence-parallel self-attention and token gathering (sequence_parallel.hpp).
#include "distributed/sequence_parallel.hpp"

#include <array>
#include <cmath>
#include <cstring>

#include "reel/ops.hpp"
#include "reel/status.hpp"

namespace reel::dist {

namespace {

std::vector<size_t> times(const std::vector<int64_t>& rows, int64_t row_bytes) {
  std::vector<size_t> out;
  for (int64_t r : rows) out.push_back(size_t(r * row_bytes));
  return out;
}

size_t total(const std::vector<size_t>& v) {
  size_t s = 0;
  for (size_t x : v) s += x;
  return s;
}

// A flat buffer of `bytes` (a whole number of `dtype` elements) on `device`.
Tensor flat(size_t bytes, DType dtype, Device device) {
  return Tensor::empty({int64_t(bytes / dtype_size(dtype))}, dtype, device);
}

// The elements from byte `offset` of a flat buffer, viewed as `shape` (shares the buffer).
Tensor view(const Tensor& buffer, size_t offset, const Shape& shape) {
  const int64_t first = int64_t(offset / dtype_size(buffer.dtype()));
  return buffer.slice(first, first + shape.numel()).reshape(shape);
}

// The parts joined along `axis`.
Tensor join(Backend& be, const std::vector<Tensor>& parts, int axis) {
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : parts) ptrs.push_back(&t);
  return ops::concat(be, ptrs, axis);
}

}  // namespace

std::vector<int64_t> split_tokens(int64_t tokens, int ranks) {
  std::vector<int64_t> counts(size_t(ranks), tokens / ranks);
  for (int64_t r = 0; r < tokens % ranks; ++r) ++counts[size_t(r)];
  return counts;
}

std::shared_ptr<const SpGroups> make_groups(const SequenceParallel& sp, int64_t heads) {
  require(sp.comm != nullptr, StatusCode::invalid_argument, "sequence parallel: no communicator");
  const int size = sp.comm->size();
  require(sp.ring >= 0 && sp.ulysses >= 0, StatusCode::invalid_argument,
          "sequence parallel: ulysses and ring must be >= 0 (0: chosen), got ulysses " + std::to_string(sp.ulysses) +
              ", ring " + std::to_string(sp.ring));
  int ulysses = sp.ulysses, ring = sp.ring;
  if (ulysses == 0 && ring == 0) {
    ulysses = 1;
    for (int u = size; u >= 1; --u)
      if (size % u == 0 && heads % u == 0) {
        ulysses = u;
        break;
      }
  } else if (ulysses == 0) {
    ulysses = size / ring;
  }
  if (ring == 0) ring = size / ulysses;
  require(int64_t(ulysses) * ring == size, StatusCode::invalid_argument,
          "sequence parallel: ulysses " + std::to_string(ulysses) + " × ring " + std::to_string(ring) +
              " must equal the " + std::to_string(size) + " ranks");
  require(heads % ulysses == 0, StatusCode::invalid_argument,
          "sequence parallel: the model's " + std::to_string(heads) + " heads do not split over ulysses " +
              std::to_string(ulysses) + " ranks (use a ulysses degree that divides them, the rest as ring)");
  auto g = std::make_shared<SpGroups>();
  g->world = sp.comm;
  g->ulysses = ulysses;
  g->ring = ring;
  g->rank = sp.comm->rank();
  g->size = size;
  g->ulysses_index = g->rank % ulysses;
  g->ring_index = g->rank / ulysses;
  g->ulysses_group = sp.comm->split(g->ring_index, g->ulysses_index);
  g->ring_group = sp.comm->split(g->ulysses_index, g->ring_index);
  return g;
}

SpForward::SpForward(const SpGroups& g, int64_t batch, int64_t tokens, int64_t heads, int64_t head_dim, DType dtype,
                     Device device)
    : g_(g), batch_(batch), tokens_(tokens), heads_(heads), head_dim_(head_dim), dtype_(dtype), device_(device) {
  require(tokens >= g.size, StatusCode::invalid_argument,
          "sequence parallel: " + std::to_string(tokens) + " tokens cannot be split over " + std::to_string(g.size) +
              " ranks (make the video larger or use fewer ranks)");
  counts_ = split_tokens(tokens, g.size);
  super_.assign(size_t(g.ring), 0);
  for (int r = 0; r < g.size; ++r) super_[size_t(r / g.ulysses)] += counts_[size_t(r)];
  for (int r = 0; r < g.rank; ++r) begin_ += counts_[size_t(r)];
  end_ = begin_ + counts_[size_t(g.rank)];
}

void SpForward::fail(std::exception_ptr e) {
  if (!failure_) failure_ = e;
}

template <class F>
auto SpForward::guarded(F&& f) -> decltype(f()) {
  if (failure_) return {};
  try {
    return f();
  } catch (...) {
    fail(std::current_exception());
    return {};
  }
}

std::pair<const void*, void*> SpForward::buffers(const Tensor& send, size_t send_bytes, Tensor& recv,
                                                  size_t recv_bytes) {
  if (send.defined() && recv.defined()) return {send.raw(), recv.raw()};
  const size_t need = send_bytes + recv_bytes + 8;  // disjoint send and receive parts
  if (!scratch_.defined() || scratch_.nbytes() < need) scratch_ = flat(need, DType::i32, g_.world->buffer_device());
  std::byte* base = static_cast<std::byte*>(scratch_.raw());
  return {base, base + ((send_bytes + 7) / 8) * 8};
}

// ---------------------------------------------------------------- Ulysses

SpForward::UlyssesBytes SpForward::ulysses_bytes() const {
  const int U = g_.ulysses, me = g_.ring_index;
  const int64_t row = heads_ / U * head_dim_ * int64_t(dtype_size(dtype_));
  UlyssesBytes b;
  for (int j = 0; j < U; ++j) {
    b.mine.push_back(size_t(batch_ * counts_[size_t(g_.rank)] * row));
    b.peer.push_back(size_t(batch_ * counts_[size_t(me * U + j)] * row));
  }
  return b;
}

Tensor SpForward::scatter_heads(Backend& be, const Tensor& x) {
  const int U = g_.ulysses, me = g_.ring_index;
  const int64_t hu = heads_ / U, local = counts_[size_t(g_.rank)];
  const UlyssesBytes bytes = ulysses_bytes();
  const std::vector<size_t>& send = bytes.mine;
  const std::vector<size_t>& recv = bytes.peer;
  const Device cd = g_.world->buffer_device();

  // [B, Lr, H, hd] → [U, B, Lr, H/U, hd]: peer j's heads, packed peer after peer.
  const Tensor packed = guarded([&] {
    const std::array<int, 5> perm{2, 0, 1, 3, 4};
    return ops::permute(be, x.reshape({batch_, local, U, hu, head_dim_}), perm).to(cd);
  });
  Tensor got = guarded([&] { return flat(total(recv), dtype_, cd); });
  const auto [sp, rp] = buffers(packed, total(send), got, total(recv));
  g_.ulysses_group->all_to_all(sp, send, rp, recv);
  g_.bytes.all_to_all += int64_t(total(send) - send[size_t(g_.ulysses_index)]);  // to other ranks
  // Peer j's [B, L_j, H/U, hd] rows, joined along the tokens.
  return guarded([&] {
    std::vector<Tensor> parts;
    size_t at = 0;
    for (int j = 0; j < U; ++j) {
      parts.push_back(view(got, at, {batch_, counts_[size_t(me * U + j)], hu, head_dim_}).to(device_));
      at += recv[size_t(j)];
    }
    return join(be, parts, 1);
  });
}

Tensor SpForward::gather_heads(Backend& be, const Tensor& x) {
  const int U = g_.ulysses, me = g_.ring_index;
  const int64_t hu = heads_ / U, local = counts_[size_t(g_.rank)];
  const UlyssesBytes bytes = ulysses_bytes();
  const std::vector<size_t>& send = bytes.peer;
  const std::vector<size_t>& recv = bytes.mine;
  const Device cd = g_.world->buffer_device();

  // Peer j's tokens of [B, S, H/U, hd], packed peer after peer.
  const Tensor packed = guarded([&] {
    std::vector<Tensor> parts;
    int64_t at = 0;
    for (int j = 0; j < U; ++j) {
      const int64_t n = counts_[size_t(me * U + j)];
      parts.push_back(ops::slice(be, x, 1, at, at + n).reshape({batch_ * n * hu * head_dim_}));
      at += n;
    }
    return join(be, parts, 0).to(cd);
  });
  Tensor got = guarded([&] { return flat(total(recv), dtype_, cd); });
  const auto [sp, rp] = buffers(packed, total(send), got, total(recv));
  g_.ulysses_group->all_to_all(sp, send, rp, recv);
  g_.bytes.all_to_all += int64_t(total(send) - send[size_t(g_.ulysses_index)]);  // to other ranks
  // [U, B, Lr, H/U, hd] → [B, Lr, H, hd].
  return guarded([&] {
    const Tensor stacked = view(got, 0, {U, batch_, local, hu, head_dim_}).to(device_);
    const std::array<int, 5> perm{1, 2, 0, 3, 4};
    return ops::permute(be, stacked, perm).reshape({batch_, local, heads_, head_dim_});
  });
}

// ---------------------------------------------------------------- ring

namespace {

// acc = the log-sum-exp merge of acc and part (host f32): out [B, S, H, hd], lse [B, H, S].
void merge_partial(Tensor& acc_out, Tensor& acc_lse, const Tensor& part_out, const Tensor& part_lse) {
  const int64_t B = acc_out.dim(0), S = acc_out.dim(1), H = acc_out.dim(2), D = acc_out.dim(3);
  float* o = acc_out.data<float>();
  float* l = acc_lse.data<float>();
  const float* po = part_out.data<float>();
  const float* pl = part_lse.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t li = (b * H + h) * S + i;
        const float m = std::max(l[li], pl[li]);
        const float w1 = std::exp(l[li] - m), w2 = std::exp(pl[li] - m), sum = w1 + w2;
        float* orow = o + ((b * S + i) * H + h) * D;
        const float* prow = po + ((b * S + i) * H + h) * D;
        for (int64_t d = 0; d < D; ++d) orow[d] = (w1 * orow[d] + w2 * prow[d]) / sum;
        l[li] = m + std::log(sum);
      }
}

}  // namespace

Tensor SpForward::ring_attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                 std::string_view kernel) {
  const int R = g_.ring, me = g_.ring_index;
  const int64_t hu = heads_ / g_.ulysses, row = hu * head_dim_ * int64_t(dtype_size(dtype_));
  const int64_t S = super_[size_t(me)];
  const Device cd = g_.world->buffer_device();
  const int next = (me + 1) % R, prev = (me + R - 1) % R;

  Tensor acc_out, acc_lse;                 // host f32
  Tensor held = guarded([&] {             // this rank's [2, B, S_c, H/U, hd] K and V, on the comm device
    const Tensor kk = k.reshape({1, batch_, S, hu, head_dim_}), vv = v.reshape({1, batch_, S, hu, head_dim_});
    return ops::concat(be, {&kk, &vv}, 0).reshape({2 * kk.numel()}).to(cd);
  });
  for (int s = 0; s < R; ++s) {
    const int c = (me - s + R) % R;  // the ring index whose K/V this rank holds now
    guarded([&] {
      const Tensor kv = held.to(device_);
      const Shape chunk{batch_, super_[size_t(c)], hu, head_dim_};
      const Tensor kc = view(kv, 0, chunk), vc = view(kv, kv.nbytes() / 2, chunk);
      Tensor out = be.empty(q.shape(), dtype_);
      Tensor lse = be.empty({batch_, hu, S}, DType::f32);
      be.run(op::Attention{&q, &kc, &vc, &out, scale, kernel, &lse});
      Tensor out_h = out.to(Device::cpu());  // fresh tensors of this step: kept as they are
      if (out_h.dtype() != DType::f32) out_h = out_h.to(DType::f32);
      const Tensor lse_h = lse.to(Device::cpu());
      if (s == 0) acc_out = out_h, acc_lse = lse_h;
      else merge_partial(acc_out, acc_lse, out_h, lse_h);
      return 0;
    });
    if (s == R - 1) break;
    const int incoming = (me - s - 1 + R) % R;
    const size_t send_bytes = size_t(2 * batch_ * super_[size_t(c)] * row);
    const size_t recv_bytes = size_t(2 * batch_ * super_[size_t(incoming)] * row);
    Tensor next_held = guarded([&] { return flat(recv_bytes, dtype_, cd); });
    const auto [sp, rp] = buffers(held, send_bytes, next_held, recv_bytes);
    g_.ring_group->send_recv(sp, send_bytes, next, rp, recv_bytes, prev);
    g_.bytes.ring += int64_t(send_bytes);
    held = next_held;
  }
  return guarded([&] {
    const Tensor out = acc_out.dtype() == dtype_ ? acc_out : acc_out.to(dtype_);
    return out.to(device_);
  });
}

// ---------------------------------------------------------------- the whole attention

Tensor SpForward::attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                            std::string_view kernel) {
  ++calls_;
  g_.bytes.calls += 1;
  const bool ulysses = g_.ulysses > 1;
  const Tensor qg = ulysses ? scatter_heads(be, q) : q;
  const Tensor kg = ulysses ? scatter_heads(be, k) : k;
  const Tensor vg = ulysses ? scatter_heads(be, v) : v;
  Tensor out = g_.ring > 1 ? ring_attention(be, qg, kg, vg, scale, kernel)
                           : guarded([&] { return ops::attention(be, qg, kg, vg, scale, kernel); });
  if (ulysses) out = gather_heads(be, out);
  if (failure_) std::rethrow_exception(failure_);
  return out;
}

void SpForward::drain(Backend& be, int calls) {
  if (calls_ >= calls) return;
  if (!failure_) fail(std::make_exception_ptr(Error(StatusCode::internal, "sequence parallel: attention calls missing")));
  while (calls_ < calls) {
    try {
      attention(be, Tensor(), Tensor(), Tensor(), 1.0f, {});  // failed: only the collectives run, on scratch
    } catch (...) {
    }
  }
}

Tensor SpForward::gather(Backend& be, const Tensor& local, int64_t channels) {
  agree(*g_.world, failure_);
  const int64_t row = channels * int64_t(dtype_size(dtype_));
  std::vector<int64_t> rows;
  for (int64_t n : counts_) rows.push_back(batch_ * n);
  const std::vector<size_t> recv = times(rows, row);
  const Device cd = g_.world->buffer_device();
  const Tensor mine = local.to(cd);
  Tensor got = flat(total(recv), dtype_, cd);
  g_.world->all_gather(mine.raw(), recv[size_t(g_.rank)], got.raw(), recv);
  g_.bytes.gather += int64_t(recv[size_t(g_.rank)]) * (g_.size - 1);
  std::vector<Tensor> parts;
  size_t at = 0;
  for (int r = 0; r < g_.size; ++r) {
    parts.push_back(view(got, at, {batch_, counts_[size_t(r)], channels}).to(device_));
    at += recv[size_t(r)];
  }
  return join(be, parts, 1);
}

}  // namespace reel::dist
