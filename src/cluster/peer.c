/* peer: authenticated links between cohortd nodes.
 *
 * Owns: the peer listener, outgoing connections, the handshake (HELLO ->
 * WELCOME -> PROOF, proving both sides hold the cluster key over fresh
 * nonces), reading and authenticating frames, and writing them once per loop
 * turn.
 * Never: interprets a frame after the handshake (membership.c and
 * coherence.c do), or keeps a link that sent anything malformed, forged,
 * replayed or oversized: such a link is closed, the reason logged (once per
 * address and reason a minute) and counted.
 *
 * Link states: CONNECTING (initiator, TCP connect in progress) -> HANDSHAKE
 * -> READY -> CLOSING (uv_close called; freed in the close callback).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "cluster_int.h"
#include "log.h"
#include "mem.h"
#include "outq.h"

#define PEER_READ_CHUNK (64 * 1024)
#define PEER_OUT_LIMIT (256u << 20) /* a peer this far behind is dropped */
#define HANDSHAKE_MS 2000
#define LOG_ONCE_SLOTS 64
#define LOG_ONCE_MS 60000

/* ---- logging a refusal once per address and reason ----------------------- */

static struct {
    uint64_t hash;
    int64_t at;
} log_once_table[LOG_ONCE_SLOTS];

static int should_log(const char *addr, const char *why, int64_t now)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = addr; *p && *p != ':'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = why; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    size_t slot = h % LOG_ONCE_SLOTS;
    if (log_once_table[slot].hash == h && now - log_once_table[slot].at < LOG_ONCE_MS)
        return 0;
    log_once_table[slot].hash = h;
    log_once_table[slot].at = now;
    return 1;
}

void peer_refuse(link_t *l, const char *why)
{
    cluster_t *cl = l->cl;
    cl->counters.links_refused++;
    if (should_log(l->addr, why, cluster_mono(cl)))
        log_warn("peer", "link with %s refused: %s", l->addr, why);
    peer_close(l, why);
}

/* ---- lifetime ------------------------------------------------------------ */

static link_t *new_link(cluster_t *cl, int initiator)
{
    link_t *l = xcalloc(1, sizeof(*l));
    l->cl = cl;
    l->initiator = initiator;
    buf_init(&l->in);
    buf_init(&l->out);
    uv_tcp_init(cl->loop, &l->tcp);
    l->tcp.data = l;
    l->deadline = cluster_mono(cl) + HANDSHAKE_MS;
    l->next = cl->links;
    cl->links = l;
    return l;
}

static void on_link_closed(uv_handle_t *h)
{
    link_t *l = h->data;
    buf_free(&l->in);
    buf_free(&l->out);
    frame_key_free(&l->key_out);
    frame_key_free(&l->key_in);
    free(l);
}

static void unlist(cluster_t *cl, link_t *l)
{
    for (link_t **p = &cl->links; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            return;
        }
    }
}

void peer_close(link_t *l, const char *why)
{
    if (l->state == LINK_CLOSING)
        return;
    int was_ready = l->state == LINK_READY;
    l->state = LINK_CLOSING;
    unlist(l->cl, l);
    cluster_link_closed(l, was_ready);
    uv_read_stop((uv_stream_t *)&l->tcp);
    uv_close((uv_handle_t *)&l->tcp, on_link_closed);
    (void)why;
}

/* ---- writing ------------------------------------------------------------- */


static void want_write(link_t *l)
{
    if (l->in_wlist || l->state == LINK_CLOSING)
        return;
    l->in_wlist = 1;
    l->wnext = l->cl->wlist;
    l->cl->wlist = l;
}

size_t peer_frame_begin(link_t *l, uint8_t type)
{
    interest_end_batch(l); /* this turn's messages so far go first */
    return frame_begin(&l->out, type, l->state == LINK_READY ? &l->send_seq : NULL);
}

