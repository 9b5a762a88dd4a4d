/* gc/errno.c: being written. */
#include "config.h"
