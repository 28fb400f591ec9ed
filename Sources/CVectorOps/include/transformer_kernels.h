// The transformer's element-wise kernels on 16-float vectors: GELU, shifted exponentials, the
// softmax and its backward, LayerNorm, column sums and bias rows. On x86-64 each is compiled
// three times (target_clones): for AVX-512 (x86-64-v4), for AVX2 with FMA (x86-64-v3) and for
// the baseline, and the loader picks the one the CPU runs, which Swift cannot do for its own
// code. The v4 and v3 clones give the same bits. The transcendental ones are accurate to a few
// ulp for finite inputs; NaN or ±∞ in gives NaN out (the trainer's finite check then reports it).
#ifndef DLION_TRANSFORMER_KERNELS_H
#define DLION_TRANSFORMER_KERNELS_H

#include <stddef.h>

/// out[i] = gelu(inp[i]) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) for `count` floats,
/// computed as x / (1 + e^(−2·√(2/π)·(x + 0.044715·x³))).
void dlion_gelu_forward(float *out, const float *inp, size_t count);

/// dinp[i] = gelu′(inp[i]) · dout[i] for `count` floats; `dinp` may be `dout`.
void dlion_gelu_backward(float *dinp, const float *inp, const float *dout, size_t count);

/// dlion_gelu_backward over `rows` rows of `columns`, and `column_sums` (columns) = the
/// column sums of `dinp`, the rows added in order (the same bits as dlion_column_sums of it).
void dlion_gelu_backward_rows(float *dinp, const float *inp, const float *dout, size_t rows, size_t columns, float *column_sums);

/// out[i] = e^(x[i] − shift) for `count` floats (`out` may be `x`); returns their sum.
/// Arguments below −87.3 give about 1e-38 rather than 0.
float dlion_exp_shifted(float *out, const float *x, float shift, size_t count);

/// out[0..<visible] = the softmax of x[0..<visible] (shifted by their maximum, so stable),
/// out[visible..<count] = 0; `out` may be `x`, `visible` ≥ 1. A NaN among x gives NaN out.
void dlion_softmax(float *out, const float *x, size_t visible, size_t count);

/// Each row t of a positions × positions matrix of attention scores, in place: the softmax
/// of its first t + 1 values (`causal`) or of all, the rest 0; stable and NaN-propagating as
/// `dlion_softmax`.
void dlion_attention_softmax(float *att, size_t positions, int causal);

/// The backward of dlion_attention_softmax, in place: each row t of the positions × positions
/// matrix `d` (the gradient at the softmax's output) becomes att ⊙ (d − Σⱼ att[j]·d[j]) from
/// the softmax's output `att`, over the row's first t + 1 values (`causal`) or all; the rest,
/// where the weights are 0, become 0.
void dlion_attention_softmax_backward(float *d, const float *att, size_t positions, int causal);

/// LayerNorm over the `channels` of each of `rows` rows: out = (x − mean)·rstd·weight + bias,
/// rstd = 1/√(variance + 1e-5); writes each row's mean and rstd.
void dlion_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                             size_t rows, size_t channels);

/// LayerNorm's backward: `dinp` (rows × channels) from `dout`, plus `residual` when it is not
/// NULL; `dweight` and `dbias` (channels) overwritten with the sums over the rows.
void dlion_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
                              const float *mean, const float *rstd, const float *residual, size_t rows, size_t channels);

/// sums[c] = Σ_row x[row·columns + c], the rows added in order.
void dlion_column_sums(float *sums, const float *x, size_t rows, size_t columns);

/// Each of `rows` rows of `out` (rows × columns) = bias, plus that row of `residual` when it is
/// not NULL.
void dlion_fill_rows(float *out, const float *bias, const float *residual, size_t rows, size_t columns);

#endif
