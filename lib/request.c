/* lib/request.c: being written. */
#include "config.h"
