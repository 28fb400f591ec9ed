#include "transformer_kernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

// Sixteen lanes: one AVX-512 register, two AVX2 registers (the extra independent chain per
// step measured 14 % faster than eight lanes on AVX2), four SSE registers.
#define LANES 16
typedef float vf __attribute__((ext_vector_type(LANES)));
typedef int32_t vi __attribute__((ext_vector_type(LANES)));

#if defined(__x86_64__)
#define DLION_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DLION_CLONES
#endif

// The helpers work in place through pointers: passing vectors by value would give the
// baseline clone an AVX calling convention. Each is inlined into every clone.
#define DLION_INLINE static inline __attribute__((always_inline))

DLION_INLINE void load(vf *v, const float *p) { memcpy(v, p, sizeof *v); }
DLION_INLINE void store(float *p, const vf *v) { memcpy(p, v, sizeof *v); }

/// The first `valid` (< LANES) floats at `p`, zeros after them.
DLION_INLINE void load_part(vf *v, const float *p, size_t valid) {
    float lanes[LANES] = {0};
    memcpy(lanes, p, valid * sizeof(float));
    load(v, lanes);
}

/// Stores the first `valid` (< LANES) lanes of `v` at `p`.
DLION_INLINE void store_part(float *p, const vf *v, size_t valid) {
    float lanes[LANES];
    store(lanes, v);
    memcpy(p, lanes, valid * sizeof(float));
}

typedef float vf8 __attribute__((ext_vector_type(8)));
typedef float vf4 __attribute__((ext_vector_type(4)));
typedef float vf2 __attribute__((ext_vector_type(2)));

/// The sum of the lanes as a tree of halves, 4 dependent adds instead of 15, always in the
/// same order (so every clone gives the same bits).
DLION_INLINE float lane_sum(const vf *v) {
    vf8 eight = (*v).lo + (*v).hi;
    vf4 four = eight.lo + eight.hi;
    vf2 two = four.lo + four.hi;
    return two.x + two.y;
}

/// The sum of the lanes from the first to the last: the order the MLP's softmax
/// (dlion_exp_shifted) has always used, which its cached experiment results depend on.
DLION_INLINE float lane_sum_in_order(const vf *v) {
    float sum = 0.0f;
    for (int lane = 0; lane < LANES; lane++) sum += (*v)[lane];
    return sum;
}

/// The largest lane, as a tree of halves: the same value in any order, since a maximum is
/// exact (a NaN lane may or may not win: the caller's NaN propagates through its own arithmetic).
DLION_INLINE float lane_max(const vf *v) {
    vf8 eight = __builtin_elementwise_max((*v).lo, (*v).hi);
    vf4 four = __builtin_elementwise_max(eight.lo, eight.hi);
    vf2 two = __builtin_elementwise_max(four.lo, four.hi);
    return two.x > two.y ? two.x : two.y;
}

/// Lanes of `v` where `take` is set (all ones) become `other`'s, by bits (so NaN stays NaN).
DLION_INLINE void take_where(vf *v, const vi *take, const vf *other) {
    *v = __builtin_bit_cast(vf, (__builtin_bit_cast(vi, *other) & *take) | (__builtin_bit_cast(vi, *v) & ~*take));
}

/// x where x ≥ low, else low, in place: one maximum whose NaN lanes keep x (`low > x` is false).
DLION_INLINE void raise_to(vf *x, float low) {
    const vf bound = low;
    const vi raise = bound > *x;
    take_where(x, &raise, &bound);
}

/// x where x ≤ high, else high, in place: one minimum whose NaN lanes keep x.
DLION_INLINE void lower_to(vf *x, float high) {
    const vf bound = high;
    const vi lower = bound < *x;
    take_where(x, &lower, &bound);
}

