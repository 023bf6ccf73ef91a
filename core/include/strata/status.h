/* Status codes and error messages shared by every part of libstrata.
 *
 * Every fallible call returns an st_status. On failure it also leaves a
 * human-readable message that names the problem ("npy 'x.npy': dtype '<c8'
 * is not supported"); read it with st_error_message(). The message lives in
 * thread-local storage, so it is valid until the next failing call on the
 * same thread. The core never prints, exits or aborts on bad input. */
#ifndef STRATA_STATUS_H
#define STRATA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum st_status {
    ST_OK = 0,
    ST_EINVAL,    /* an argument is out of its documented range */
    ST_ESHAPE,    /* tensor shapes do not fit together */
    ST_EDTYPE,    /* element type not supported by this operation */
    ST_EIO,       /* the operating system refused a read, write or open */
    ST_EFORMAT,   /* a file or buffer is malformed */
    ST_ENOMEM,    /* an allocation failed */
    ST_ENUMERIC,  /* a NaN/Inf or a failed factorisation */
    ST_ESTATE     /* the object is not in a state that allows the call */
} st_status;

/* The message left by the last failing call on this thread ("" if none). */
const char *st_error_message(void);

/* Short name of a status code, e.g. "ST_ESHAPE". */
const char *st_status_name(st_status s);

/* Records a printf-style message and returns `s`, so failures read
 * `return st_fail(ST_ESHAPE, "matmul: [%d,%d] x [%d,%d]", ...);`. */
st_status st_fail(st_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prefixes the current message with context ("layer 'conv1': " + old). */
st_status st_fail_context(st_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Propagates a non-OK status from an expression. */
#define ST_TRY(expr)                      \
    do {                                  \
        st_status st_try_s_ = (expr);     \
        if (st_try_s_ != ST_OK) return st_try_s_; \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
