// Internal: keeps the compiler from fusing a*b+c into one FMA in the files that reproduce
// diffusers' float arithmetic op by op (each torch/numpy op rounds on its own). Include first.
#pragma once
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