/// eˣ in place (Cephes' expf: x = n·ln 2 + r, a degree-6 polynomial in r, 2ⁿ built in the
/// exponent bits), x clamped to [−87.3, 88.3] so that 2ⁿ stays a normal float. A NaN or ±∞
/// gives NaN, so that a diverging run's non-finite values propagate.
DLION_INLINE void exp_lanes(vf *v) {
    vf x = *v;
    raise_to(&x, -87.3f);
    lower_to(&x, 88.3f);
    x += *v - *v;  // +0 where v is finite, NaN where it is not
    const vf magic = 12582912.0f;  // 1.5·2²³: adding it rounds to an integer in the low bits
    vf shifted = x * 1.44269504f + magic;
    vf n = shifted - magic;
    vf r = x - n * 0.693359375f - n * -2.12194440e-4f;
    vf p = 1.98756915e-4f;
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.33345191e-3f;
    p = p * r + 4.16657959e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000012e-1f;
    p = p * (r * r) + r + 1.0f;
    vi exponent = (__builtin_bit_cast(vi, shifted) - __builtin_bit_cast(vi, magic) + 127) << 23;
    *v = p * __builtin_bit_cast(vf, exponent);
}

// GELU's tanh form through the logistic function: 0.5·(1 + tanh(u)) = σ(2u) = 1/(1 + e^(−2u)),
// u = √(2/π)·(x + 0.044715·x³). One exponential and one division, as the tanh form, but fewer
// operations around them and no cancellation in 1 − 2/(e²ᵘ + 1) where gelu(x) is tiny.
#define GELU_2_SQRT_2_OVER_PI 1.5957691216057308f

/// e^(−2u) for GELU's u, into `e`.
DLION_INLINE void gelu_exp(vf *e, const vf *x) {
    *e = -GELU_2_SQRT_2_OVER_PI * (*x + 0.044715f * *x * *x * *x);
    exp_lanes(e);
}

/// gelu(x) = x·σ(2u) = x / (1 + e^(−2u)), in place.
DLION_INLINE void gelu_lanes(vf *x) {
    vf e;
    gelu_exp(&e, x);
    *x = *x / (1.0f + e);
}

/// gelu′(x) · g = (σ + x·σ(1 − σ)·2u′) · g with σ = σ(2u), into `x`.
DLION_INLINE void gelu_backward_lanes(vf *x, const vf *g) {
    vf s;
    gelu_exp(&s, x);
    s = 1.0f / (1.0f + s);
    *x = (s + *x * (s - s * s) * GELU_2_SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * *x * *x)) * *g;
}

DLION_CLONES
void dlion_gelu_forward(float *out, const float *inp, size_t count) {
    size_t i = 0;
    vf x;
    for (; i + LANES <= count; i += LANES) {
        load(&x, inp + i);
        gelu_lanes(&x);
        store(out + i, &x);
    }
    if (i < count) {
        load_part(&x, inp + i, count - i);
        gelu_lanes(&x);
        store_part(out + i, &x, count - i);
    }
}

DLION_CLONES
void dlion_gelu_backward(float *dinp, const float *inp, const float *dout, size_t count) {
    size_t i = 0;
    vf x, g;
    for (; i + LANES <= count; i += LANES) {
        load(&x, inp + i);
        load(&g, dout + i);
        gelu_backward_lanes(&x, &g);
        store(dinp + i, &x);
    }
    if (i < count) {
        load_part(&x, inp + i, count - i);
        load_part(&g, dout + i, count - i);
        gelu_backward_lanes(&x, &g);
        store_part(dinp + i, &x, count - i);
    }
}

DLION_CLONES
void dlion_gelu_backward_rows(float *dinp, const float *inp, const float *dout, size_t rows, size_t columns, float *column_sums) {
    memset(column_sums, 0, columns * sizeof(float));
    vf x, g, sum;
    for (size_t row = 0; row < rows; row++) {
        const size_t at = row * columns;
        size_t c = 0;
        for (; c + LANES <= columns; c += LANES) {
            load(&x, inp + at + c);
            load(&g, dout + at + c);
            gelu_backward_lanes(&x, &g);
            store(dinp + at + c, &x);
            load(&sum, column_sums + c);
            sum += x;
            store(column_sums + c, &sum);
        }
        if (c < columns) {
            load_part(&x, inp + at + c, columns - c);
            load_part(&g, dout + at + c, columns - c);
            gelu_backward_lanes(&x, &g);
            store_part(dinp + at + c, &x, columns - c);
            load_part(&sum, column_sums + c, columns - c);
            sum += x;
            store_part(column_sums + c, &sum, columns - c);
        }
    }
}

