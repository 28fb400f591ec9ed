// The transformer's transcendental element-wise kernels: GELU, shifted exponentials and the
// softmax on 8-float vectors. On x86-64 each is compiled twice (target_clones): for AVX2 with FMA
// (x86-64-v3) and for the baseline, and the loader picks the one the CPU runs, which Swift
// cannot do for its own code. Accurate to a few ulp for finite inputs; NaN or ±∞ in gives NaN
// out (the trainer's finite check then reports it).
#ifndef DLION_TRANSFORMER_KERNELS_H
#define DLION_TRANSFORMER_KERNELS_H

#include <stddef.h>

/// out[i] = gelu(inp[i]) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) for `count` floats.
void dlion_gelu_forward(float *out, const float *inp, size_t count);

/// dinp[i] = gelu′(inp[i]) · dout[i] for `count` floats; `dinp` may be `dout`.
void dlion_gelu_backward(float *dinp, const float *inp, const float *dout, size_t count);

/// out[i] = e^(x[i] − shift) for `count` floats (`out` may be `x`); returns their sum.
/// Arguments below −87.3 give about 1e-38 rather than 0.
float dlion_exp_shifted(float *out, const float *x, float shift, size_t count);

/// out[0..<visible] = the softmax of x[0..<visible] (shifted by their maximum, so stable),
/// out[visible..<count] = 0; `out` may be `x`, `visible` ≥ 1. A NaN among x gives NaN out.
void dlion_softmax(float *out, const float *x, size_t visible, size_t count);

#endif
