/* pdwebhook: a ready receiver for Pipedrive webhooks, and tools around it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pdwebhook COMMAND [options]\n"
            "\n"
            "  serve             receive Pipedrive webhooks over HTTP(S)\n"
            "  inspect FILE...   parse bodies and print each event as one JSON line\n"
            "  send URL FILE...  deliver bodies the way Pipedrive does (retries, ban counter)\n"
            "  deadletter list|replay  events given up after their last attempt\n"
            "  subscriptions plan|list|sync|delete   manage the account's Pipedrive webhooks\n"
            "  reconcile         win back what Pipedrive dropped: re-read a window from its API\n"
            "  consume           handle the events serve --redis put in a Redis stream\n"
            "  version           print the library version\n"
            "\n"
            "'pdwebhook COMMAND --help' or 'pdwebhook help COMMAND' describes a command's\n"
            "options; each takes --name VALUE or --name=VALUE. Usage errors exit 2.\n");
}

#if !defined(PDW_HAVE_MHD) || !defined(PDW_HAVE_CURL)
static int missing(const char *cmd, const char *lib)
{
    fprintf(stderr, "pdwebhook: '%s' was built without %s; install it and rebuild\n", cmd, lib);
    return 2;
}
#endif

static int dispatch(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* "pdwebhook help CMD" is "pdwebhook CMD --help": the help of the command's table */
    if (argc == 3 && strcmp(argv[1], "help") == 0) {
        char *sub[] = { argv[2], (char *)(uintptr_t) "--help", NULL };
        return dispatch(2, sub);
    }
    return dispatch(argc - 1, argv + 1);
}

/* argv[0] is the command. */
static int dispatch(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "serve") == 0) {
#ifdef PDW_HAVE_MHD
        return pdw_cmd_serve(argc, argv);
#else
        return missing(cmd, "libmicrohttpd (libmicrohttpd-dev)");
#endif
    }
    if (strcmp(cmd, "send") == 0) {
#ifdef PDW_HAVE_CURL
        return pdw_cmd_send(argc, argv);
#else
        return missing(cmd, "libcurl (libcurl4-openssl-dev)");
#endif
    }
    if (strcmp(cmd, "subscriptions") == 0) {
#ifdef PDW_HAVE_CURL
        return pdw_cmd_subscriptions(argc, argv);
#else
        return missing(cmd, "libcurl (libcurl4-openssl-dev)");
#endif
    }
    if (strcmp(cmd, "reconcile") == 0) {
#ifdef PDW_HAVE_CURL
        return pdw_cmd_reconcile(argc, argv);
#else
        return missing(cmd, "libcurl (libcurl4-openssl-dev)");
#endif
    }
    if (strcmp(cmd, "consume") == 0) {
#ifdef PDW_HAVE_REDIS
        return pdw_cmd_consume(argc, argv);
#else
        return missing(cmd, "Redis support (libhiredis-dev)");
#endif
    }
    if (strcmp(cmd, "inspect") == 0)
        return pdw_cmd_inspect(argc, argv);
    if (strcmp(cmd, "deadletter") == 0)
        return pdw_cmd_deadletter(argc, argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("pdwebhook %s\n", pdw_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "pdwebhook: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