void peer_frame_end(link_t *l, size_t start)
{
    frame_end(&l->out, start, l->state == LINK_READY ? &l->key_out : &l->cl->key);
    want_write(l);
}

static void on_peer_write(void *ud, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        peer_close(ud, uv_strerror(status));
}

static void write_link(link_t *l)
{
    interest_end_batch(l);
    if (buf_len(&l->out) == 0 || l->state == LINK_CLOSING)
        return;
    if (l->out_inflight + buf_len(&l->out) > PEER_OUT_LIMIT) {
        peer_refuse(l, "peer is not reading (output limit)");
        return;
    }
    long n = outq_write((uv_stream_t *)&l->tcp, &l->out, &l->out_inflight, on_peer_write, l);
    if (n < 0)
        peer_close(l, uv_strerror((int)n));
}

void peer_flush_writes(cluster_t *cl)
{
    while (cl->wlist) {
        link_t *l = cl->wlist;
        cl->wlist = l->wnext;
        l->in_wlist = 0;
        write_link(l);
    }
}

/* ---- handshake ------------------------------------------------------------ */

static void send_hello(link_t *l)
{
    cluster_t *cl = l->cl;
    const config_t *cfg = cl->cfg;
    if (frame_nonce(l->nonce_i) < 0) {
        peer_refuse(l, "no random bytes for a nonce");
        return;
    }
    size_t s = peer_frame_begin(l, FRAME_HELLO);
    frame_put_u8(&l->out, FRAME_VERSION);
    frame_put_bytes(&l->out, cfg->cluster_name, strlen(cfg->cluster_name));
    frame_put_bytes(&l->out, cfg->name, strlen(cfg->name));
    frame_put_u64(&l->out, cl->incarnation);
    frame_put_u16(&l->out, (uint16_t)cfg->cluster_port);
    frame_put_bytes(&l->out, l->nonce_i, FRAME_NONCE_SIZE);
    peer_frame_end(l, s);
    l->state = LINK_HANDSHAKE;
}

static int same_text(frame_bytes_t b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.p, s, b.len) == 0;
}

static void copy_name(char *dst, frame_bytes_t b)
{
    size_t n = b.len < NAME_MAX_LEN - 1 ? b.len : NAME_MAX_LEN - 1;
    memcpy(dst, b.p, n);
    dst[n] = '\0';
}

/* The member an incoming HELLO comes from: same IP and listen port as a
 * configured peer, or else the same node name. */
static member_t *match_member(cluster_t *cl, link_t *l, uint16_t port, frame_bytes_t name)
{
    char ip[80];
    snprintf(ip, sizeof(ip), "%s", l->addr);
    char *colon = strrchr(ip, ':');
    if (colon)
        *colon = '\0';
    char id[96];
    snprintf(id, sizeof(id), "%s:%u", ip, port);
    for (size_t i = 0; i < cl->nmembers; i++)
        if (strcmp(cl->members[i].id, id) == 0)
            return &cl->members[i];
    return member_by_name(cl, (const char *)name.p, name.len);
}

