/* gc/fd.c: being written. */
#include "config.h"
