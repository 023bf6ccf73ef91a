/* Thread-local error messages (see status.h). */
#include "strata/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ST_MSG_CAP 1024

static _Thread_local char st_message[ST_MSG_CAP];

const char *st_error_message(void) { return st_message; }

const char *st_status_name(st_status s)
{
    switch (s) {
    case ST_OK: return "ST_OK";
    case ST_EINVAL: return "ST_EINVAL";
    case ST_ESHAPE: return "ST_ESHAPE";
    case ST_EDTYPE: return "ST_EDTYPE";
    case ST_EIO: return "ST_EIO";
    case ST_EFORMAT: return "ST_EFORMAT";
    case ST_ENOMEM: return "ST_ENOMEM";
    case ST_ENUMERIC: return "ST_ENUMERIC";
    case ST_ESTATE: return "ST_ESTATE";
    }
    return "ST_UNKNOWN";
}

st_status st_fail(st_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st_message, sizeof st_message, fmt, ap);
    va_end(ap);
    return s;
}

st_status st_fail_context(st_status s, const char *fmt, ...)
{
    char prefix[ST_MSG_CAP], old[ST_MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, st_message, sizeof old);
    /* Both parts are truncated to fit, the prefix first. */
    size_t n = strnlen(prefix, ST_MSG_CAP - 1);
    memcpy(st_message, prefix, n);
    size_t m = strnlen(old, ST_MSG_CAP - 1 - n);
    memcpy(st_message + n, old, m);
    st_message[n + m] = '\0';
    return s;
}