/// One whole group of a softmax row, from `p`: into the running maximum.
DLION_INLINE void max_group(vf *largest, const float *p) {
    vf v;
    load(&v, p);
    *largest = __builtin_elementwise_max(*largest, v);
}

/// One whole group of a softmax row: out = e^(x − shift), added to the running total.
DLION_INLINE void exp_group(float *out, const float *x, float shift, vf *total) {
    vf v;
    load(&v, x);
    v -= shift;
    exp_lanes(&v);
    *total += v;
    store(out, &v);
}

/// One whole group of a softmax row, in place: times the reciprocal of the row's total.
DLION_INLINE void scale_group(float *p, float inverse) {
    vf v;
    load(&v, p);
    v *= inverse;
    store(p, &v);
}

DLION_CLONES
float dlion_exp_shifted(float *out, const float *x, float shift, size_t count) {
    vf total = 0.0f, e;
    size_t i = 0;
    for (; i + LANES <= count; i += LANES) exp_group(out + i, x + i, shift, &total);
    float sum = lane_sum_in_order(&total);
    if (i < count) {
        load_part(&e, x + i, count - i);
        e -= shift;
        exp_lanes(&e);
        store_part(out + i, &e, count - i);
        for (size_t lane = 0; lane < count - i; lane++) sum += e[lane];
    }
    return sum;
}

DLION_CLONES
void dlion_softmax(float *out, const float *x, size_t visible, size_t count) {
    vf largest = x[0], v;
    size_t i = 0;
    for (; i + LANES <= visible; i += LANES) max_group(&largest, x + i);
    float shift = lane_max(&largest);
    for (; i < visible; i++) shift = shift > x[i] ? shift : x[i];
    float inverse = 1.0f / dlion_exp_shifted(out, x, shift, visible);
    for (i = 0; i + LANES <= visible; i += LANES) scale_group(out + i, inverse);
    for (; i < visible; i++) out[i] *= inverse;
    for (i = visible; i < count; i++) out[i] = 0.0f;
}

/// Lanes below `valid` keep their value and the rest take `other`'s, by bits (so NaN stays).
DLION_INLINE void select_below(vf *v, const vf *other, size_t valid) {
    const vi index = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const vi past = index >= (int)valid;
    take_where(v, &past, other);
}

/// Lanes below `valid` keep their value and the rest become `fill`.
DLION_INLINE void keep_below(vf *v, size_t valid, float fill) {
    const vf filler = fill;
    select_below(v, &filler, valid);
}

/// The last group of a row whose first `valid` (1…LANES) floats from `p` count, with `room`
/// floats of the matrix from `p` on: loaded whole when the matrix has room, else through a
/// copy; the lanes past `valid` are `fill`.
DLION_INLINE void load_group(vf *v, const float *p, size_t valid, size_t room, float fill) {
    if (room >= LANES) load(v, p); else load_part(v, p, valid);
    keep_below(v, valid, fill);
}

/// Stores the first `valid` (1…LANES) lanes of `v` at `p`, with `room` floats of the matrix
/// from `p` on: when the group runs into the next row, that row's floats are written back as
/// they were (they are the caller's own, not yet read).
DLION_INLINE void store_group(float *p, const vf *v, size_t valid, size_t room) {
    if (valid == LANES) { store(p, v); return; }
    if (room < LANES) { store_part(p, v, valid); return; }
    vf merged = *v, next;
    load(&next, p);
    select_below(&merged, &next, valid);
    store(p, &merged);
}

/// How many softmax rows are computed side by side: their dependency chains (maximum, then
/// exponentials, sum and reciprocal) overlap. Measured on AVX-512 at 49 positions: 3 rows
/// 1.7× as fast as one at a time, 2 rows 1.35×, 4 rows (spilling registers) 1.27×.
#define SOFTMAX_ROWS 3