static void on_hello(link_t *l, const frame_hdr_t *h)
{
    cluster_t *cl = l->cl;
    const config_t *cfg = cl->cfg;
    frame_reader_t r;
    uint8_t proto;
    frame_bytes_t cluster, name, nonce;
    uint64_t inc;
    uint16_t port;
    frame_reader_init(&r, h);
    frame_get_u8(&r, &proto);
    frame_get_bytes(&r, &cluster, 256);
    frame_get_bytes(&r, &name, NAME_MAX_LEN - 1);
    frame_get_u64(&r, &inc);
    frame_get_u16(&r, &port);
    frame_get_bytes(&r, &nonce, FRAME_NONCE_SIZE);
    if (frame_reader_done(&r) != 0 || nonce.len != FRAME_NONCE_SIZE || name.len == 0) {
        peer_refuse(l, "malformed HELLO");
        return;
    }
    if (proto != FRAME_VERSION) {
        peer_refuse(l, "protocol version mismatch");
        return;
    }
    if (!same_text(cluster, cfg->cluster_name)) {
        peer_refuse(l, "cluster name mismatch");
        return;
    }
    member_t *m = match_member(cl, l, port, name);
    if (!m) {
        peer_refuse(l, "not a configured peer");
        return;
    }
    /* Nothing about the member changes before the initiator's PROOF: a
     * replayed HELLO must not disturb the link it copies. */
    l->member = m;
    copy_name(l->peer_name, name);
    l->peer_inc = inc;
    memcpy(l->nonce_i, nonce.p, FRAME_NONCE_SIZE);
    if (frame_nonce(l->nonce_a) < 0) {
        peer_refuse(l, "no random bytes for a nonce");
        return;
    }
    uint8_t proof[FRAME_MAC_SIZE];
    frame_proof(cl->key.bytes, FRAME_KEY_SIZE, "acceptor", l->nonce_i, l->nonce_a, l->peer_name,
                cfg->name, proof);
    size_t s = peer_frame_begin(l, FRAME_WELCOME);
    frame_put_u8(&l->out, FRAME_VERSION);
    frame_put_bytes(&l->out, cfg->cluster_name, strlen(cfg->cluster_name));
    frame_put_bytes(&l->out, cfg->name, strlen(cfg->name));
    frame_put_u64(&l->out, cl->incarnation);
    frame_put_bytes(&l->out, l->nonce_a, FRAME_NONCE_SIZE);
    frame_put_bytes(&l->out, proof, FRAME_MAC_SIZE);
    peer_frame_end(l, s);
}

/* The handshake is proven: the member's name and incarnation are now known
 * for sure, and this link replaces any older one. */
static void become_ready(link_t *l)
{
    cluster_t *cl = l->cl;
    uint8_t i2a[FRAME_KEY_SIZE], a2i[FRAME_KEY_SIZE];
    frame_link_keys(cl->key.bytes, FRAME_KEY_SIZE, l->nonce_i, l->nonce_a, i2a, a2i);
    frame_key_init(&l->key_out, l->initiator ? i2a : a2i);
    frame_key_init(&l->key_in, l->initiator ? a2i : i2a);
    OPENSSL_cleanse(i2a, sizeof(i2a));
    OPENSSL_cleanse(a2i, sizeof(a2i));
    cluster_link_ready(l);
}

static void on_welcome(link_t *l, const frame_hdr_t *h)
{
    cluster_t *cl = l->cl;
    const config_t *cfg = cl->cfg;
    frame_reader_t r;
    uint8_t proto;
    frame_bytes_t cluster, name, nonce, proof;
    uint64_t inc;
    frame_reader_init(&r, h);
    frame_get_u8(&r, &proto);
    frame_get_bytes(&r, &cluster, 256);
    frame_get_bytes(&r, &name, NAME_MAX_LEN - 1);
    frame_get_u64(&r, &inc);
    frame_get_bytes(&r, &nonce, FRAME_NONCE_SIZE);
    frame_get_bytes(&r, &proof, FRAME_MAC_SIZE);
    if (frame_reader_done(&r) != 0 || nonce.len != FRAME_NONCE_SIZE ||
        proof.len != FRAME_MAC_SIZE || name.len == 0) {
        peer_refuse(l, "malformed WELCOME");
        return;
    }
    if (proto != FRAME_VERSION || !same_text(cluster, cfg->cluster_name)) {
        peer_refuse(l, proto != FRAME_VERSION ? "protocol version mismatch" : "cluster name mismatch");
        return;
    }
    copy_name(l->peer_name, name);
    l->peer_inc = inc;
    memcpy(l->nonce_a, nonce.p, FRAME_NONCE_SIZE);
    uint8_t want[FRAME_MAC_SIZE];
    frame_proof(cl->key.bytes, FRAME_KEY_SIZE, "acceptor", l->nonce_i, l->nonce_a, cfg->name,
                l->peer_name, want);
    if (!frame_mac_equal(want, proof.p, FRAME_MAC_SIZE)) {
        peer_refuse(l, "handshake proof failed (wrong cluster key?)");
        return;
    }
    uint8_t mine[FRAME_MAC_SIZE];
    frame_proof(cl->key.bytes, FRAME_KEY_SIZE, "initiator", l->nonce_i, l->nonce_a, cfg->name,
                l->peer_name, mine);
    size_t s = peer_frame_begin(l, FRAME_PROOF);
    frame_put_bytes(&l->out, mine, FRAME_MAC_SIZE);
    peer_frame_end(l, s);
    become_ready(l);
}

