/* gchttp/server.h: (being written) */
#ifndef GCHTTP_SERVER_H
#define GCHTTP_SERVER_H
#include "common.h"
#endif
