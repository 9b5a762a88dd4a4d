/* lib/context.c: being written. */
#include "config.h"