static void on_proof(link_t *l, const frame_hdr_t *h)
{
    cluster_t *cl = l->cl;
    frame_reader_t r;
    frame_bytes_t proof;
    frame_reader_init(&r, h);
    frame_get_bytes(&r, &proof, FRAME_MAC_SIZE);
    if (frame_reader_done(&r) != 0 || proof.len != FRAME_MAC_SIZE || !l->member) {
        peer_refuse(l, "malformed PROOF");
        return;
    }
    uint8_t want[FRAME_MAC_SIZE];
    frame_proof(cl->key.bytes, FRAME_KEY_SIZE, "initiator", l->nonce_i, l->nonce_a, l->peer_name,
                cl->cfg->name, want);
    if (!frame_mac_equal(want, proof.p, FRAME_MAC_SIZE)) {
        peer_refuse(l, "handshake proof failed (wrong cluster key?)");
        return;
    }
    become_ready(l);
}

/* ---- reading ------------------------------------------------------------- */

static void on_handshake_frame(link_t *l, const frame_hdr_t *h)
{
    int want = l->initiator ? FRAME_WELCOME : (l->member ? FRAME_PROOF : FRAME_HELLO);
    if (h->type != want || h->seq != 0) {
        peer_refuse(l, "unexpected frame during handshake");
        return;
    }
    if (h->type == FRAME_HELLO)
        on_hello(l, h);
    else if (h->type == FRAME_WELCOME)
        on_welcome(l, h);
    else
        on_proof(l, h);
}

/* Before the handshake: a few small frames, so a stranger cannot make this
 * node buffer much. After it: a FLUSH batch (FRAME_BATCH_SOFT plus its last
 * entry) or a SEED, each entry a key and a value of up to peer_entry_max (at
 * most 1 GB, so the sum fits 32 bits). */
static uint32_t max_payload(const cluster_t *cl, int ready)
{
    if (!ready)
        return FRAME_HANDSHAKE_MAX;
    uint64_t n = FRAME_BATCH_SOFT + 2 * (uint64_t)peer_entry_max(cl) + 65536;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static void process_link_input(link_t *l)
{
    cluster_t *cl = l->cl;
    while (l->state == LINK_HANDSHAKE || l->state == LINK_READY) {
        frame_hdr_t h;
        int ready = l->state == LINK_READY;
        long n = frame_decode((const uint8_t *)buf_head(&l->in), buf_len(&l->in),
                              max_payload(cl, ready), ready ? &l->key_in : &cl->key,
                              ready ? &l->recv_seq : NULL, &h);
        if (n == 0)
            break;
        if (n < 0) {
            peer_refuse(l, frame_strerror((int)n));
            return;
        }
        if (ready)
            cluster_on_frame(l, &h);
        else
            on_handshake_frame(l, &h);
        if (l->state == LINK_CLOSING)
            return;
        buf_consume(&l->in, (size_t)n);
    }
}

static void on_peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    link_t *l = h->data;
    char *p = buf_reserve(&l->in, PEER_READ_CHUNK);
    *out = uv_buf_init(p, (unsigned)(l->in.cap - l->in.end));
}

