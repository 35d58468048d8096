/* errmsg: the error convention's one line for the caller (src/README.md).
 *
 * Owns: writing a message into a caller's `char *err, size_t errlen`.
 * Never: allocates, or writes when the caller gave no room (err NULL or
 * errlen 0). */
#ifndef COHORT_ERRMSG_H
#define COHORT_ERRMSG_H

#include <stddef.h>

/* Formats the message into err (truncated to errlen, NUL-terminated). */
void errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
