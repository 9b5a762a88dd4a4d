/* lib/hijack.c: being written. */
#include "config.h"
