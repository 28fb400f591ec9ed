// Header-only: everything is in include/.
#include "nontemporal.h"
#include "prefetch.h"
#include "signmask.h"