/// The softmax of `count` (1…SOFTMAX_ROWS) consecutive rows of a T × T attention matrix from
/// row `first`, in place, each row's arithmetic exactly as if it were alone: per lane, the
/// same groups in the same order. Each pass takes the groups that every row has whole side
/// by side, then each row's own.
DLION_INLINE void attention_softmax_rows(float *att, size_t T, size_t first, size_t count, int causal) {
    float *row[SOFTMAX_ROWS], shift[SOFTMAX_ROWS], inverse[SOFTMAX_ROWS];
    size_t visible[SOFTMAX_ROWS], last[SOFTMAX_ROWS], room[SOFTMAX_ROWS], common = T;
    vf largest[SOFTMAX_ROWS], total[SOFTMAX_ROWS], v;
    for (size_t r = 0; r < count; r++) {
        const size_t t = first + r;
        row[r] = att + t * T;
        visible[r] = causal ? t + 1 : T;
        last[r] = (visible[r] - 1) / LANES * LANES;  // where the row's last (maybe partial) group starts
        room[r] = (T - t) * T - last[r];
        largest[r] = -INFINITY;
        total[r] = 0.0f;
        if (last[r] < common) common = last[r];
    }
    for (size_t c = 0; c < common; c += LANES)
        for (size_t r = 0; r < count; r++) max_group(&largest[r], row[r] + c);
    for (size_t r = 0; r < count; r++) {
        for (size_t c = common; c < last[r]; c += LANES) max_group(&largest[r], row[r] + c);
        load_group(&v, row[r] + last[r], visible[r] - last[r], room[r], -INFINITY);
        largest[r] = __builtin_elementwise_max(largest[r], v);
        shift[r] = lane_max(&largest[r]);
    }
    for (size_t c = 0; c < common; c += LANES)
        for (size_t r = 0; r < count; r++) exp_group(row[r] + c, row[r] + c, shift[r], &total[r]);
    for (size_t r = 0; r < count; r++) {
        for (size_t c = common; c < last[r]; c += LANES) exp_group(row[r] + c, row[r] + c, shift[r], &total[r]);
        // The last group reaches into the next row when the row has room: store_group writes
        // those floats back as they are now.
        const size_t valid = visible[r] - last[r], inRow = T - last[r] < LANES ? T - last[r] : LANES;
        load_group(&v, row[r] + last[r], valid, room[r], 0.0f);
        v -= shift[r];
        exp_lanes(&v);
        keep_below(&v, valid, 0.0f);
        total[r] += v;
        inverse[r] = 1.0f / lane_sum(&total[r]);
        v *= inverse[r];
        keep_below(&v, valid, 0.0f);  // again: a NaN row's inverse is NaN, its hidden part still 0
        store_group(row[r] + last[r], &v, inRow, room[r]);
    }
    for (size_t c = 0; c < common; c += LANES)
        for (size_t r = 0; r < count; r++) scale_group(row[r] + c, inverse[r]);
    for (size_t r = 0; r < count; r++) {
        for (size_t c = common; c < last[r]; c += LANES) scale_group(row[r] + c, inverse[r]);
        for (size_t c = last[r] + LANES; c < T; c++) row[r][c] = 0.0f;
    }
}

DLION_CLONES
void dlion_attention_softmax(float *att, size_t positions, int causal) {
    size_t t = 0;
    for (; t + SOFTMAX_ROWS <= positions; t += SOFTMAX_ROWS) attention_softmax_rows(att, positions, t, SOFTMAX_ROWS, causal);
    if (t < positions) attention_softmax_rows(att, positions, t, positions - t, causal);
}

/// One whole group of a softmax backward row: a·d into the running dot product.
DLION_INLINE void dot_group(vf *dot, const float *a, const float *d) {
    vf x, y;
    load(&x, a);
    load(&y, d);
    *dot += x * y;
}

