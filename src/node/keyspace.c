/* keyspace: the prefix table of write modes; see keyspace.h.
 *
 * The prefixes are kept longest first, so the first that matches is the
 * longest; a site has a handful of keyspaces, and a write compares its key
 * with each prefix at most once (memcmp of the prefix's length). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keyspace.h"
#include "mem.h"

typedef struct prefix_rule {
    char *prefix;
    size_t len;
    size_t space; /* index in names */
} prefix_rule_t;

struct keyspaces {
    int default_mode;
    char **names;
    int *modes;
    size_t nspaces;
    prefix_rule_t *rules; /* longest prefix first */
    size_t nrules;
};

static const char *const mode_names[] = {"replicate", "invalidate", "local"};

const char *keyspace_mode_name(int mode)
{
    return mode >= 0 && mode <= KS_LOCAL ? mode_names[mode] : "?";
}

int keyspace_mode_parse(const char *s)
{
    for (int i = 0; i <= KS_LOCAL; i++)
        if (strcasecmp(s, mode_names[i]) == 0)
            return i;
    return -1;
}

static int longer_first(const void *a, const void *b)
{
    const prefix_rule_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return memcmp(x->prefix, y->prefix, x->len);
}

/* Adds one prefix of space si. Returns 0, or -1 with the reason in why. */
static int add_rule(keyspaces_t *ks, size_t si, const char *prefix, char *why, size_t wlen)
{
    size_t len = strlen(prefix);
    if (len == 0) {
        snprintf(why, wlen, "prefix: empty (keys in no keyspace follow [cache] writes)");
        return -1;
    }
    for (size_t i = 0; i < ks->nrules; i++)
        if (ks->rules[i].len == len && memcmp(ks->rules[i].prefix, prefix, len) == 0) {
            snprintf(why, wlen, "prefix: '%.64s' is already in [keyspace %s]", prefix,
                     ks->names[ks->rules[i].space]);
            return -1;
        }
    ks->rules = xrealloc(ks->rules, (ks->nrules + 1) * sizeof(*ks->rules));
    ks->rules[ks->nrules++] = (prefix_rule_t){xstrdup(prefix), len, si};
    return 0;
}

/* Reads one [keyspace NAME] section. Returns 0 or -1 (err set). */
static int add_space(keyspaces_t *ks, const config_job_t *sec, const char *file, char *err,
                     size_t errlen)
{
    size_t si = ks->nspaces++;
    ks->names = xrealloc(ks->names, ks->nspaces * sizeof(char *));
    ks->modes = xrealloc(ks->modes, ks->nspaces * sizeof(int));
    ks->names[si] = xstrdup(sec->name);
    ks->modes[si] = -1;
    size_t prefixes = 0;
    char why[200];
    for (size_t i = 0; i < sec->npairs; i++) {
        const config_pair_t *p = &sec->pairs[i];
        if (strcasecmp(p->key, "prefix") == 0) {
            if (add_rule(ks, si, p->value, why, sizeof(why)) < 0)
                goto bad_line;
            prefixes++;
        } else if (strcasecmp(p->key, "writes") == 0) {
            if (ks->modes[si] >= 0) {
                snprintf(why, sizeof(why), "writes: set twice");
                goto bad_line;
            }
            ks->modes[si] = keyspace_mode_parse(p->value);
            if (ks->modes[si] < 0) {
                snprintf(why, sizeof(why),
                         "writes: '%.40s' is not one of replicate, invalidate, local", p->value);
                goto bad_line;
            }
        } else {
            snprintf(why, sizeof(why), "%.40s: unknown key in a keyspace (prefix, writes)",
                     p->key);
            goto bad_line;
        }
        continue;
    bad_line:
        snprintf(err, errlen, "%s:%d: %s", file, p->line, why);
        return -1;
    }
    if (!prefixes || ks->modes[si] < 0) {
        snprintf(err, errlen, "%s:%d: [keyspace %s]: needs %s", file, sec->line, sec->name,
                 !prefixes ? "at least one prefix = ... line" : "a writes = ... line");
        return -1;
    }
    return 0;
}

keyspaces_t *keyspaces_new(const config_t *cfg, char *err, size_t errlen)
{
    const char *file = cfg->path ? cfg->path : "(config)";
    keyspaces_t *ks = xcalloc(1, sizeof(*ks));
    ks->default_mode = cfg->writes ? keyspace_mode_parse(cfg->writes) : KS_REPLICATE;
    if (ks->default_mode < 0) {
        snprintf(err, errlen, "writes: '%s' is not one of replicate, invalidate, local",
                 cfg->writes);
        keyspaces_free(ks);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nkeyspaces; i++)
        if (add_space(ks, &cfg->keyspaces[i], file, err, errlen) < 0) {
            keyspaces_free(ks);
            return NULL;
        }
    if (ks->nrules)
        qsort(ks->rules, ks->nrules, sizeof(*ks->rules), longer_first);
    return ks;
}

void keyspaces_free(keyspaces_t *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->nrules; i++)
        free(ks->rules[i].prefix);
    for (size_t i = 0; i < ks->nspaces; i++)
        free(ks->names[i]);
    free(ks->rules);
    free(ks->names);
    free(ks->modes);
    free(ks);
}

static const prefix_rule_t *find(const keyspaces_t *ks, const char *key, size_t klen)
{
    for (size_t i = 0; i < ks->nrules; i++) {
        const prefix_rule_t *r = &ks->rules[i];
        if (r->len <= klen && memcmp(r->prefix, key, r->len) == 0)
            return r;
    }
    return NULL;
}

int keyspaces_mode(const keyspaces_t *ks, const char *key, size_t klen)
{
    if (!ks)
        return KS_REPLICATE;
    const prefix_rule_t *r = ks->nrules ? find(ks, key, klen) : NULL;
    return r ? ks->modes[r->space] : ks->default_mode;
}

void keyspaces_match(const keyspaces_t *ks, const char *key, size_t klen, keyspace_match_t *out)
{
    const prefix_rule_t *r = ks && ks->nrules ? find(ks, key, klen) : NULL;
    out->name = r ? ks->names[r->space] : "";
    out->prefix = r ? r->prefix : "";
    out->mode = r ? ks->modes[r->space] : ks ? ks->default_mode : KS_REPLICATE;
}

int keyspaces_any_replicated(const keyspaces_t *ks)
{
    if (!ks || ks->default_mode == KS_REPLICATE)
        return 1;
    for (size_t i = 0; i < ks->nspaces; i++)
        if (ks->modes[i] == KS_REPLICATE)
            return 1;
    return 0;
}
