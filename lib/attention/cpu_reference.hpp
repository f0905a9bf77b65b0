// Internal: the double-precision attention reference, one query row at a time, on CPU
// buffers. cpu_reference runs it on every row; bench/ runs it on a few sampled rows.
#pragma once
#include <cstdint>
#include <vector>

#include "reel/attention.hpp"

namespace reel::attn {

// Element `index` of a buffer of `dtype` (f32, bf16, f16) as a double.
double load_element(const void* base, int dtype, int64_t index);
// Stores x rounded to `dtype`.
void store_element(void* base, int dtype, int64_t index, double x);

// out_row[0..head_dim) = the exact (double) attention output for query row i of batch b,
// head h; returns the row's natural log-sum-exp of scale·q·k. p's buffers must be on the CPU.
double reference_attention_row(const AttentionParams& p, int64_t b, int64_t h, int64_t i, double* out_row);

}  // namespace reel::attn
