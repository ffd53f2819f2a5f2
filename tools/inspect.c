/* pdwebhook inspect FILE...: one JSON line per file with the normalised event, or why it
 * was refused. Exit status 1 when any file was refused, 2 on usage or I/O errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static const pdw_opt inspect_opts[] = {
    { 1, "pretty", 0, NULL, PDW_OPT_FLAG, 0, 0, 0, 0, 0, "indent the JSON", 0 },
};

static const pdw_opt_cmd inspect_cmd = {
    "pdwebhook inspect",
    "usage: pdwebhook inspect [--pretty] FILE...   (FILE - reads stdin)\n",
    inspect_opts, 1, NULL,
};

static int apply(const pdw_opt *o, const pdw_opt_value *v, void *user)
{
    (void)o, (void)v;
    *(size_t *)user = JSON_INDENT(2);
    return 0;
}

int pdw_cmd_inspect(int argc, char **argv)
{
    size_t flags = JSON_COMPACT;
    int refused = 0, failed = 0;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int first = 0;
    if (!files) {
        fprintf(stderr, "pdwebhook inspect: out of memory\n");
        return 2;
    }
    int prc = pdw_opt_parse(&inspect_cmd, argc, argv, 1, apply, &flags, files, &argc);
    argv = files; /* the files, from 0 */
    if (prc != 0 || argc < 1) {
        if (prc == 0)
            fprintf(stderr, "usage: pdwebhook inspect [--pretty] FILE...\n");
        free(files);
        return prc > 0 ? 0 : 2;
    }
    for (int i = first; i < argc; i++) {
        size_t len;
        char *body = pdw_cli_read_file(argv[i], &len);
        if (!body) {
            fprintf(stderr, "pdwebhook inspect: cannot read %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        pdw_event *ev = NULL;
        pdw_error err;
        pdw_error_clear(&err);
        int rc = pdw_event_parse(&ev, body, len, NULL, &err);
        json_t *line;
        if (rc == 0) {
            line = pdw_cli_event_json(ev, 0);
        } else {
            refused = 1;
            line = json_object();
            if (line) {
                json_object_set_new(line, "ok", json_false());
                json_object_set_new(line, "error", json_string(pdw_err_name(rc)));
                json_object_set_new(line, "message", json_string(err.message));
                json_object_set_new(line, "http_status",
                                    json_integer(pdw_err_http_status(rc)));
                json_object_set_new(line, "offset",
                                    err.offset >= 0 ? json_integer(err.offset) : json_null());
            }
        }
        if (line) {
            /* "file" first, for people reading the lines */
            json_t *out = json_object();
            json_object_set_new(out, "file", json_string(argv[i]));
            json_object_update(out, line);
            json_dumpf(out, stdout, flags);
            fputc('\n', stdout);
            json_decref(out);
            json_decref(line);
        } else {
            fprintf(stderr, "pdwebhook inspect: out of memory\n");
            failed = 1;
        }
        pdw_event_free(ev);
        free(body);
    }
    fflush(stdout);
    free(files);
    return failed ? 2 : refused ? 1 : 0;
}
