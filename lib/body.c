/* lib/body.c: being written. */
#include "config.h"
