// Header-only: everything is in include/nontemporal.h.
#include "nontemporal.h"
