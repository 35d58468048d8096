/* cluster: start-up and shutdown of this node's cluster membership, and the
 * facade the rest of the daemon uses; see cluster.h.
 *
 * Owns: reading [cluster] (peers, key file, authorized networks), finding
 * this node among the peers, the incarnation id, the periodic tick, and
 * reporting.
 * Never: holds state another module owns (see cluster_int.h for who owns
 * what). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "cluster_int.h"
#include "hlc.h"
#include "log.h"
#include "mem.h"

#define TICK_MS 10
#define KEY_MIN_BYTES 32
#define KEY_MAX_BYTES 4096

int64_t cluster_mono(const cluster_t *cl)
{
    if (cl->clock)
        return cl->clock(cl->clock_ud); /* the simulator's */
    return clock_mono_ms(); /* read now: a lease is judged when it is used */
}

uint64_t cluster_random(cluster_t *cl)
{
    uint64_t x = cl->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    cl->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int cluster_lease_ms(const cluster_t *cl)
{
    return cl->cfg->lease_ms;
}

/* ---- the key file ------------------------------------------------------- */

static int load_key(cluster_t *cl, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "key_file: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    uint8_t secret[KEY_MAX_BYTES];
    ssize_t n = -1;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "key_file: cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key_file: %s is not a regular file", path);
    } else if (st.st_mode & S_IRWXO) {
        snprintf(err, errlen, "key_file: %s is accessible by others (mode %03o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
    } else if ((n = read(fd, secret, sizeof(secret))) < 0) {
        snprintf(err, errlen, "key_file: cannot read %s: %s", path, strerror(errno));
    } else {
        while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r' || secret[n - 1] == ' '))
            n--;
        if (n < KEY_MIN_BYTES)
            snprintf(err, errlen, "key_file: %s holds %zd bytes; at least %d are needed", path, n,
                     KEY_MIN_BYTES);
        else
            rc = 0;
    }
    close(fd);
    if (rc == 0) {
        uint8_t key[FRAME_KEY_SIZE];
        frame_cluster_key(secret, (size_t)n, key);
        frame_key_init(&cl->key, key);
        OPENSSL_cleanse(key, sizeof(key));
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

/* ---- peers and self -------------------------------------------------------- */

static int resolve(const char *hostport, struct sockaddr_storage *sa, char *id, size_t idlen,
                   int *port_out)
{
    char host[256];
    snprintf(host, sizeof(host), "%s", hostport);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') { /* [v6]:port */
        h[strlen(h) - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    char ip[64];
    if (sa->ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    *port_out = atoi(port);
    snprintf(id, idlen, "%s:%d", ip, *port_out);
    return 0;
}

/* 1 when ip (text) is an address of this machine: an interface address, a
 * configured local_address, or the cluster bind address. */
static int is_local_ip(const config_t *cfg, const char *ip)
{
    if (strcmp(ip, cfg->cluster_bind) == 0)
        return 1;
    for (size_t i = 0; i < cfg->local_address.n; i++)
        if (strcmp(ip, cfg->local_address.items[i]) == 0)
            return 1;
    struct ifaddrs *ifs = NULL;
    int found = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        char buf[64];
        if (!i->ifa_addr)
            continue;
        if (i->ifa_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
        else if (i->ifa_addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, buf,
                      sizeof(buf));
        else
            continue;
        found = strcmp(buf, ip) == 0;
    }
    freeifaddrs(ifs);
    return found;
}

/* 1 for an address that binds every interface (0.0.0.0, ::). */
static int is_wildcard(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return a4.s_addr == htonl(INADDR_ANY);
    return inet_pton(AF_INET6, ip, &a6) == 1 && memcmp(&a6, &in6addr_any, sizeof(a6)) == 0;
}

static int setup_members(cluster_t *cl, char *err, size_t errlen)
{
    const config_t *cfg = cl->cfg;
    if (cfg->peers.n >= HLC_MAX_TAG) { /* a version's tag tells the nodes apart */
        snprintf(err, errlen, "peer: at most %u peers (%u nodes) in a cluster",
                 HLC_MAX_TAG - 1, HLC_MAX_TAG);
        return -1;
    }
    cl->members = xcalloc(cfg->peers.n ? cfg->peers.n : 1, sizeof(member_t));
    snprintf(cl->self_id, sizeof(cl->self_id), "%s:%d", cfg->cluster_bind, cfg->cluster_port);
    int self_listed = 0;
    for (size_t i = 0; i < cfg->peers.n; i++) {
        member_t *m = &cl->members[cl->nmembers];
        int port = 0;
        if (resolve(cfg->peers.items[i], &m->sa, m->id, sizeof(m->id), &port) < 0) {
            snprintf(err, errlen, "peer: cannot resolve %s", cfg->peers.items[i]);
            return -1;
        }
        char ip[80];
        snprintf(ip, sizeof(ip), "%s", m->id);
        *strrchr(ip, ':') = '\0';
        if (port == cfg->cluster_port && is_local_ip(cfg, ip)) {
            snprintf(cl->self_id, sizeof(cl->self_id), "%s", m->id);
            memset(m, 0, sizeof(*m));
            self_listed = 1;
            continue; /* this node itself */
        }
        for (size_t j = 0; j < cl->nmembers; j++) {
            if (strcmp(cl->members[j].id, m->id) == 0) {
                snprintf(err, errlen, "peer: %s is listed twice", cfg->peers.items[i]);
                return -1;
            }
        }
        m->cl = cl;
        snprintf(m->addr, sizeof(m->addr), "%s", cfg->peers.items[i]);
        m->state = MEMBER_UNKNOWN;
        m->backoff_ms = 50;
        cl->nmembers++;
    }
    /* Who dials whom, and this node's rank (the tie-breaker of its
     * versions, unique in the cluster), come from its own address among
     * the members'. Bound to every interface and missing from its list, it
     * cannot know that address: it would take itself for the smallest, dial
     * members that dial it too, and share a rank with another node. */
    if (cl->nmembers && !self_listed && is_wildcard(cfg->cluster_bind)) {
        snprintf(err, errlen, "peer: this node is not in its own peer list and [cluster] bind "
                 "%s is every address, so its place among the members is unknown; list it "
                 "(the same list on every node) or bind its peer address", cfg->cluster_bind);
        return -1;
    }
    cl->tag = 1; /* this node's rank by peer address, from 1 */
    for (size_t i = 0; i < cl->nmembers; i++) {
        member_t *m = &cl->members[i];
        m->we_initiate = strcmp(cl->self_id, m->id) < 0;
        cl->tag += !m->we_initiate;
        m->since = cluster_mono(cl);
        m->since_wall = clock_now_ms();
    }
    return 0;
}

uint16_t cluster_version_tag(const cluster_t *cl)
{
    return cl ? cl->tag : 0;
}

cluster_t *cluster_create(uv_loop_t *loop, const config_t *cfg, const cluster_host_t *host,
                          uint64_t incarnation, uint64_t seed, char *err, size_t errlen)
{
    cluster_t *cl = xcalloc(1, sizeof(*cl));
    cl->cfg = cfg;
    cl->host = *host;
    cl->loop = loop;
    cl->incarnation = incarnation;
    cl->rng = seed | 1;
    if (setup_members(cl, err, errlen) < 0 || coherence_init(cl) < 0) {
        cluster_free(cl);
        return NULL;
    }
    catchup_needed(cl); /* the cache starts empty */
    interest_init(cl);
    presync_init(cl);
    return cl;
}

void cluster_free(cluster_t *cl)
{
    coherence_free(cl);
    interest_free(cl);
    catchup_free(cl);
    orphans_free(cl);
    presync_free(cl);
    frame_key_free(&cl->key);
    free(cl->members);
    free(cl->authorized);
    free(cl);
}

/* ---- the tick and the end of each loop turn ----------------------------- */

/* Refuses the links whose handshake did not finish in time. */
static void expire_handshakes(cluster_t *cl, int64_t now)
{
    link_t *l = cl->links;
    while (l) {
        link_t *next = l->next;
        if (l->state != LINK_READY && now > l->deadline)
            peer_refuse(l, "handshake timed out");
        l = next;
    }
}

void cluster_tick(cluster_t *cl)
{
    int64_t now = cluster_mono(cl);
    if (cluster_cut_off(cl))
        cl->last_cut_off = now;
    member_tick(cl, now);
    coherence_tick(cl);
    catchup_tick(cl, now);
    orphans_tick(cl, now);
    expire_handshakes(cl, now);
    coherence_progress(cl);
}

static void on_tick(uv_timer_t *t)
{
    clock_tick();
    cluster_tick(t->data);
}

void cluster_link_closed(link_t *l, int was_ready)
{
    member_t *m = l->member;
    int was_pending = m && m->pending == l;
    if (was_pending)
        m->pending = NULL;
    if (m && m->link == l && was_ready) {
        catchup_member_lost(m);
        orphans_member_lost(m);
        member_link_lost(m, l);
    }
    else if (was_pending)
        member_connect_failed(m, 0);
}

void cluster_link_ready(link_t *l)
{
    member_t *m = l->member;
    if (m->link && m->link != l)
        peer_close(m->link, "superseded by a new link");
    memcpy(m->name, l->peer_name, sizeof(m->name));
    coherence_new_incarnation(m, l->peer_inc);
    l->state = LINK_READY;
    l->send_seq = 0;
    l->recv_seq = 1;
    m->link_gen++;
    member_link_ready(m, l);
    interest_on_link_ready(m);
    presync_on_link_ready(m);
    storeid_on_link_ready(m);
}

void cluster_on_frame(link_t *l, const frame_hdr_t *h)
{
    member_t *m = l->member;
    frame_reader_t r;
    frame_reader_init(&r, h);
    member_heard(m);
    switch (h->type) {
    case FRAME_PING:
        member_on_ping(m, &r);
        break;
    case FRAME_PONG:
        member_on_pong(m, &r);
        break;
    case FRAME_PROBE:
        member_on_probe(m, &r);
        break;
    case FRAME_PROBED:
        member_on_probed(m, &r);
        break;
    case FRAME_BYE:
        m->clean_bye = 1;
        m->inc_ended_at = cluster_mono(m->cl);
        log_info("peer", "%s said goodbye", m->name);
        peer_close(l, "peer said goodbye");
        break;
    case FRAME_FLUSH:
    case FRAME_NACK:
    case FRAME_ABORT:
    case FRAME_COMMIT:
    case FRAME_ACK:
    case FRAME_SYNC:
    case FRAME_RESET:
        coherence_on_frame(m, h);
        break;
    case FRAME_SNAPREQ:
    case FRAME_SNAPSHOT:
        catchup_on_frame(m, h);
        break;
    case FRAME_INTEREST:
    case FRAME_MESSAGE:
        interest_on_frame(m, l, h);
        break;
    case FRAME_PRESENCE:
        presync_on_frame(m, l, h);
        break;
    case FRAME_STOREID:
        storeid_on_frame(m, h);
        break;
    case FRAME_VOIDED:
        orphans_on_frame(m, h);
        break;
    default:
        peer_refuse(l, "unexpected frame type");
    }
}

void cluster_end_of_turn(cluster_t *cl)
{
    if (!cl)
        return;
    coherence_send_batches(cl);
    coherence_progress(cl); /* writes with nobody to wait for commit at once */
    coherence_send_acks(cl);
    coherence_send_commits(cl);
    catchup_send(cl);
    interest_send_pending(cl);
    presync_send_pending(cl);
    peer_flush_writes(cl);
}

/* ---- start and stop -------------------------------------------------------- */

int cluster_start(uv_loop_t *loop, const config_t *cfg, const cluster_host_t *host,
                  cluster_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->key_file || !cfg->key_file[0]) {
        if (cfg->peers.n)
            log_warn("cluster", "peers are configured but no key_file: running alone");
        return 0;
    }
    uint64_t incarnation = 0, seed = 0;
    while (incarnation == 0)
        if (RAND_bytes((unsigned char *)&incarnation, sizeof(incarnation)) != 1)
            incarnation = (uint64_t)clock_wall_ms();
    if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
        seed = (uint64_t)clock_wall_ms() ^ incarnation;
    cluster_t *cl = cluster_create(loop, cfg, host, incarnation, seed, err, errlen);
    if (!cl)
        return -1;
    if (load_key(cl, cfg->key_file, err, errlen) < 0 || peer_listen(cl, err, errlen) < 0) {
        cluster_stop(cl);
        return -1;
    }
    if (cfg->store_url && cfg->store_url[0])
        cluster_set_arbiter(cl); /* the node feeds the rows (node_store.c) */
    uv_timer_init(cl->loop, &cl->tick);
    cl->tick.data = cl;
    cl->tick_open = 1;
    uv_timer_start(&cl->tick, on_tick, TICK_MS, TICK_MS);
    log_info("cluster", "cluster %s: this node is %s, incarnation %016llx, %zu other members",
             cfg->cluster_name, cl->self_id, (unsigned long long)cl->incarnation, cl->nmembers);
    *out = cl;
    return 0;
}

static void release(cluster_t *cl)
{
    if (--cl->stopping > 0)
        return;
    cluster_free(cl);
}

static void on_cluster_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

void cluster_stop(cluster_t *cl)
{
    if (!cl || cl->stopping)
        return;
    cl->stopping = 1; /* one reference until the end of this function */
    if (cl->log) {
        coherence_stop(cl);
        coherence_send_batches(cl);
        coherence_send_acks(cl);
    }
    /* Goodbye says "you have every flush of mine": only where the member's
     * stream is current (its SYNC answered, the replay sent, the last batch
     * just sent). Elsewhere the member must treat the end as unclean. */
    for (link_t *l = cl->links; l; l = l->next) {
        member_t *m = l->member;
        if (l->state == LINK_READY && m && m->link == l && m->stream_ready) {
            size_t s = peer_frame_begin(l, FRAME_BYE);
            peer_frame_end(l, s);
        }
    }
    peer_flush_writes(cl);
    while (cl->links)
        peer_close(cl->links, "shutdown");
    for (size_t i = 0; i < cl->nmembers; i++)
        peer_knock_cancel(&cl->members[i]);
    if (cl->listener_open) {
        cl->stopping++;
        uv_close((uv_handle_t *)&cl->listener, on_cluster_handle_closed);
    }
    if (cl->tick_open) {
        cl->stopping++;
        uv_close((uv_handle_t *)&cl->tick, on_cluster_handle_closed);
    }
    release(cl);
}

/* ---- reporting ---------------------------------------------------------------- */

size_t cluster_member_count(const cluster_t *cl)
{
    return cl ? cl->nmembers : 0;
}

void cluster_member_info(const cluster_t *cl, size_t i, member_info_t *out)
{
    const member_t *m = &cl->members[i];
    out->name = m->name[0] ? m->name : "";
    out->addr = m->addr;
    out->state = member_state_name(m->state);
    out->since_ms = m->since_wall;
    out->rtt_ms = m->rtt_ms;
    out->flushes_sent = m->flushes_sent;
    out->flushes_received = m->flushes_received;
    out->last_acked = m->acked;
    out->incarnation = m->incarnation;
}

const cluster_counters_t *cluster_counters(const cluster_t *cl)
{
    static const cluster_counters_t zero;
    return cl ? &cl->counters : &zero;
}

void cluster_count_bypass(cluster_t *cl)
{
    if (cl)
        cl->counters.bypasses++;
}

uint64_t cluster_incarnation(const cluster_t *cl)
{
    return cl ? cl->incarnation : 0;
}

int cluster_cut_off(cluster_t *cl)
{
    if (!cl)
        return 0;
    size_t others = 0, reached = 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        const member_t *m = &cl->members[i];
        if (m->state == MEMBER_DEAD)
            continue;
        others++;
        reached += m->link && m->state == MEMBER_ALIVE;
    }
    return others > 0 && (reached + 1) * 2 < others + 1; /* a strict minority */
}