/// One whole group of a softmax backward row, in place: d = a · (d − dot).
DLION_INLINE void gradient_group(float *d, const float *a, float dot) {
    vf x, y;
    load(&x, a);
    load(&y, d);
    y = x * (y - dot);
    store(d, &y);
}

/// d[i] = a[i] · (d[i] − Σⱼ a[j]·d[j]) for the first `count[r]` floats of each of `rows`
/// (1…SOFTMAX_ROWS) rows of T floats from `d` and `a`: a softmax's backward, in place, from
/// its output `a` and the gradient `d` at its output. The rows side by side, as in
/// attention_softmax_rows, each one's arithmetic as if it were alone.
DLION_INLINE void softmax_backward_rows(float *d, const float *a, size_t T, const size_t *count, size_t rows) {
    size_t whole[SOFTMAX_ROWS], common = T;
    float total[SOFTMAX_ROWS];
    vf dot[SOFTMAX_ROWS];
    for (size_t r = 0; r < rows; r++) {
        whole[r] = count[r] / LANES * LANES;
        dot[r] = 0.0f;
        if (whole[r] < common) common = whole[r];
    }
    for (size_t i = 0; i < common; i += LANES)
        for (size_t r = 0; r < rows; r++) dot_group(&dot[r], a + r * T + i, d + r * T + i);
    for (size_t r = 0; r < rows; r++) {
        const float *ar = a + r * T, *dr = d + r * T;
        for (size_t i = common; i < whole[r]; i += LANES) dot_group(&dot[r], ar + i, dr + i);
        total[r] = lane_sum(&dot[r]);
        for (size_t i = whole[r]; i < count[r]; i++) total[r] += ar[i] * dr[i];
    }
    for (size_t i = 0; i < common; i += LANES)
        for (size_t r = 0; r < rows; r++) gradient_group(d + r * T + i, a + r * T + i, total[r]);
    for (size_t r = 0; r < rows; r++) {
        const float *ar = a + r * T;
        float *dr = d + r * T;
        for (size_t i = common; i < whole[r]; i += LANES) gradient_group(dr + i, ar + i, total[r]);
        for (size_t i = whole[r]; i < count[r]; i++) dr[i] = ar[i] * (dr[i] - total[r]);
    }
}

/// Rows `first…first + rows − 1` of dlion_attention_softmax_backward.
DLION_INLINE void attention_softmax_backward_rows(float *d, const float *att, size_t T, size_t first, size_t rows, int causal) {
    size_t counted[SOFTMAX_ROWS];
    for (size_t r = 0; r < rows; r++) {
        // Whole groups past the visible values where the row has room: their weights are 0.
        const size_t visible = causal ? first + r + 1 : T, groups = (visible + LANES - 1) / LANES * LANES;
        counted[r] = groups < T ? groups : T;
    }
    softmax_backward_rows(d + first * T, att + first * T, T, counted, rows);
    for (size_t r = 0; r < rows; r++) memset(d + (first + r) * T + counted[r], 0, (T - counted[r]) * sizeof(float));
}

DLION_CLONES
void dlion_attention_softmax_backward(float *d, const float *att, size_t positions, int causal) {
    size_t t = 0;
    for (; t + SOFTMAX_ROWS <= positions; t += SOFTMAX_ROWS) attention_softmax_backward_rows(d, att, positions, t, SOFTMAX_ROWS, causal);
    if (t < positions) attention_softmax_backward_rows(d, att, positions, t, positions - t, causal);
}

