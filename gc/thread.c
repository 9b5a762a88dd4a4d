/* gc/thread.c: being written. */
#include "config.h"
