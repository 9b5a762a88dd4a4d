/* lib/hijack.c: hijack and close-notify (being written). */
#include "config.h"
#include "internal.h"
