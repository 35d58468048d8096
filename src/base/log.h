/* log: one line per event, to stderr or to the node's log file.
 *
 * Owns: the log destination and the line format
 *   2026-11-22T03:00:10.123Z www1 INFO server: listening on 127.0.0.1:7379
 * (UTC time with milliseconds, node name, level, subsystem, message).
 * Never: allocates on the logging path or blocks on anything but the write. */
#ifndef COHORT_LOG_H
#define COHORT_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the node name and destination (path NULL or "" means stderr).
 * Returns 0, or -errno if the file cannot be opened (logging stays on stderr). */
int log_open(const char *node_name, const char *path, int min_level);
void log_close(void);
/* Changes the node name on later lines (the simulator runs several nodes in
 * one process and names the one whose code runs). */
void log_set_name(const char *node_name);
/* Reopens the file (after rotation, on SIGHUP). */
int log_reopen(void);
/* Parses "debug", "info", "warning"/"warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(sub, ...) log_msg(LOG_DEBUG, sub, __VA_ARGS__)
#define log_info(sub, ...)  log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_warn(sub, ...)  log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)

#endif
