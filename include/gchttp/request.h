/* gchttp/request.h: (being written) */
#ifndef GCHTTP_REQUEST_H
#define GCHTTP_REQUEST_H
#include "common.h"
#endif
