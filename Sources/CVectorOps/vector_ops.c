// The kernels are in include/ (header-only, inlined into Swift) and transformer_kernels.c.
#include "nontemporal.h"
#include "prefetch.h"
#include "signmask.h"
