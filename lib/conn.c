/* lib/conn.c: being written. */
#include "config.h"
