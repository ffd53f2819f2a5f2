/* An outside program that reads the event's DOM with jansson's own functions. Built with
 * `pkg-config --cflags --libs pdwebhook` alone (jansson is a public dependency of the core:
 * the .pc file's Requires brings -ljansson), or with pdwebhook::pdwebhook in CMake.
 *   jansson_consumer BODY.json  -> prints "object=<meta.object or meta.entity> id=<...>" */
#include <jansson.h>
#include <pdwebhook/pdwebhook.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    pdw_event *ev = NULL;
    pdw_error err = { 0, -1, "" };
    if (pdw_event_parse(&ev, buf, n, NULL, &err) != 0) {
        fprintf(stderr, "parse: %s\n", err.message);
        return 1;
    }
    json_t *root = pdw_event_json(ev); /* borrowed */
    json_t *meta = root ? json_object_get(root, "meta") : NULL;
    printf("object=%s id=%s keys=%zu\n", pdw_event_object(ev), pdw_event_entity_id(ev),
           meta ? json_object_size(meta) : (size_t)0);
    pdw_event_free(ev);
    return meta ? 0 : 1;
}
