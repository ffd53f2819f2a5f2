/* An outside program of the durable library: opens a spool in the directory given, appends
 * one delivery and reads it back as pending. Built against the installed
 * pdwebhook::durable (CMake) or `pkg-config --libs pdwebhook-durable`. */
#include <pdwebhook/durable.h>
#include <stdio.h>
#include <string.h>

static int count(const pdw_spool_record *rec, void *user)
{
    (void)rec;
    ++*(int *)user;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    pdw_spool *s = NULL;
    pdw_error err = { 0, -1, "" };
    if (pdw_spool_open(&s, argv[1], NULL, NULL, &err) != 0) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    const char body[] = "{}";
    uint64_t id = 0;
    int rc = pdw_spool_append(s, "k", 1, 0, body, strlen(body), &id, &err);
    int n = 0;
    if (rc == 0)
        rc = pdw_spool_foreach_pending(s, count, &n);
    pdw_spool_close(s);
    printf("durable: appended %llu, %d pending\n", (unsigned long long)id, n);
    return rc == 0 && n == 1 ? 0 : 1;
}
