/* lib/server.c: being written. */
#include "config.h"
