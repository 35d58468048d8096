/* info: the INFO command's text, section by section, in redis-server's
 * "# Section\r\nkey:value\r\n" format so existing tools can read it.
 * Sections are a table of data: name, whether INFO with no argument shows it,
 * and what it adds to the rows of the node's metrics registry that name that
 * section (labelled lines: members, commands, databases). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

/* One line per database holding keys (its first key byte, cmd_db.c).
 * avg_ttl is 0: redis-server estimates it while expiring, cohort does not. */
static void info_keyspace(node_t *n, buf_t *b)
{
    for (int db = 0; db < n->cfg->databases; db++) {
        size_t expires, keys = cache_count_first_byte(n->cache, (unsigned char)db, &expires);
        if (keys)
            buf_printf(b, "db%d:keys=%zu,expires=%zu,avg_ttl=0\r\n", db, keys, expires);
    }
}

static void info_commandstats(node_t *n, buf_t *b)
{
    size_t count;
    const command_t *t = commands_table(&count);
    for (size_t i = 0; i < count; i++) {
        if (!t[i].calls && !t[i].rejected)
            continue;
        double per = t[i].calls ? (double)t[i].usec / (double)t[i].calls : 0;
        buf_printf(b,
                   "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                   "failed_calls=0\r\n",
                   t[i].name, (unsigned long long)t[i].calls, (unsigned long long)t[i].usec, per,
                   (unsigned long long)t[i].rejected);
    }
}

/* One line per member: what /metrics and /v1/status show as labelled series. */
static void info_members(node_t *n, buf_t *b)
{
    cluster_t *cl = n->cluster;
    for (size_t i = 0; i < cluster_member_count(cl); i++) {
        member_info_t mi;
        cluster_member_info(cl, i, &mi);
        buf_printf(b, "member%zu:name=%s,address=%s,state=%s,rtt_ms=%.3f\r\n", i, mi.name,
                   mi.addr, mi.state, mi.rtt_ms);
    }
}

/* The registry's rows of one section: "field:value" lines, in registry order. */
static void info_rows(node_t *n, const char *section, buf_t *b)
{
    size_t slen = strlen(section);
    char text[256];
    for (size_t i = 0; i < metrics_count(n->metrics); i++) {
        const metric_t *m = metrics_at(n->metrics, i);
        if (!m->info || strncmp(m->info, section, slen) != 0 || m->info[slen] != ':')
            continue;
        const char *v = metric_text(m, text, sizeof(text));
        if (v)
            buf_printf(b, "%s:%s\r\n", m->info + slen + 1, v);
    }
}

/* A section: its name, whether INFO with no argument shows it, and what it
 * writes after the registry's rows of that section (labelled lines). */
typedef struct info_section {
    const char *name;
    int in_default;
    void (*extra)(node_t *n, buf_t *b);
} info_section_t;

static const info_section_t sections[] = {
    {"server", 1, NULL},        {"clients", 1, NULL},
    {"memory", 1, NULL},        {"persistence", 1, NULL},
    {"stats", 1, NULL},         {"replication", 1, NULL},
    {"commandstats", 0, info_commandstats},
    {"cluster", 1, NULL},       {"cohort", 1, info_members},
    {"store", 1, NULL},         {"leases", 1, NULL},
    {"keyspace", 1, info_keyspace},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int section_wanted(const info_section_t *s, int argc, const char **argv,
                          const size_t *argl)
{
    if (argc == 1)
        return s->in_default;
    for (int i = 1; i < argc; i++) {
        if (cmd_is(argv[i], argl[i], "all") || cmd_is(argv[i], argl[i], "everything"))
            return 1;
        if (cmd_is(argv[i], argl[i], "default") && s->in_default)
            return 1;
        if (cmd_is(argv[i], argl[i], s->name))
            return 1;
    }
    return 0;
}

CMD_HANDLER(cmd_info)
{
    buf_t text;
    buf_init(&text);
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (!section_wanted(&sections[i], argc, argv, argl))
            continue;
        if (buf_len(&text))
            buf_append(&text, "\r\n", 2);
        char title[32];
        snprintf(title, sizeof(title), "# %s\r\n", sections[i].name);
        title[2] = (char)(title[2] - 32); /* "Server", "Clients", ... */
        buf_append_str(&text, title);
        info_rows(cmd_node(c), sections[i].name, &text);
        if (sections[i].extra)
            sections[i].extra(cmd_node(c), &text);
    }
    resp_add_verbatim(&c->out, c->proto, buf_head(&text), buf_len(&text));
    buf_free(&text);
}