static void on_peer_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    link_t *l = s->data;
    if (nread < 0) {
        peer_close(l, nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    clock_tick();
    buf_commit(&l->in, (size_t)nread);
    process_link_input(l);
    if (l->state != LINK_CLOSING && buf_len(&l->in) == 0)
        buf_trim(&l->in, PEER_READ_CHUNK * 2);
}

/* ---- connecting and accepting -------------------------------------------- */

static void remote_addr(link_t *l)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(l->addr, sizeof(l->addr), "%s:%d", ip, port);
}

static void on_connected(uv_connect_t *req, int status)
{
    link_t *l = req->data;
    if (l->state == LINK_CLOSING)
        return;
    if (status < 0) {
        member_t *m = l->member;
        int refused = status == UV_ECONNREFUSED;
        m->pending = NULL;
        l->member = NULL;
        peer_close(l, uv_strerror(status));
        member_connect_failed(m, refused);
        return;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    remote_addr(l);
    uv_read_start((uv_stream_t *)&l->tcp, on_peer_alloc, on_peer_read);
    send_hello(l);
}

void peer_connect(cluster_t *cl, member_t *m)
{
    link_t *l = new_link(cl, 1);
    l->member = m;
    l->state = LINK_CONNECTING;
    snprintf(l->addr, sizeof(l->addr), "%s", m->id);
    m->pending = l;
    l->connect_req.data = l;
    int rc = uv_tcp_connect(&l->connect_req, &l->tcp, (struct sockaddr *)&m->sa, on_connected);
    if (rc < 0) {
        m->pending = NULL;
        l->member = NULL;
        peer_close(l, uv_strerror(rc));
        member_connect_failed(m, 0);
    }
}

static int authorized(cluster_t *cl, const struct sockaddr_storage *ss);

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* A connection from a member we are to connect to, while we have no link to
 * it, means it is (back) up and knocking: connect now instead of waiting for
 * the backoff. */
static void wake_initiators(cluster_t *cl, const struct sockaddr_storage *from)
{
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        if (m->we_initiate && !m->link && !m->pending && same_ip(&m->sa, from)) {
            m->backoff_ms = 50;
            m->next_connect = cluster_mono(cl);
        }
    }
}

static void on_peer_connection(uv_stream_t *server, int status)
{
    cluster_t *cl = server->data;
    if (status < 0)
        return;
    link_t *l = new_link(cl, 0);
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        peer_close(l, "accept failed");
        return;
    }
    remote_addr(l);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) != 0 || !authorized(cl, &ss)) {
        peer_refuse(l, "address not authorized");
        return;
    }
    l->state = LINK_HANDSHAKE;
    uv_tcp_nodelay(&l->tcp, 1);
    uv_read_start((uv_stream_t *)&l->tcp, on_peer_alloc, on_peer_read);
    wake_initiators(cl, &ss);
}

/* ---- authorization ------------------------------------------------------- */

typedef struct authorized_net {
    int family;
    uint8_t addr[16];
    int bits;
} authorized_net_t;

static int prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

static int authorized(cluster_t *cl, const struct sockaddr_storage *ss)
{
    uint8_t addr[16];
    int family = ss->ss_family;
    if (family == AF_INET)
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else
        memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    for (size_t i = 0; i < cl->nauthorized; i++) {
        authorized_net_t *a = &cl->authorized[i];
        if (a->family == family && prefix_match(a->addr, addr, a->bits))
            return 1;
    }
    return 0;
}

