/*
 * shim/intercept_stdio.h - cookie streams on managed fds (intercept_stdio.c).
 */
#ifndef SHIM_INTERCEPT_STDIO_H
#define SHIM_INTERCEPT_STDIO_H

#include <stdio.h>

FILE *stdio_cookie_open(int fd, const char *mode);
void stdio_replace_std(void);
void stdio_std_managed(int fd);

#endif
