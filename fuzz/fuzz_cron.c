/* fuzz_cron: feeds arbitrary bytes to cron_parse (and, when the input looks
 * like "key=value", to jobspec_set), in the Europe/Berlin zone so daylight
 * saving is exercised.
 *
 * A parse either fails with one line beginning "cron: ", or succeeds with
 * bits only inside the field ranges; then cron_next(e, t) is -1 or the
 * smallest fire time after t (cron_next(e, next - 1) == next). A key either
 * fails with one line "key: ..." or is accepted; nothing may crash or leak. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "jobspec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[128];
    (void)argc;
    (void)argv;
    if (cron_set_timezone("Europe/Berlin", err, sizeof(err)) < 0)
        abort();
    return 0;
}

static void check_one_line(const char *err)
{
    assert(err[0] && !strchr(err, '\n'));
}

static void fuzz_cron(const char *text)
{
    static const int64_t afters[] = {
        1774742400000LL, /* 2026-03-29 00:00Z, the night of the spring gap */
        1793318400000LL, /* 2026-10-25 00:00Z, the night of the repeated hour */
        951782400000LL,  /* 2000-02-29 00:00Z */
        1798761599999LL, /* 2026-12-31 23:59:59.999Z */
    };
    cron_expr_t e;
    char err[256] = "";
    if (cron_parse(&e, text, err, sizeof(err)) < 0) {
        check_one_line(err);
        assert(strncmp(err, "cron: ", 6) == 0 || strncmp(err, "cron:", 5) == 0);
        return;
    }
    assert(e.minutes && !(e.minutes >> 60));
    assert(e.hours && !(e.hours >> 24));
    assert(e.mdays && !(e.mdays & 1));
    assert(e.months && !(e.months & 1) && !(e.months >> 13));
    assert(e.wdays && !(e.wdays >> 7));
    for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
        int64_t next = cron_next(&e, afters[i]);
        if (next < 0)
            continue;
        assert(next > afters[i] && next % 1000 == 0);
        assert(cron_next(&e, next - 1) == next);
    }
}

static void fuzz_key(const char *text)
{
    const char *eq = strchr(text, '=');
    char key[32], err[256] = "";
    size_t klen = (size_t)(eq - text);
    if (klen >= sizeof(key))
        return;
    memcpy(key, text, klen);
    key[klen] = '\0';
    jobspec_t j;
    if (jobspec_init(&j, "fuzz", err, sizeof(err)) < 0)
        abort();
    if (jobspec_set(&j, key, eq + 1, err, sizeof(err)) < 0) {
        check_one_line(err);
        assert(strncmp(err, key, klen) == 0 || strstr(err, ": unknown key"));
    }
    jobspec_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0'; /* stops at the first NUL, as a config value would */
    if (strchr(text, '='))
        fuzz_key(text);
    else
        fuzz_cron(text);
    free(text);
    return 0;
}
