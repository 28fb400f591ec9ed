// Non-temporal stores, which Swift cannot spell: a store that bypasses the cache, so writing
// a large output buffer does not first read every line it overwrites.
#ifndef DLION_NONTEMPORAL_H
#define DLION_NONTEMPORAL_H

typedef float dlion_float4 __attribute__((ext_vector_type(4)));

/// Stores 4 floats at `destination` (16-byte aligned) without reading the line first.
static inline void dlion_stream_store4(float *destination, dlion_float4 value) {
    __builtin_nontemporal_store(value, (dlion_float4 *)destination);
}

/// Orders earlier non-temporal stores before later stores (x86 `sfence`); call it before
/// another thread or process may read what was streamed.
static inline void dlion_stream_fence(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

#endif
