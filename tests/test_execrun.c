/* The handler command of serve --exec / consume --exec (tools/execrun.c): one timeout
 * covers writing the event to the command's stdin and waiting for it; a command that does
 * not read its input, or leaves a child holding it, cannot wedge the caller. */
#include <time.h>
#include <unistd.h>

#include "pdw_test.h"
#include "execrun.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *event_of(size_t n) /* a JSON line of n bytes */
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, 'x', n);
    memcpy(p, "{\"a\":\"", 6);
    memcpy(p + n - 3, "\"}\n", 3);
    p[n] = '\0';
    return p;
}

static int run(const char *cmd, unsigned timeout_s, const char *line, size_t len, char *err,
               size_t cap)
{
    pdw_cli_exec x = { cmd, NULL, "pdw-test-exec", timeout_s, NULL };
    return pdw_cli_exec_run(&x, line, len, err, cap);
}

/* A 200 KB event to a command that sleeps past the timeout before it reads: the timeout
 * counts from the start, not from the end of the write (it used to count as handled). */
static void test_timeout_covers_the_write(void **state)
{
    (void)state;
    char *ev = event_of(200000), err[256] = "";
    double t0 = now_s();
    int rc = run("sleep 3; cat >/dev/null", 1, ev, 200000, err, sizeof err);
    double took = now_s() - t0;
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "timed out"));
    assert_non_null(strstr(err, "had not read all of its input"));
    assert_true(took < 2.5);
    free(ev);
}

/* The command exits 0 without reading and leaves a child holding its stdin: its exit
 * status decides at once; the unread rest of the event is dropped, nothing wedges. */
static void test_child_holding_stdin_does_not_wedge(void **state)
{
    (void)state;
    char *ev = event_of(200000), err[256] = "";
    double t0 = now_s();
    int rc = run("exec 3<&0; sleep 2 <&3 & exit 0", 10, ev, 200000, err, sizeof err);
    double took = now_s() - t0;
    assert_int_equal(rc, 0);
    assert_true(took < 1.5);
    free(ev);
}

/* A command that reads everything gets all of it. */
static void test_large_event_read_whole(void **state)
{
    (void)state;
    char path[] = "/tmp/pdw-exec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cat > '%s'", path);
    char *ev = event_of(300000), err[256] = "";
    assert_int_equal(run(cmd, 10, ev, 300000, err, sizeof err), 0);
    size_t n = 0;
    char *got = pdw_test_read_file(path, &n);
    assert_int_equal(n, 300000);
    assert_memory_equal(got, ev, n);
    free(got);
    free(ev);
    unlink(path);
}

static void test_exit_status_reported(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(run("cat >/dev/null; exit 3", 5, "{}\n", 3, err, sizeof err), -1);
    assert_string_equal(err, "command exited with 3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_covers_the_write),
        cmocka_unit_test(test_child_holding_stdin_does_not_wedge),
        cmocka_unit_test(test_large_event_read_whole),
        cmocka_unit_test(test_exit_status_reported),
    };
    PDW_RUN_GROUP(tests);
}
