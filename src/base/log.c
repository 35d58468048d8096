/* log: one line per event, to stderr or the node's log file; see log.h.
 *
 * Owns: the destination (a file descriptor: stderr, or the log file opened
 * with O_APPEND), the minimum level, and the line format
 *   2026-11-22T03:00:10.123Z www1 INFO server: listening on 127.0.0.1:7379
 * Never: allocates or takes a lock on the logging path. A line is formatted
 * into a stack buffer and handed to the kernel with one write(), so lines
 * from several processes appending to one file do not interleave. A message
 * longer than the buffer is cut and ends in "..."; control characters in a
 * message become '?', so one event is always exactly one line.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096 /* one log line, newline included */
#define NAME_BYTES     65   /* node name, NUL included */
#define PATH_BYTES     4096 /* log file path, NUL included */

static struct {
    int fd;                /* where lines go: STDERR_FILENO or our file */
    int min_level;         /* lines below this are dropped */
    char name[NAME_BYTES]; /* node name on every line */
    char path[PATH_BYTES]; /* the log file; "" means stderr */
} L = {STDERR_FILENO, LOG_INFO, "-", ""};

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static const struct {
    const char *word;
    int level;
} level_words[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO},   {"warning", LOG_WARN},
    {"warn", LOG_WARN},   {"error", LOG_ERROR},
};

int log_level_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof(level_words) / sizeof(level_words[0]); i++)
        if (strcasecmp(s, level_words[i].word) == 0)
            return level_words[i].level;
    return -1;
}

/* Opens path for appending. Returns the descriptor, or -errno. */
static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

static void close_file(void)
{
    if (L.fd != STDERR_FILENO)
        close(L.fd);
    L.fd = STDERR_FILENO;
}

void log_set_name(const char *node_name)
{
    snprintf(L.name, sizeof(L.name), "%s", node_name && *node_name ? node_name : "-");
}

int log_open(const char *node_name, const char *path, int min_level)
{
    snprintf(L.name, sizeof(L.name), "%s", node_name && *node_name ? node_name : "-");
    L.min_level = min_level < LOG_DEBUG ? LOG_DEBUG : min_level > LOG_ERROR ? LOG_ERROR : min_level;
    close_file();
    L.path[0] = '\0';
    if (!path || !*path)
        return 0;
    if (strlen(path) >= sizeof(L.path)) {
        errno = ENAMETOOLONG;
        return -ENAMETOOLONG;
    }
    int fd = open_log(path);
    if (fd < 0) {
        errno = -fd;
        return fd;
    }
    L.fd = fd;
    memcpy(L.path, path, strlen(path) + 1);
    return 0;
}

void log_close(void)
{
    close_file();
    L.path[0] = '\0';
}

/* The new file takes the old descriptor's number (dup3), so a line being
 * written concurrently goes to one file or the other, never nowhere. On
 * failure the old file stays in use. */
int log_reopen(void)
{
    if (!L.path[0])
        return 0;
    int fd = open_log(L.path);
    if (fd < 0)
        return fd;
    if (L.fd == STDERR_FILENO) {
        L.fd = fd;
        return 0;
    }
    int rc = dup3(fd, L.fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Writes all of buf to fd, retrying after a signal or a short write. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report it */
        buf += w;
        len -= (size_t)w;
    }
}

void log_msg(int level, const char *subsys, const char *fmt, ...)
{
    if (level < L.min_level)
        return;
    if (level > LOG_ERROR)
        level = LOG_ERROR;
    int saved_errno = errno;
    char line[LINE_MAX_BYTES];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    int n = snprintf(
        line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s %.32s: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000),
        L.name, level_names[level], subsys ? subsys : "-");
    size_t head = n < 0 ? 0 : (size_t)n;   /* < sizeof(line) / 2 given the bounds above */
    size_t room = sizeof(line) - head - 1; /* keep one byte for the newline */

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + head, room + 1, fmt, ap);
    va_end(ap);
    size_t len;
    if (m < 0) {
        len = head + (size_t)snprintf(line + head, room + 1, "(bad log format: %.64s)", fmt);
    } else if ((size_t)m > room) {
        len = sizeof(line) - 1;
        memcpy(line + len - 3, "...", 3);
    } else {
        len = head + (size_t)m;
    }
    for (size_t i = head; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    write_all(L.fd, line, len);
    errno = saved_errno;
}
