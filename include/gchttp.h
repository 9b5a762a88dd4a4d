/*
 * gchttp.h: the umbrella header. Include this, or the one header per concept under
 * gchttp/ that you need.
 */
#ifndef GCHTTP_H
#define GCHTTP_H

#include "gchttp/common.h"
#include "gchttp/errno.h"
#include "gchttp/obj.h"
#include "gchttp/weak.h"
#include "gchttp/fd.h"
#include "gchttp/ref.h"
#include "gchttp/thread.h"
#include "gchttp/gc.h"
#include "gchttp/bufio.h"
#include "gchttp/context.h"
#include "gchttp/request.h"
#include "gchttp/response.h"
#include "gchttp/server.h"
#include "gchttp/hijack.h"
#include "gchttp/url.h"
#include "gchttp/mux.h"
#include "gchttp/date.h"
#include "gchttp/mime.h"
#include "gchttp/fileserver.h"
#include "gchttp/form.h"
#include "gchttp/cookie.h"
#include "gchttp/watch.h"
#include "gchttp/websocket.h"
#include "gchttp/multipart.h"

#endif
