/* keyspace: which write mode a key falls in.
 *
 * Owns: the table built from the [keyspace NAME] sections (one or more
 * `prefix = ...` lines and `writes = replicate | invalidate | local` each)
 * and [cache] writes (the mode of keys in no keyspace), and the lookup: the
 * longest matching prefix wins.
 * Never: applies or sends a write (cmd/cmd_util.c routes by the mode), or
 * accepts a table it would have to guess about: an empty prefix, a prefix
 * named twice, a section without prefix or mode, an unknown key or mode are
 * errors at start-up ("FILE:LINE: ...").
 *
 * The modes (README "Write modes"):
 *   replicate   every write applies on every member before it replies;
 *   invalidate  a write applies here and every member holding a different
 *               value drops it before the reply (identical bytes are kept);
 *   local       a write fills this node only; flushes still reach everyone. */
#ifndef COHORT_KEYSPACE_H
#define COHORT_KEYSPACE_H

#include <stddef.h>

#include "config.h"

enum keyspace_mode { KS_REPLICATE = 0, KS_INVALIDATE = 1, KS_LOCAL = 2 };

typedef struct keyspaces keyspaces_t;

/* Builds the table from cfg (which it does not keep). Returns it, or NULL
 * with "FILE:LINE: what is wrong" in err. */
keyspaces_t *keyspaces_new(const config_t *cfg, char *err, size_t errlen);
void keyspaces_free(keyspaces_t *ks);

/* The mode of key (an enum keyspace_mode). ks NULL: replicate. */
int keyspaces_mode(const keyspaces_t *ks, const char *key, size_t klen);

/* What COHORT.KEYSPACE reports: the keyspace's name ("" for none: the
 * [cache] writes default), the prefix that matched ("" for none) and the
 * mode. The strings belong to ks. */
typedef struct keyspace_match {
    const char *name;
    const char *prefix;
    int mode;
} keyspace_match_t;
void keyspaces_match(const keyspaces_t *ks, const char *key, size_t klen, keyspace_match_t *out);

/* "replicate", "invalidate" or "local"; mode_parse returns -1 for others. */
const char *keyspace_mode_name(int mode);
int keyspace_mode_parse(const char *s);

/* 1 when some key may fall in a replicated keyspace. */
int keyspaces_any_replicated(const keyspaces_t *ks);

#endif
