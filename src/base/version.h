/* version: the one place cohort's version string is written.
 *
 * Owns: COHORT_VERSION, printed by --version and logged at start.
 * Never: includes anything, so any file (config.c, node.h, tools) can use it. */
#ifndef COHORT_VERSION_H
#define COHORT_VERSION_H

#define COHORT_VERSION "0.1.0"

#endif
