/* The event vocabulary: v1 and v2 action words mapped onto one canonical set. */
#include <string.h>

#include "pdwebhook/event.h" /* PDW_NAME_MAX */
#include "util/util.h"

typedef struct action_word {
    const char *word;
    int id;
    int merged;
} action_word;

static const action_word words[] = {
    { "create", PDW__ACT_CREATE, 0 },  { "added", PDW__ACT_CREATE, 0 },
    { "change", PDW__ACT_CHANGE, 0 },  { "updated", PDW__ACT_CHANGE, 0 },
    { "merged", PDW__ACT_CHANGE, 1 },  { "delete", PDW__ACT_DELETE, 0 },
    { "deleted", PDW__ACT_DELETE, 0 },
};

int pdw__action_id(const char *s, size_t n, int *is_merged)
{
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strlen(words[i].word) == n && memcmp(words[i].word, s, n) == 0) {
            if (is_merged)
                *is_merged = words[i].merged;
            return words[i].id;
        }
    }
    return -1;
}

const char *pdw__action_name(int id)
{
    static const char *const names[PDW__ACT_COUNT] = { "create", "change", "delete" };
    return id >= 0 && id < PDW__ACT_COUNT ? names[id] : "unknown";
}

int pdw__object_valid(const char *s, size_t n)
{
    if (n == 0 || n > PDW_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}
