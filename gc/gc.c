/* gc/gc.c: being written. */
#include "config.h"
