/* gc/obj.c: being written. */
#include "config.h"
