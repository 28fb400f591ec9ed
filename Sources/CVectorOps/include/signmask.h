// Move-masks, which Swift cannot spell: 16 float lanes to 16 bits in a few instructions
// (packs and `pmovmskb` on x86-64, narrowing and a horizontal add on AArch64) instead of
// a lane-by-lane loop.
#ifndef DLION_SIGNMASK_H
#define DLION_SIGNMASK_H

#include <stdint.h>

typedef float dlion_float16 __attribute__((ext_vector_type(16)));
typedef int32_t dlion_int16 __attribute__((ext_vector_type(16)));
typedef _Bool dlion_bool16 __attribute__((ext_vector_type(16)));

/// Bit i set where lane i has its sign bit set (−0, negative numbers, −Inf, NaNs with the bit).
static inline uint16_t dlion_negative_bits16(dlion_float16 values) {
    dlion_int16 bits = __builtin_bit_cast(dlion_int16, values);
    return __builtin_bit_cast(uint16_t, __builtin_convertvector(bits < 0, dlion_bool16));
}

/// Bit i set where lane i has no sign: ±0 or NaN. `!(0 < |x|)` is one unordered compare.
static inline uint16_t dlion_signless_bits16(dlion_float16 values) {
    dlion_float16 magnitude = __builtin_bit_cast(dlion_float16, __builtin_bit_cast(dlion_int16, values) & 0x7FFFFFFF);
    return __builtin_bit_cast(uint16_t, __builtin_convertvector(!(0.0f < magnitude), dlion_bool16));
}

#endif
