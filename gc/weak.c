/* gc/weak.c: being written. */
#include "config.h"
