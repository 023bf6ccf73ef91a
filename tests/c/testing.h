/* A tiny test harness for the C unit tests: each test file defines test
 * functions, registers them in main with RUN(fn), and ends with
 * TEST_SUMMARY(), which prints "N passed, N failed" and sets the exit code. */
#ifndef STRATA_TESTING_H
#define STRATA_TESTING_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "strata/status.h"

static int testing_failures_in_test;
static int testing_passed, testing_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            testing_failures_in_test++;                                               \
        }                                                                             \
    } while (0)

/* Checks a status is ST_OK and shows the library's message if not. */
#define CHECK_OK(expr)                                                                \
    do {                                                                              \
        st_status check_s_ = (expr);                                                  \
        if (check_s_ != ST_OK) {                                                      \
            fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #expr, \
                    st_status_name(check_s_), st_error_message());                    \
            testing_failures_in_test++;                                               \
        }                                                                             \
    } while (0)

/* Checks that a call fails with the given status and a non-empty message
 * containing `needle`. */
#define CHECK_FAILS(expr, status, needle)                                             \
    do {                                                                              \
        st_status check_s_ = (expr);                                                  \
        if (check_s_ != (status) || !strstr(st_error_message(), (needle))) {          \
            fprintf(stderr, "%s:%d: %s gave %s '%s', wanted %s containing '%s'\n",    \
                    __FILE__, __LINE__, #expr, st_status_name(check_s_),              \
                    st_error_message(), st_status_name(status), (needle));            \
            testing_failures_in_test++;                                               \
        }                                                                             \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                                 \
    do {                                                                              \
        double check_a_ = (a), check_b_ = (b);                                        \
        if (!(fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_))) {       \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g\n", __FILE__,       \
                    __LINE__, #a, check_a_, #b, check_b_);                            \
            testing_failures_in_test++;                                               \
        }                                                                             \
    } while (0)

#define RUN(fn)                                                                       \
    do {                                                                              \
        testing_failures_in_test = 0;                                                 \
        fn();                                                                         \
        if (testing_failures_in_test) {                                               \
            testing_failed++;                                                         \
            fprintf(stderr, "FAIL %s\n", #fn);                                        \
        } else {                                                                      \
            testing_passed++;                                                         \
        }                                                                             \
    } while (0)

#define TEST_SUMMARY()                                                                \
    (printf("%d passed, %d failed\n", testing_passed, testing_failed),                \
     testing_failed ? 1 : 0)

#endif
