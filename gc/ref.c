/* gc/ref.c: being written. */
#include "config.h"