DLION_CLONES
void dlion_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                             size_t rows, size_t channels) {
    const float epsilon = 1e-5f;
    for (size_t row = 0; row < rows; row++) {
        const float *x = inp + row * channels;
        float *y = out + row * channels;
        vf sum = 0.0f, v, w, b;
        size_t c = 0;
        for (; c + LANES <= channels; c += LANES) { load(&v, x + c); sum += v; }
        if (c < channels) { load_part(&v, x + c, channels - c); sum += v; }
        float m = lane_sum(&sum) / (float)channels;
        vf squares = 0.0f;
        for (c = 0; c + LANES <= channels; c += LANES) { load(&v, x + c); v -= m; squares += v * v; }
        float tail = 0.0f;
        for (; c < channels; c++) tail += (x[c] - m) * (x[c] - m);
        float s = 1.0f / sqrtf((lane_sum(&squares) + tail) / (float)channels + epsilon);
        for (c = 0; c + LANES <= channels; c += LANES) {
            load(&v, x + c); load(&w, weight + c); load(&b, bias + c);
            v = (v - m) * s * w + b;
            store(y + c, &v);
        }
        for (; c < channels; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[row] = m;
        rstd[row] = s;
    }
}

DLION_CLONES
void dlion_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
                              const float *mean, const float *rstd, const float *residual, size_t rows, size_t channels) {
    memset(dweight, 0, channels * sizeof(float));
    memset(dbias, 0, channels * sizeof(float));
    for (size_t row = 0; row < rows; row++) {
        const float *x = inp + row * channels, *g = dout + row * channels;
        float *dx = dinp + row * channels;
        const float m = mean[row], s = rstd[row];
        vf dnormSum = 0.0f, dnormNormSum = 0.0f, v, gv, w, acc;
        size_t c = 0;
        for (; c + LANES <= channels; c += LANES) {
            load(&v, x + c); load(&gv, g + c); load(&w, weight + c);
            vf norm = (v - m) * s, dnorm = w * gv;
            dnormSum += dnorm;
            dnormNormSum += dnorm * norm;
            load(&acc, dweight + c); acc += norm * gv; store(dweight + c, &acc);
            load(&acc, dbias + c); acc += gv; store(dbias + c, &acc);
        }
        float dnormTail = 0.0f, dnormNormTail = 0.0f;
        for (; c < channels; c++) {
            float norm = (x[c] - m) * s, dnorm = weight[c] * g[c];
            dnormTail += dnorm;
            dnormNormTail += dnorm * norm;
            dweight[c] += norm * g[c];
            dbias[c] += g[c];
        }
        const float dnormMean = (lane_sum(&dnormSum) + dnormTail) / (float)channels;
        const float dnormNormMean = (lane_sum(&dnormNormSum) + dnormNormTail) / (float)channels;
        const float *r = residual ? residual + row * channels : NULL;
        for (c = 0; c + LANES <= channels; c += LANES) {
            load(&v, x + c); load(&gv, g + c); load(&w, weight + c);
            vf norm = (v - m) * s;
            vf gradient = (w * gv - dnormMean - norm * dnormNormMean) * s;
            if (r) { load(&acc, r + c); gradient += acc; }
            store(dx + c, &gradient);
        }
        for (; c < channels; c++) {
            float norm = (x[c] - m) * s;
            float gradient = (weight[c] * g[c] - dnormMean - norm * dnormNormMean) * s;
            dx[c] = r ? r[c] + gradient : gradient;
        }
    }
}

DLION_CLONES
void dlion_column_sums(float *sums, const float *x, size_t rows, size_t columns) {
    size_t c = 0;
    vf v;
    for (; c + LANES <= columns; c += LANES) {
        vf total = 0.0f;
        for (size_t row = 0; row < rows; row++) { load(&v, x + row * columns + c); total += v; }
        store(sums + c, &total);
    }
    for (; c < columns; c++) {
        float total = 0.0f;
        for (size_t row = 0; row < rows; row++) total += x[row * columns + c];
        sums[c] = total;
    }
}

DLION_CLONES
void dlion_fill_rows(float *out, const float *bias, const float *residual, size_t rows, size_t columns) {
    for (size_t row = 0; row < rows; row++) {
        float *y = out + row * columns;
        const float *r = residual ? residual + row * columns : NULL;
        size_t c = 0;
        vf a, b;
        for (; c + LANES <= columns; c += LANES) {
            load(&b, bias + c);
            if (r) { load(&a, r + c); b += a; }
            store(y + c, &b);
        }
        for (; c < columns; c++) y[c] = r ? r[c] + bias[c] : bias[c];
    }
}
