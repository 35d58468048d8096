/* cmd_ranges: commands on parts of a value (APPEND STRLEN GETRANGE SUBSTR
 * SETRANGE LCS) with redis-server 7's replies, errors and limits: a value may
 * not grow past max_bulk_len (redis-server's proto-max-bulk-len), with its
 * error text. APPEND and SETRANGE are fills of this node (cmd_write_value)
 * that keep the key's expire time.
 * Never: calls cache_set() itself, or keeps an entry pointer across a write. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "mem.h"

/* redis-server's checkStringLength. Returns 0, or -1 after the error reply. */
static int check_length(client_t *c, size_t have, size_t add)
{
    size_t max = cmd_node(c)->cfg->max_bulk_len;
    if (have > max || add > max - have) {
        resp_add_error(&c->out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return -1;
    }
    return 0;
}

CMD_HANDLER(cmd_append)
{
    cache_entry_t *e = cmd_lookup_write(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    if (!e) {
        cmd_write_value(c, argv[1], argl[1], argv[2], argl[2], 0, CACHE_ENC_AUTO);
        resp_add_int(&c->out, (long long)argl[2]);
        return;
    }
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    if (check_length(c, vlen, argl[2]) < 0)
        return;
    size_t total = vlen + argl[2];
    char *nv = xmalloc(total ? total : 1);
    memcpy(nv, v, vlen);
    memcpy(nv + vlen, argv[2], argl[2]);
    cmd_write_value(c, argv[1], argl[1], nv, total, cache_entry_expire(e), CACHE_ENC_RAW);
    free(nv);
    resp_add_int(&c->out, (long long)total);
}

CMD_HANDLER(cmd_strlen)
{
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    size_t vlen = 0;
    if (e)
        cache_entry_value(e, &vlen);
    resp_add_int(&c->out, (long long)vlen);
}

/* GETRANGE and SUBSTR, with redis-server 7.0's index rules. */
CMD_HANDLER(cmd_getrange)
{
    long long start, end;
    if (cmd_ll_or_reply(c, argv[2], argl[2], &start) < 0 ||
        cmd_ll_or_reply(c, argv[3], argl[3], &end) < 0)
        return;
    cache_entry_t *e = cmd_read(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    if (!e) {
        resp_add_bulk(&c->out, "", 0);
        return;
    }
    size_t vlen;
    const char *v = cache_entry_value(e, &vlen);
    long long len = (long long)vlen;
    if (start < 0 && end < 0 && start > end) {
        resp_add_bulk(&c->out, "", 0);
        return;
    }
    if (start < 0)
        start = len + start;
    if (end < 0)
        end = len + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (start > end || len == 0)
        resp_add_bulk(&c->out, "", 0);
    else
        resp_add_bulk(&c->out, v + start, (size_t)(end - start + 1));
}

CMD_HANDLER(cmd_setrange)
{
    long long offset;
    if (cmd_ll_or_reply(c, argv[2], argl[2], &offset) < 0)
        return;
    if (offset < 0) {
        resp_add_error(&c->out, "ERR offset is out of range");
        return;
    }
    cache_entry_t *e = cmd_lookup_write(c, argv[1], argl[1]);
    if (cmd_check_type(c, e, CACHE_TYPE_STRING) < 0)
        return;
    size_t olen = 0;
    const char *old = e ? cache_entry_value(e, &olen) : NULL;
    const char *val = argv[3];
    size_t vl = argl[3];
    if (vl == 0) {
        resp_add_int(&c->out, (long long)olen);
        return;
    }
    if ((unsigned long long)offset > SIZE_MAX || check_length(c, (size_t)offset, vl) < 0)
        return;
    size_t end = (size_t)offset + vl;
    size_t total = end > olen ? end : olen;
    char *nv = xcalloc(1, total);
    if (olen)
        memcpy(nv, old, olen);
    memcpy(nv + offset, val, vl);
    cmd_write_value(c, argv[1], argl[1], nv, total, e ? cache_entry_expire(e) : 0,
                    CACHE_ENC_RAW);
    free(nv);
    resp_add_int(&c->out, (long long)total);
}

/* ---- LCS ---------------------------------------------------------------- */

typedef struct lcs_opts {
    int getlen, getidx, withmatchlen;
    long long minmatchlen;
} lcs_opts_t;

static int lcs_parse(client_t *c, int argc, const char **argv, const size_t *argl,
                     lcs_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int j = 3; j < argc; j++) {
        int more = argc - 1 - j;
        if (cmd_is(argv[j], argl[j], "idx")) {
            o->getidx = 1;
        } else if (cmd_is(argv[j], argl[j], "len")) {
            o->getlen = 1;
        } else if (cmd_is(argv[j], argl[j], "withmatchlen")) {
            o->withmatchlen = 1;
        } else if (cmd_is(argv[j], argl[j], "minmatchlen") && more) {
            if (cmd_ll_or_reply(c, argv[j + 1], argl[j + 1], &o->minmatchlen) < 0)
                return -1;
            if (o->minmatchlen < 0)
                o->minmatchlen = 0;
            j++;
        } else {
            resp_add_error(&c->out, ERR_SYNTAX);
            return -1;
        }
    }
    if (o->getidx && o->getlen) {
        resp_add_error(&c->out, "ERR If you want both the length and indexes, please just use "
                                "IDX.");
        return -1;
    }
    return 0;
}

#define LCS(i, j) lcs[(j) + (i) * (blen + 1)]

/* Walks the table back from the end as redis-server's lcsCommand does:
 * fills result (the LCS string, if not NULL) and writes the IDX matches into
 * m, counting them in *nm. */
static void lcs_walk(const uint32_t *lcs, const char *a, uint32_t alen, const char *b,
                     uint32_t blen, const lcs_opts_t *o, char *result, buf_t *m, size_t *nm)
{
    uint32_t idx = LCS(alen, blen);
    uint32_t as = alen, ae = 0, bs = 0, be = 0; /* as == alen: no range yet */
    uint32_t i = alen, j = blen;
    while (i > 0 && j > 0) {
        int emit = 0;
        if (a[i - 1] == b[j - 1]) {
            if (result)
                result[idx - 1] = a[i - 1];
            if (as == alen) {
                as = ae = i - 1;
                bs = be = j - 1;
            } else if (as == i && bs == j) {
                as--;
                bs--;
            } else {
                emit = 1;
            }
            if (as == 0 || bs == 0)
                emit = 1;
            idx--;
            i--;
            j--;
        } else {
            if (LCS(i - 1, j) > LCS(i, j - 1))
                i--;
            else
                j--;
            if (as != alen)
                emit = 1;
        }
        uint32_t match_len = ae - as + 1;
        if (emit) {
            if (o->getidx && (o->minmatchlen == 0 || match_len >= o->minmatchlen)) {
                resp_add_array(m, (size_t)(2 + o->withmatchlen));
                resp_add_array(m, 2);
                resp_add_int(m, as);
                resp_add_int(m, ae);
                resp_add_array(m, 2);
                resp_add_int(m, bs);
                resp_add_int(m, be);
                if (o->withmatchlen)
                    resp_add_int(m, match_len);
                (*nm)++;
            }
            as = alen;
        }
    }
}

/* Builds the table; replies an error and returns NULL when it would be
 * larger than max_bulk_len (as redis-server against proto-max-bulk-len). */
static uint32_t *lcs_table(client_t *c, const char *a, uint32_t alen, const char *b,
                           uint32_t blen)
{
    unsigned long long cells = (unsigned long long)(alen + 1ull) * (blen + 1ull);
    if (cells * sizeof(uint32_t) > cmd_node(c)->cfg->max_bulk_len) {
        resp_add_error(&c->out, "ERR Insufficient memory, transient memory for LCS exceeds "
                                "proto-max-bulk-len");
        return NULL;
    }
    uint32_t *lcs = xmalloc((size_t)cells * sizeof(uint32_t));
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0)
                LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1])
                LCS(i, j) = LCS(i - 1, j - 1) + 1;
            else
                LCS(i, j) = LCS(i - 1, j) > LCS(i, j - 1) ? LCS(i - 1, j) : LCS(i, j - 1);
        }
    }
    return lcs;
}

