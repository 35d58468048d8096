/* resp: the Redis serialization protocol, requests in and replies out.
 *
 * Owns: incremental parsing of client requests (RESP multibulk and inline
 * commands, as redis-server accepts them) and the encoding of replies in RESP2
 * or RESP3.
 * Never: allocates per argument on the multibulk path (arguments point into the
 * caller's buffer), trusts a length it has not checked against a limit, or
 * touches the network.
 *
 * Parsing contract. The caller keeps unparsed bytes in one contiguous buffer
 * and calls resp_parse() with (data, len) starting at the first byte of the
 * command being parsed. The parser remembers how far it got (as offsets, so the
 * caller may move or grow its buffer between calls as long as the bytes already
 * seen stay in front), and returns:
 *   RESP_OK      a whole command: p->argc/argv/argl are valid until the next
 *                resp_parse() or resp_parser_reset(); *consumed bytes of data
 *                belong to it. An empty command (blank inline line, "*0") has
 *                argc == 0 and the caller just skips it.
 *   RESP_MORE    need more bytes; *consumed is 0. p->want_bytes, when > 0, is how
 *                many bytes the current bulk still needs (to size a read).
 *   RESP_ERROR   protocol error; p->error holds the text after "-ERR " (for
 *                example "Protocol error: invalid bulk length"). The caller
 *                replies it and closes the connection.
 */
#ifndef COHORT_RESP_H
#define COHORT_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RESP_INLINE_MAX (64 * 1024) /* as redis-server's PROTO_INLINE_MAX_SIZE */

enum resp_status { RESP_OK = 1, RESP_MORE = 0, RESP_ERROR = -1 };

typedef struct resp_limits {
    size_t max_bulk_len;  /* longest argument, bytes */
    size_t max_multibulk; /* most arguments in one command */
} resp_limits_t;

/* Before AUTH (when a password is required) redis-server accepts at most 10
 * arguments of at most 16384 bytes; so does this parser while the caller
 * sets resp_parser_t.unauthenticated. */
#define RESP_UNAUTH_MULTIBULK 10
#define RESP_UNAUTH_BULK 16384

typedef struct resp_parser {
    resp_limits_t limits;
    int unauthenticated; /* set by the caller: apply the RESP_UNAUTH_* limits */
    /* progress through the current command (private) */
    int kind;          /* 0 unknown, '*' multibulk, 'i' inline, 'e' failed */
    size_t pos;        /* offset of the next unparsed byte */
    size_t scan;       /* where the search for the current line's end resumes */
    long long nargs;   /* multibulk: announced argument count */
    long long bulklen; /* multibulk: length of the bulk being read, -1 none */
    size_t *offs;      /* multibulk: offset of each argument parsed so far */
    size_t *lens;      /* length of each argument */
    size_t cap;        /* slots in offs/lens/argv */
    char *scratch;     /* inline: unescaped argument bytes */
    size_t scratch_cap;
    /* result of RESP_OK */
    int argc;
    const char **argv;
    size_t *argl;
    size_t want_bytes; /* hint on RESP_MORE */
    char error[128];   /* text on RESP_ERROR */
} resp_parser_t;

void resp_parser_init(resp_parser_t *p, const resp_limits_t *limits);
void resp_parser_free(resp_parser_t *p);
/* Forgets a partly parsed command (after RESP_OK this happens by itself). */
void resp_parser_reset(resp_parser_t *p);
int resp_parse(resp_parser_t *p, const char *data, size_t len, size_t *consumed);
/* Bytes held by the parser's own arrays (for client memory accounting). */
size_t resp_parser_mem(const resp_parser_t *p);

/* Reply encoding. proto is 2 or 3; RESP3-only types degrade to their RESP2
 * form (map -> flat array, null -> $-1 or *-1, double -> bulk string,
 * verbatim -> bulk string, set -> array, bool -> integer). */
void resp_add_simple(buf_t *b, const char *s);          /* +s */
void resp_add_error(buf_t *b, const char *s);           /* -s (s holds the code: "ERR ...") */
void resp_add_errorf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_add_int(buf_t *b, long long v);               /* :v */
/* Writes v in decimal at dst (room for 20 bytes; no NUL), as resp_add_int
 * does, without printf. Returns the length. */
size_t resp_format_ll(char *dst, long long v);
void resp_add_bulk(buf_t *b, const void *p, size_t n);  /* $n */
void resp_add_bulk_str(buf_t *b, const char *s);
void resp_add_bulk_ll(buf_t *b, long long v);
void resp_add_null(buf_t *b, int proto);                /* $-1 or _ */
void resp_add_null_array(buf_t *b, int proto);          /* *-1 or _ */
void resp_add_array(buf_t *b, size_t n);                /* *n */
void resp_add_map(buf_t *b, int proto, size_t pairs);   /* %n or *2n */
void resp_add_set(buf_t *b, int proto, size_t n);       /* ~n or *n */
void resp_add_double(buf_t *b, int proto, double v);    /* ,v or bulk */
void resp_add_bool(buf_t *b, int proto, int v);         /* #t/#f or :1/:0 */
void resp_add_verbatim(buf_t *b, int proto, const char *p, size_t n); /* =n txt: or bulk */
void resp_add_ok(buf_t *b);                             /* +OK */

#endif
