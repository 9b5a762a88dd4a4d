/* gc/errno.c: names and messages of GH_E* codes (gchttp/errno.h). */
#include "config.h"

#include <string.h>

#include "gchttp/errno.h"

const char *gh_strerror(int err)
{
    switch (err) {
#define GH__ERRNO_MSG(name, val, msg)                                                              \
    case (val):                                                                                    \
        return (msg);
        GH_ERRNO_MAP(GH__ERRNO_MSG)
#undef GH__ERRNO_MSG
    case 0:
        return "success";
    default:
        break;
    }
    /* Any other -errno: strerrordesc_np returns a static, untranslated string, unlike
     * strerror, which may format unknown codes into a buffer shared between threads. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (err < 0 && err > -4000) {
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
#endif
    return "unknown error";
}

const char *gh_err_name(int err)
{
    switch (err) {
#define GH__ERRNO_NAME(name, val, msg)                                                             \
    case (val):                                                                                    \
        return "GH_" #name;
        GH_ERRNO_MAP(GH__ERRNO_NAME)
#undef GH__ERRNO_NAME
    case GH_OK:
        return "GH_OK";
    default:
        return "GH_UNKNOWN";
    }
}
