// Software prefetch, which Swift cannot spell.
#ifndef DLION_PREFETCH_H
#define DLION_PREFETCH_H

/// Asks for the 256 bytes (four cache lines) from `address` to be brought into cache for
/// reading. A hint: it never faults, even past the end of a buffer.
static inline void dlion_prefetch256(const void *address) {
    const char *bytes = (const char *)address;
    __builtin_prefetch(bytes, 0, 3);
    __builtin_prefetch(bytes + 64, 0, 3);
    __builtin_prefetch(bytes + 128, 0, 3);
    __builtin_prefetch(bytes + 192, 0, 3);
}

/// How far ahead of a streaming loop, in floats, `dlion_prefetch_ahead` asks for data: 8 KiB.
/// One core's hardware prefetchers alone keep too few lines in flight to reach the memory's
/// bandwidth; with this, pack reads a 64 MiB buffer faster than a plain loop does
/// (benchmarks/README.md).
#define DLION_PREFETCH_DISTANCE 2048

/// Prefetches the 64 floats `DLION_PREFETCH_DISTANCE` floats after `position`; call it once
/// per 64 floats of a long read.
static inline void dlion_prefetch_ahead(const float *position) {
    dlion_prefetch256(position + DLION_PREFETCH_DISTANCE);
}

#endif