/* Parses "a.b.c.d/len", "a.b.c.d", "x::y/len". Returns 0 or -1. */
static int parse_cidr(const char *s, authorized_net_t *out)
{
    char ip[64];
    snprintf(ip, sizeof(ip), "%s", s);
    char *slash = strchr(ip, '/');
    int bits = -1;
    if (slash) {
        *slash = '\0';
        bits = atoi(slash + 1);
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, ip, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = bits < 0 ? 32 : bits;
        return out->bits <= 32 ? 0 : -1;
    }
    if (inet_pton(AF_INET6, ip, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = bits < 0 ? 128 : bits;
        return out->bits <= 128 ? 0 : -1;
    }
    return -1;
}

static int setup_authorized(cluster_t *cl, char *err, size_t errlen)
{
    const config_t *cfg = cl->cfg;
    size_t n = cfg->authorized.n ? cfg->authorized.n : cl->nmembers;
    cl->authorized = xcalloc(n ? n : 1, sizeof(authorized_net_t));
    for (size_t i = 0; i < cfg->authorized.n; i++) {
        if (parse_cidr(cfg->authorized.items[i], &cl->authorized[i]) < 0) {
            snprintf(err, errlen, "authorized: not a CIDR: %s", cfg->authorized.items[i]);
            return -1;
        }
    }
    if (cfg->authorized.n) {
        cl->nauthorized = cfg->authorized.n;
        return 0;
    }
    /* Default: the peers' own addresses. */
    for (size_t i = 0; i < cl->nmembers; i++) {
        authorized_net_t *a = &cl->authorized[i];
        const struct sockaddr_storage *ss = &cl->members[i].sa;
        a->family = ss->ss_family;
        if (a->family == AF_INET) {
            memcpy(a->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
            a->bits = 32;
        } else {
            memcpy(a->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
            a->bits = 128;
        }
    }
    cl->nauthorized = cl->nmembers;
    return 0;
}

int peer_listen(cluster_t *cl, char *err, size_t errlen)
{
    const config_t *cfg = cl->cfg;
    if (setup_authorized(cl, err, errlen) < 0)
        return -1;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->cluster_bind, cfg->cluster_port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(cfg->cluster_bind, cfg->cluster_port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "cluster bind: not an IP address: %s", cfg->cluster_bind);
        return -1;
    }
    uv_tcp_init(cl->loop, &cl->listener);
    cl->listener.data = cl;
    cl->listener_open = 1;
    int rc = uv_tcp_bind(&cl->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&cl->listener, 128, on_peer_connection);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen for peers on %s:%d: %s", cfg->cluster_bind,
                 cfg->cluster_port, uv_strerror(rc));
        return -1;
    }
    log_info("peer", "listening for peers on %s:%d", cfg->cluster_bind, cfg->cluster_port);
    return 0;
}

/* ---- knocking: is anybody listening on the member's peer port? ---------- */

typedef struct knock {
    uv_tcp_t tcp;
    uv_connect_t req;
    member_t *member;
} knock_t;

static void on_knock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_knock(uv_connect_t *req, int status)
{
    knock_t *k = req->data;
    member_t *m = k->member;
    if (status == UV_ECANCELED)
        return; /* peer_knock_cancel closed it */
    m->knock = NULL;
    uv_close((uv_handle_t *)&k->tcp, on_knock_closed);
    if (!m->cl->stopping)
        member_knock_result(m, status == UV_ECONNREFUSED);
}

#define KNOCK_MS 1000

void peer_knock(cluster_t *cl, member_t *m)
{
    if (m->knock)
        return;
    knock_t *k = xcalloc(1, sizeof(*k));
    k->member = m;
    uv_tcp_init(cl->loop, &k->tcp);
    k->tcp.data = k;
    k->req.data = k;
    if (uv_tcp_connect(&k->req, &k->tcp, (struct sockaddr *)&m->sa, on_knock) < 0) {
        uv_close((uv_handle_t *)&k->tcp, on_knock_closed);
        return;
    }
    m->knock = k;
    m->knock_deadline = cluster_mono(cl) + KNOCK_MS;
}

void peer_knock_cancel(member_t *m)
{
    knock_t *k = m->knock;
    if (!k)
        return;
    m->knock = NULL;
    uv_close((uv_handle_t *)&k->tcp, on_knock_closed);
}
