/*
 * check.h - the one assertion macro of the C unit tests: a failed check is
 * counted and reported with its place and a message, and the test goes on so
 * one run shows every failure.  main() returns failures != 0.
 */
#ifndef EPH_TEST_CHECK_H
#define EPH_TEST_CHECK_H

#include <stdio.h>

static int failures, checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

#endif