CMD_HANDLER(cmd_lcs)
{
    cache_entry_t *ea = cmd_read(c, argv[1], argl[1]);
    cache_entry_t *eb = cmd_read(c, argv[2], argl[2]);
    if ((ea && cache_entry_type(ea) != CACHE_TYPE_STRING) ||
        (eb && cache_entry_type(eb) != CACHE_TYPE_STRING)) {
        resp_add_error(&c->out, "ERR The specified keys must contain string values");
        return;
    }
    size_t al = 0, bl = 0;
    const char *a = ea ? cache_entry_value(ea, &al) : "";
    const char *b = eb ? cache_entry_value(eb, &bl) : "";
    lcs_opts_t o;
    if (lcs_parse(c, argc, argv, argl, &o) < 0)
        return;
    if (al >= UINT32_MAX - 1 || bl >= UINT32_MAX - 1) {
        resp_add_error(&c->out, "ERR String too long for LCS");
        return;
    }
    uint32_t alen = (uint32_t)al, blen = (uint32_t)bl;
    uint32_t *lcs = lcs_table(c, a, alen, b, blen);
    if (!lcs)
        return;
    uint32_t total = LCS(alen, blen);
    char *result = o.getidx || !o.getlen ? xmalloc(total + 1) : NULL;
    buf_t matches;
    buf_init(&matches);
    size_t nm = 0;
    if (result)
        lcs_walk(lcs, a, alen, b, blen, &o, result, &matches, &nm);
    if (o.getidx) {
        resp_add_map(&c->out, c->proto, 2);
        resp_add_bulk_str(&c->out, "matches");
        resp_add_array(&c->out, nm);
        buf_append(&c->out, buf_head(&matches), buf_len(&matches));
        resp_add_bulk_str(&c->out, "len");
        resp_add_int(&c->out, total);
    } else if (o.getlen) {
        resp_add_int(&c->out, total);
    } else {
        resp_add_bulk(&c->out, result, total);
    }
    buf_free(&matches);
    free(result);
    free(lcs);
}
