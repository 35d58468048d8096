/* busy: serving the clients from inside a command that holds the loop; see
 * busy.h.
 *
 * The loop is this node's only thread, and libuv forbids re-entering uv_run,
 * so while a long command runs (a script past lua-time-limit) nothing reads
 * the sockets. redis-server's answer (processEventsWhileBlocked) is to serve
 * the other clients from inside the command: each gets -BUSY, and SCRIPT KILL
 * or SHUTDOWN NOSAVE can stop it. This module does the I/O half of that
 * without libuv's loop: accept(2) on the listeners' sockets, read(2) on each
 * client's socket (both non-blocking, as libuv set them), the normal parser
 * and execute hook (server_process_input), and the normal direct write
 * (server_write_now; what the kernel does not take is queued and goes once
 * the loop runs again).
 *
 * Owns: the order of a pass (accept, then each client: read, run, write) and
 * its bounds (BUSY_ACCEPTS, BUSY_READS per client per pass). A pass costs a
 * read(2) per client, waiting or not: with thousands of connections the
 * passes (every 10 ms) take a visible share of a busy script's time.
 * Never: calls uv_run; reads the kept client (the one whose command holds the
 * loop), a client whose command is suspended (its later commands must wait
 * for it), or one closing; serves peer links or HTTP (they wait for the
 * loop); decides a reply (the execute hook does).
 *
 * Invariants (tests/integration/test_busy_script.py):
 *  1. Every command read during a pass gets its reply, in order, and nothing
 *     is left for the loop to run twice: a pipelined burst from many clients
 *     gets one -BUSY per command, and the same connections are served
 *     normally after (test_pipelined_burst_from_many_clients).
 *  2. The kept client is not read: its pipelined commands run after its
 *     script (test_callers_pipeline_waits_for_its_script).
 *  3. A connection made during the busy period is accepted and served, on
 *     TCP and on the unix socket (test_pipelined_burst_from_many_clients,
 *     test_unix_socket_connection_made_while_busy).
 *  4. A client that disconnects during the busy period is closed, once
 *     (test_client_leaving_while_busy).
 *  5. Output a client already had when a pass reaches it (a reply of the
 *     loop turn the script started in, a message the script published) is
 *     written with what it is answered behind it, in order, unless the
 *     caller asks to hold it (hold_output: client tracking's invalidations
 *     of the turn must be in the buffers before its replies are written;
 *     README, client-side caching): then the end of the turn writes it.
 *     Nothing is lost or reordered either way
 *     (test_subscriber_gets_the_scripts_message_then_busy,
 *     test_replies_wait_while_tracking_invalidations_are_pending). */
#include "busy.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server_int.h"

#define BUSY_ACCEPTS 64          /* connections accepted per listener per pass */
#define BUSY_READS   4           /* reads per client per pass */
#define BUSY_CHUNK   (16 * 1024) /* bytes offered to one read */

/* Accepts up to BUSY_ACCEPTS connections waiting on listener. */
static void accept_waiting(server_t *s, uv_handle_t *listener, int is_unix)
{
    uv_os_fd_t lfd;
    if (uv_fileno(listener, &lfd) != 0)
        return;
    for (int i = 0; i < BUSY_ACCEPTS; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("server", "accept while busy: %s", strerror(errno));
            return;
        }
        int rc = server_adopt_fd(s, fd, is_unix);
        if (rc < 0)
            log_warn("server", "accept while busy: %s", uv_strerror(rc));
    }
}

/* One non-blocking read into c->in. Returns the bytes read (0: nothing
 * waiting), or -1 when c was closed (EOF, error). */
static long read_once(server_t *s, client_t *c, int fd)
{
    size_t want = BUSY_CHUNK;
    if (c->parser.want_bytes > want)
        want = c->parser.want_bytes;
    char *p = buf_reserve(&c->in, want);
    ssize_t n;
    do
        n = read(fd, p, c->in.cap - c->in.end);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        buf_commit(&c->in, (size_t)n);
        s->stats.net_input_bytes += (uint64_t)n;
        return (long)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    client_close(c, n == 0 ? "EOF" : strerror(errno));
    return -1;
}

static int servable(const client_t *c)
{
    return !(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY | CLIENT_SUSPENDED));
}

/* Reads, runs and answers what c sent, up to BUSY_READS reads. With
 * hold_output, output c already had stays for the end of the turn, with what
 * is added behind it (invariant 5). */
static void serve_client(server_t *s, client_t *c, int hold_output)
{
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) != 0)
        return;
    int had_output = hold_output && buf_len(&c->out) > 0;
    for (int i = 0; i < BUSY_READS && servable(c); i++) {
        long n = read_once(s, c, fd);
        if (n <= 0)
            break;
        server_process_input(c);
    }
    if (!had_output && !(c->flags & CLIENT_CLOSING) && buf_len(&c->out) > 0)
        server_write_now(s, c);
}

void busy_serve(server_t *s, const client_t *keep, int hold_output)
{
    if (!s || s->stopping)
        return;
    if (s->tcp_open)
        accept_waiting(s, (uv_handle_t *)&s->tcp, 0);
    if (s->unix_open)
        accept_waiting(s, (uv_handle_t *)&s->unix_sock, 1);
    /* A closed client stays allocated until the loop's close callback, so
     * next stays valid when c closes. */
    client_t *next;
    for (client_t *c = s->clients; c; c = next) {
        next = c->next;
        if (c != keep && servable(c))
            serve_client(s, c, hold_output);
    }
}
