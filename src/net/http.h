/* http: a minimal HTTP/1.1 server for health checks, metrics and status.
 *
 * Owns: its listener and connections, request parsing (Debian's http-parser
 * library), keep-alive, and the size limit on requests.
 * Never: lets a malformed or oversized request reach a handler (it gets 400 /
 * 413 / 431 and the connection is closed), or blocks the loop.
 *
 * Routes are a table of data: method, exact path, handler. A handler writes the
 * body into 'body', may set *content_type (default "text/plain; charset=utf-8"),
 * and returns the HTTP status code. Unknown paths get 404, known paths with
 * another method 405. */
#ifndef COHORT_HTTP_H
#define COHORT_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"

typedef int (*http_handler_fn)(void *ud, const char *query, buf_t *body,
                               const char **content_type);

typedef struct http_route {
    const char *method; /* "GET", "POST" */
    const char *path;   /* exact match, without the query string */
    http_handler_fn fn;
} http_route_t;

typedef struct http_server http_server_t;

/* Starts listening. routes must outlive the server (a static table). Returns
 * the server, or NULL with a message in err. */
http_server_t *http_start(uv_loop_t *loop, const char *bind, int port, size_t max_request,
                          const http_route_t *routes, size_t nroutes, void *ud, char *err,
                          size_t errlen);
/* Closes the listener and every connection; memory is released in the close
 * callbacks, so run the loop afterwards. */
void http_stop(http_server_t *h);
/* Sets how long a request may take to arrive, counted from the moment the
 * connection is ready for it (also the idle keep-alive limit); 0 restores the
 * default of 10 s. */
void http_set_request_timeout(http_server_t *h, unsigned ms);

typedef struct http_counters {
    unsigned long long requests;
    unsigned long long bad_requests;
    unsigned long long connections;
} http_counters_t;
const http_counters_t *http_counters(const http_server_t *h);

#endif
