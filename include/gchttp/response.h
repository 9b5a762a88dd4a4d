/* gchttp/response.h: (being written) */
#ifndef GCHTTP_RESPONSE_H
#define GCHTTP_RESPONSE_H
#include "common.h"
#endif
