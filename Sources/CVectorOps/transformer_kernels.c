#include "transformer_kernels.h"
#include <stdint.h>
#include <string.h>

typedef float f8 __attribute__((ext_vector_type(8)));
typedef int32_t i8 __attribute__((ext_vector_type(8)));

#if defined(__x86_64__)
#define DLION_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DLION_CLONES
#endif

// The helpers work in place through pointers: passing 8-float vectors by value would give the
// baseline clone an AVX calling convention. Each is inlined into both clones.
#define DLION_INLINE static inline __attribute__((always_inline))

DLION_INLINE void load8(f8 *v, const float *p) { memcpy(v, p, sizeof *v); }
DLION_INLINE void store8(float *p, const f8 *v) { memcpy(p, v, sizeof *v); }

/// max(x, 0) from the sign bit, in place; NaN stays NaN.
DLION_INLINE void relu8(f8 *x) {
    i8 bits = __builtin_bit_cast(i8, *x);
    *x = __builtin_bit_cast(f8, bits & ~(bits >> 31));
}

/// eˣ in place (Cephes' expf: x = n·ln 2 + r, a degree-6 polynomial in r, 2ⁿ built in the
/// exponent bits), x clamped to [−87.3, 88.3] without compares, so that NaN propagates.
DLION_INLINE void exp8(f8 *v) {
    f8 below = -87.3f - *v;
    relu8(&below);
    f8 x = *v + below;
    f8 above = x - 88.3f;
    relu8(&above);
    x -= above;
    const f8 magic = 12582912.0f;  // 1.5·2²³: adding it rounds to an integer in the low bits
    f8 shifted = x * 1.44269504f + magic;
    f8 n = shifted - magic;
    f8 r = x - n * 0.693359375f - n * -2.12194440e-4f;
    f8 p = 1.98756915e-4f;
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.33345191e-3f;
    p = p * r + 4.16657959e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000012e-1f;
    p = p * (r * r) + r + 1.0f;
    i8 exponent = (__builtin_bit_cast(i8, shifted) - __builtin_bit_cast(i8, magic) + 127) << 23;
    *v = p * __builtin_bit_cast(f8, exponent);
}

/// tanh(√(2/π)·(x + 0.044715·x³)) as 1 − 2/(e²ᵘ + 1), into `t`.
DLION_INLINE void gelu_tanh8(f8 *t, const f8 *x) {
    f8 u = 0.7978845608028654f * (*x + 0.044715f * *x * *x * *x);
    *t = u + u;
    exp8(t);
    *t = 1.0f - 2.0f / (*t + 1.0f);
}

/// gelu(x) in place.
DLION_INLINE void gelu8(f8 *x) {
    f8 t;
    gelu_tanh8(&t, x);
    *x = 0.5f * *x * (1.0f + t);
}

/// gelu′(x) · g, into `x`.
DLION_INLINE void gelu_backward8(f8 *x, const f8 *g) {
    f8 t;
    gelu_tanh8(&t, x);
    *x = (0.5f * (1.0f + t) + 0.5f * *x * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * *x * *x)) * *g;
}

DLION_CLONES
void dlion_gelu_forward(float *out, const float *inp, size_t count) {
    size_t i = 0;
    f8 x;
    for (; i + 8 <= count; i += 8) {
        load8(&x, inp + i);
        gelu8(&x);
        store8(out + i, &x);
    }
    if (i < count) {
        float tail[8] = {0};
        memcpy(tail, inp + i, (count - i) * sizeof(float));
        load8(&x, tail);
        gelu8(&x);
        store8(tail, &x);
        memcpy(out + i, tail, (count - i) * sizeof(float));
    }
}

DLION_CLONES
void dlion_gelu_backward(float *dinp, const float *inp, const float *dout, size_t count) {
    size_t i = 0;
    f8 x, g;
    for (; i + 8 <= count; i += 8) {
        load8(&x, inp + i);
        load8(&g, dout + i);
        gelu_backward8(&x, &g);
        store8(dinp + i, &x);
    }
    if (i < count) {
        float tail[8] = {0}, gradient[8] = {0};
        memcpy(tail, inp + i, (count - i) * sizeof(float));
        memcpy(gradient, dout + i, (count - i) * sizeof(float));
        load8(&x, tail);
        load8(&g, gradient);
        gelu_backward8(&x, &g);
        store8(tail, &x);
        memcpy(dinp + i, tail, (count - i) * sizeof(float));
    }
}

DLION_CLONES
float dlion_exp_shifted(float *out, const float *x, float shift, size_t count) {
    f8 total = 0.0f, e;
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        load8(&e, x + i);
        e -= shift;
        exp8(&e);
        store8(out + i, &e);
        total += e;
    }
    float sum = total[0] + total[1] + total[2] + total[3] + total[4] + total[5] + total[6] + total[7];
    if (i < count) {
        float tail[8] = {0};
        memcpy(tail, x + i, (count - i) * sizeof(float));
        load8(&e, tail);
        e -= shift;
        exp8(&e);
        store8(tail, &e);
        for (size_t lane = 0; lane < count - i; lane++) sum += tail[lane];
        memcpy(out + i, tail, (count - i) * sizeof(float));
    }
    return sum;
}

DLION_CLONES
void dlion_softmax(float *out, const float *x, size_t visible, size_t count) {
    f8 largest = x[0], v;
    size_t i = 0;
    for (; i + 8 <= visible; i += 8) {
        load8(&v, x + i);
        largest = __builtin_elementwise_max(largest, v);
    }
    float shift = largest[0];
    for (size_t lane = 1; lane < 8; lane++) shift = shift > largest[lane] ? shift : largest[lane];
    for (; i < visible; i++) shift = shift > x[i] ? shift : x[i];
    float inverse = 1.0f / dlion_exp_shifted(out, x, shift, visible);
    for (i = 0; i + 8 <= visible; i += 8) {
        load8(&v, out + i);
        v *= inverse;
        store8(out + i, &v);
    }
    for (; i < visible; i++) out[i] *= inverse;
    for (i = visible; i < count; i++) out[i] = 0.0f;
}
