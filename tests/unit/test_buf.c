/* Unit tests for buf: appending, reserving, consuming, compaction (content
 * kept, cost amortized), formatted appends, trimming and accounting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"

static void test_empty(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_alloc_size(&b), 0);
    buf_append(&b, "x", 0); /* no allocation for nothing */
    assert_null(b.data);
    buf_consume(&b, 0);
    buf_trim(&b, 0);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_append_and_consume(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_append(&b, "hello", 5);
    buf_append_str(&b, " world");
    assert_int_equal(buf_len(&b), 11);
    assert_memory_equal(buf_head(&b), "hello world", 11);
    buf_consume(&b, 6);
    assert_int_equal(buf_len(&b), 5);
    assert_memory_equal(buf_head(&b), "world", 5);
    buf_append(&b, "!\0?", 3); /* binary safe */
    assert_int_equal(buf_len(&b), 8);
    assert_memory_equal(buf_head(&b), "world!\0?", 8);
    buf_consume(&b, 8);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(b.start, 0); /* an emptied buffer starts over at the front */
    assert_int_equal(b.end, 0);
    buf_append(&b, "ab", 2);
    buf_clear(&b);
    assert_int_equal(buf_len(&b), 0);
    assert_non_null(b.data); /* clearing keeps the allocation */
    buf_free(&b);
}

static void test_reserve_commit(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    char *room = buf_reserve(&b, 100);
    assert_non_null(room);
    assert_true(b.cap - b.end >= 100);
    memcpy(room, "abc", 3);
    buf_commit(&b, 3);
    assert_int_equal(buf_len(&b), 3);
    assert_memory_equal(buf_head(&b), "abc", 3);
    /* a reservation that fits does not move anything */
    char *before = b.data;
    room = buf_reserve(&b, 10);
    assert_ptr_equal(room, b.data + b.end);
    assert_ptr_equal(b.data, before);
    /* reserving without committing adds nothing */
    assert_int_equal(buf_len(&b), 3);
    /* a large reservation keeps the pending bytes */
    room = buf_reserve(&b, 5 << 20);
    assert_true(b.cap - b.end >= (size_t)5 << 20);
    memset(room, 'z', 5 << 20);
    buf_commit(&b, 5 << 20);
    assert_int_equal(buf_len(&b), 3 + (5 << 20));
    assert_memory_equal(buf_head(&b), "abczzz", 6);
    buf_free(&b);
}

/* Reclaiming consumed space keeps the pending bytes, in order. */
static void test_compaction_keeps_content(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    char chunk[64];
    for (int i = 0; i < 64; i++)
        chunk[i] = (char)i;
    buf_append(&b, chunk, 64); /* exactly the first allocation */
    size_t cap = b.cap;
    assert_int_equal(cap, 64);
    buf_consume(&b, 40); /* 24 pending, 40 reclaimable: slide */
    buf_append(&b, chunk, 30);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.start, 0);
    assert_int_equal(buf_len(&b), 54);
    assert_memory_equal(buf_head(&b), chunk + 40, 24);
    assert_memory_equal(buf_head(&b) + 24, chunk, 30);
    /* too little reclaimable: grow, still in order */
    buf_consume(&b, 4);
    buf_append(&b, chunk, 20);
    assert_true(b.cap > cap);
    assert_int_equal(buf_len(&b), 70);
    assert_memory_equal(buf_head(&b), chunk + 44, 20);
    assert_memory_equal(buf_head(&b) + 20, chunk, 30);
    assert_memory_equal(buf_head(&b) + 50, chunk, 20);
    buf_free(&b);
}

/* A buffer drained and refilled a little at a time (a slow reader's output
 * buffer) must not move all its pending bytes on every append: that was
 * quadratic. Pending bytes stay in order throughout. */
static void test_trickle_is_amortized(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    const size_t pending = 64 * 1024;
    unsigned char next_in = 0, next_out = 0;
    for (size_t i = 0; i < pending; i++) {
        buf_append(&b, &next_in, 1);
        next_in++;
    }
    assert_int_equal(b.cap, pending); /* full */

    int slides = 0;
    size_t bytes_moved = 0;
    for (int round = 0; round < 20000; round++) {
        unsigned char out[16];
        memcpy(out, buf_head(&b), 16);
        for (int j = 0; j < 16; j++)
            assert_int_equal(out[j], (unsigned char)(next_out + j));
        next_out = (unsigned char)(next_out + 16);
        buf_consume(&b, 16);
        size_t start = b.start;
        unsigned char in[16];
        for (int j = 0; j < 16; j++)
            in[j] = next_in++;
        buf_append(&b, in, 16);
        if (b.start == 0 && start > 0) {
            slides++;
            bytes_moved += buf_len(&b) - 16;
        }
        assert_int_equal(buf_len(&b), pending);
    }
    /* 320KB went through: a handful of slides, each paid for by at least as
     * many consumed bytes; sliding on every append would be 20000. */
    assert_true(slides <= 8);
    assert_true(bytes_moved <= 20000 * 16 + 2 * pending);
    assert_true(b.cap <= 4 * pending);
    buf_free(&b);
}

static void test_printf(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s=%d;", "a", 1);
    buf_printf(&b, "%05d", 42);
    assert_int_equal(buf_len(&b), 9);
    assert_memory_equal(buf_head(&b), "a=1;00042", 9);
    /* longer than the formatting fast path */
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_printf(&b, "<%s>", big);
    assert_int_equal(buf_len(&b), 9 + 1 + 999 + 1);
    assert_memory_equal(buf_head(&b) + 9, "<qqq", 4);
    assert_memory_equal(buf_head(&b) + buf_len(&b) - 2, "q>", 2);
    /* exactly at the fast path's edge: 255 and 256 characters */
    buf_clear(&b);
    buf_printf(&b, "%.*s", 255, big);
    assert_int_equal(buf_len(&b), 255);
    buf_clear(&b);
    buf_printf(&b, "%.*s", 256, big);
    assert_int_equal(buf_len(&b), 256);
    buf_printf(&b, "%s", "");
    assert_int_equal(buf_len(&b), 256);
    buf_free(&b);
}

static void test_trim_and_accounting(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_reserve(&b, 100000);
    assert_true(buf_alloc_size(&b) >= 100000);
    buf_append(&b, "x", 1);
    buf_trim(&b, 1024); /* not empty: kept */
    assert_non_null(b.data);
    assert_int_equal(buf_len(&b), 1);
    buf_consume(&b, 1);
    buf_trim(&b, 1 << 20); /* empty but not large: kept */
    assert_non_null(b.data);
    buf_trim(&b, 1024); /* empty and large: released */
    assert_null(b.data);
    assert_int_equal(buf_alloc_size(&b), 0);
    buf_append(&b, "again", 5); /* usable after a trim */
    assert_memory_equal(buf_head(&b), "again", 5);
    buf_free(&b);
}

/* An impossible size stops the process instead of wrapping around. */
static void test_absurd_reserve_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        buf_t b;
        buf_init(&b);
        buf_append(&b, "abc", 3);
        buf_reserve(&b, SIZE_MAX - 1);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_append_and_consume),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_compaction_keeps_content),
        cmocka_unit_test(test_trickle_is_amortized),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_trim_and_accounting),
        cmocka_unit_test(test_absurd_reserve_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
