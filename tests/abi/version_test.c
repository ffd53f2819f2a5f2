/* The library loaded at run time is the one the headers describe: pdw_version() and
 * pdw_version_number() against PDW_VERSION_STRING / PDW_VERSION_NUMBER, and the
 * SONAME's major against PDW_VERSION_MAJOR (ABI_SOVERSION, given by CMake). And the
 * versioned structs of 1.0: version 1, filled by their init functions as the version and
 * zeros; the one dedup store vtable (docs/ABI.md). */
#include <pdwebhook/pdwebhook.h>
#include <pdwebhook/sys/dedup_store.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail ? ": " : "", detail ? detail : "");
    if (ok)
        passed++;
    else
        failed++;
}

int main(void)
{
    char buf[128];
    const char *v = pdw_version();
    unsigned n = pdw_version_number();

    snprintf(buf, sizeof buf, "library \"%s\", header \"%s\"", v ? v : "(null)",
             PDW_VERSION_STRING);
    check(v != NULL && strcmp(v, PDW_VERSION_STRING) == 0, "pdw_version() == PDW_VERSION_STRING",
          buf);
    snprintf(buf, sizeof buf, "library 0x%06x, header 0x%06x", n, (unsigned)PDW_VERSION_NUMBER);
    check(n == (unsigned)PDW_VERSION_NUMBER, "pdw_version_number() == PDW_VERSION_NUMBER", buf);
    snprintf(buf, sizeof buf, "%d.%d.%d", PDW_VERSION_MAJOR, PDW_VERSION_MINOR,
             PDW_VERSION_PATCH);
    check(strcmp(buf, PDW_VERSION_STRING) == 0, "PDW_VERSION_STRING == MAJOR.MINOR.PATCH", buf);
    check(((n >> 16) & 0xff) == PDW_VERSION_MAJOR && ((n >> 8) & 0xff) == PDW_VERSION_MINOR &&
              (n & 0xff) == PDW_VERSION_PATCH,
          "pdw_version_number() is 0xMMmmpp", NULL);
#ifdef ABI_SOVERSION
    /* Policy (docs/ABI.md): the SONAME number is the major version, 0 included; an ABI
     * break bumps both. */
    snprintf(buf, sizeof buf, "SOVERSION %d, major %d", ABI_SOVERSION, PDW_VERSION_MAJOR);
    check(ABI_SOVERSION == PDW_VERSION_MAJOR, "libpdwebhook.so.<SOVERSION> == major version",
          buf);
#endif
    /* Every code of the table has a name and a message, and unknown codes are safe. */
    int named = 1;
#define PDW__CHECK(name, value, status, msg)                                                     \
    if (strcmp(pdw_err_name(value), "PDW_" #name) != 0 || strcmp(pdw_strerror(value), msg) != 0 \
        || pdw_err_http_status(value) != (status))                                              \
        named = 0;
    PDW_ERRNO_MAP(PDW__CHECK)
#undef PDW__CHECK
    check(named, "PDW_ERRNO_MAP matches pdw_err_name/pdw_strerror/pdw_err_http_status", NULL);
    check(pdw_strerror(-100000) != NULL && pdw_err_name(-100000) != NULL,
          "unknown codes give strings, not NULL", NULL);

    /* 1.0 starts every versioned struct at version 1; the options init functions and the
     * initialisers agree (the version, every other member zero). */
    union {
        pdw_receiver_options o;
        unsigned char b[sizeof(pdw_receiver_options)];
    } ro;
    memset(&ro, 0xa5, sizeof ro);
    int rc = pdw_receiver_options_init(&ro.o, PDW_RECEIVER_OPTIONS_VERSION);
    int zero = 1;
    for (size_t i = sizeof ro.o.version; i < sizeof ro.b; i++)
        zero &= ro.b[i] == 0;
    check(rc == 0 && ro.o.version == 1 && PDW_RECEIVER_OPTIONS_VERSION == 1 && zero,
          "pdw_receiver_options_init: version 1, every other byte zero", NULL);
    memset(&ro, 0xa5, sizeof ro);
    check(pdw_receiver_options_init(&ro.o, 2) == PDW_EVERSIONSTRUCT && ro.b[0] == 0xa5,
          "pdw_receiver_options_init refuses another version, writing nothing", NULL);

    /* The dedup store vtable: one version; the built-in store is of it. */
    pdw_dedup_store vt;
    memset(&vt, 0xa5, sizeof vt);
    check(pdw_dedup_store_init(&vt, PDW_DEDUP_STORE_VERSION) == 0 &&
              vt.version == PDW_DEDUP_STORE_VERSION && !vt.claim && !vt.release &&
              !vt.confirm && !vt.free,
          "pdw_dedup_store_init zeroes the vtable and sets its version", NULL);
    check(pdw_dedup_store_init(&vt, PDW_DEDUP_STORE_VERSION + 1) == PDW_EVERSIONSTRUCT &&
              vt.version == PDW_DEDUP_STORE_VERSION,
          "pdw_dedup_store_init refuses another version, leaving the vtable untouched", NULL);
    pdw_dedup_store *m = NULL;
    rc = pdw_dedup_memory_new(&m, NULL, NULL);
    check(rc == 0 && m && m->version == PDW_DEDUP_STORE_VERSION && m->claim && m->release &&
              m->confirm && m->free,
          "pdw_dedup_memory_new gives a complete vtable of PDW_DEDUP_STORE_VERSION", NULL);
    pdw_dedup_store_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
