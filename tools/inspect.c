/* pdwebhook inspect FILE...: one JSON line per file with the normalised event, or why it
 * was refused. Exit status 1 when any file was refused, 2 on usage or I/O errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int pdw_cmd_inspect(int argc, char **argv)
{
    size_t flags = JSON_COMPACT;
    int first = 1, refused = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pretty") == 0) {
            flags = JSON_INDENT(2);
            first = i + 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: pdwebhook inspect [--pretty] FILE...   (FILE - reads stdin)\n");
            return 0;
        } else {
            break;
        }
    }
    if (first >= argc) {
        fprintf(stderr, "usage: pdwebhook inspect [--pretty] FILE...\n");
        return 2;
    }
    for (int i = first; i < argc; i++) {
        size_t len;
        char *body = pdw_cli_read_file(argv[i], &len);
        if (!body) {
            fprintf(stderr, "pdwebhook inspect: cannot read %s\n", argv[i]);
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
    return failed ? 2 : refused ? 1 : 0;
}
