/* The library loaded at run time is the one the headers describe: pdw_version() and
 * pdw_version_number() against PDW_VERSION_STRING / PDW_VERSION_NUMBER, and the
 * SONAME's major against PDW_VERSION_MAJOR (ABI_SOVERSION, given by CMake). */
#include <pdwebhook/pdwebhook.h>
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
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
