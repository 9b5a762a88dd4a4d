/* lib/bufio.c: being written. */
#include "config.h"
