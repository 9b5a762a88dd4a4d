/* lib/response.c: being written. */
#include "config.h"
