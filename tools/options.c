/* The one option parser of the pdwebhook subcommands (see options.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "options.h"

#define HELP_COLUMN 25

/* ---- numbers ------------------------------------------------------------------------- */

/* Digits only, no sign, no overflow; *end after them. */
static int parse_digits(const char *s, unsigned long long *out, const char **end)
{
    unsigned long long v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

static int mul_checked(unsigned long long v, unsigned long long m, unsigned long long *out)
{
    if (m && v > ULLONG_MAX / m)
        return -1;
    *out = v * m;
    return 0;
}

static int unit_is(const char *u, const char *want)
{
    return strcmp(u, want) == 0;
}

int pdw_opt_number(pdw_opt_type type, const char *s, unsigned long long lo,
                   unsigned long long hi, unsigned long long *out, char *why, size_t whycap)
{
    const char *unit;
    unsigned long long v, r;
    int rc = s ? parse_digits(s, &v, &unit) : -1;
    if (rc == -2) {
        snprintf(why, whycap, "too large");
        return -1;
    }
    if (rc != 0) {
        snprintf(why, whycap, "not a number");
        return -1;
    }
    switch (type) {
    case PDW_OPT_SIZE: {
        unsigned long long m = 1;
        char c = (char)tolower((unsigned char)*unit);
        const char *rest = unit;
        if (c == 'k' || c == 'm' || c == 'g' || c == 't') {
            m = c == 'k' ? 1ull << 10 : c == 'm' ? 1ull << 20 : c == 'g' ? 1ull << 30 : 1ull << 40;
            rest = unit + 1;
            if (*rest == 'i')
                rest++;
        }
        if (*rest == 'b' || *rest == 'B')
            rest++;
        if (*rest) {
            snprintf(why, whycap, "unknown unit '%s' (k, M or G)", unit);
            return -1;
        }
        if (mul_checked(v, m, &r) != 0) {
            snprintf(why, whycap, "too large");
            return -1;
        }
        break;
    }
    case PDW_OPT_SECONDS:
        if (!*unit || unit_is(unit, "s")) {
            r = v;
        } else if (unit_is(unit, "ms")) {
            if (v % 1000) {
                snprintf(why, whycap, "not a whole number of seconds");
                return -1;
            }
            r = v / 1000;
        } else if (unit_is(unit, "m") || unit_is(unit, "h") || unit_is(unit, "d")) {
            if (mul_checked(v, *unit == 'm' ? 60 : *unit == 'h' ? 3600 : 86400, &r) != 0) {
                snprintf(why, whycap, "too large");
                return -1;
            }
        } else {
            snprintf(why, whycap, "unknown unit '%s' (ms, s, m, h or d)", unit);
            return -1;
        }
        break;
    case PDW_OPT_MILLIS:
        if (!*unit || unit_is(unit, "ms")) {
            r = v;
        } else if (unit_is(unit, "s") || unit_is(unit, "m") || unit_is(unit, "h")) {
            if (mul_checked(v, *unit == 's' ? 1000 : *unit == 'm' ? 60000 : 3600000, &r) != 0) {
                snprintf(why, whycap, "too large");
                return -1;
            }
        } else {
            snprintf(why, whycap, "unknown unit '%s' (ms, s, m or h)", unit);
            return -1;
        }
        break;
    default:
        if (*unit) {
            snprintf(why, whycap, "not a number");
            return -1;
        }
        r = v;
        break;
    }
    if (r < lo) {
        snprintf(why, whycap, "too small");
        return -1;
    }
    if (r > hi) {
        snprintf(why, whycap, "too large");
        return -1;
    }
    *out = r;
    return 0;
}

/* "from 1 to 256", in the option's unit. */
static void describe_range(const pdw_opt *o, char *out, size_t cap)
{
    switch (o->type) {
    case PDW_OPT_SIZE:
        snprintf(out, cap, "a size from %llu to %llu bytes (units k, M, G)", o->lo, o->hi);
        break;
    case PDW_OPT_SECONDS:
        snprintf(out, cap, "a number of seconds from %llu to %llu (units ms, s, m, h)", o->lo,
                 o->hi);
        break;
    case PDW_OPT_MILLIS:
        snprintf(out, cap, "a number of milliseconds from %llu to %llu (units ms, s, m, h)",
                 o->lo, o->hi);
        break;
    case PDW_OPT_REAL:
        snprintf(out, cap, "a number from %g to %g", o->rlo, o->rhi);
        break;
    default:
        snprintf(out, cap, "a number from %llu to %llu", o->lo, o->hi);
        break;
    }
}

/* ---- messages ------------------------------------------------------------------------ */

static void where(const pdw_opt_cmd *cmd, const pdw_opt_value *v)
{
    if (v && v->from_file)
        fprintf(stderr, "%s: %s line %d: ", cmd->prog, v->from_file, v->line);
    else
        fprintf(stderr, "%s: ", cmd->prog);
}

int pdw_opt_error(const pdw_opt_cmd *cmd, const pdw_opt *o, const pdw_opt_value *v,
                  const char *fmt, ...)
{
    where(cmd, v);
    if (o) {
        fprintf(stderr, "--%s", o->name);
        if (v && v->text)
            fprintf(stderr, " '%s'", (o->flags & PDW_OPT_SECRET) ? "***" : v->text);
        fputs(": ", stderr);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* ---- the table ----------------------------------------------------------------------- */

const pdw_opt *pdw_opt_lookup(const pdw_opt_cmd *cmd, const char *name, size_t len)
{
    for (size_t i = 0; i < cmd->nopts; i++) {
        const char *n = cmd->opts[i].name;
        size_t k = 0;
        for (; k < len && n[k]; k++) /* '_' and '-' alike (config keys) */
            if (!(n[k] == name[k] || (n[k] == '-' && name[k] == '_')))
                break;
        if (k == len && n[k] == '\0')
            return &cmd->opts[i];
    }
    return NULL;
}

static const pdw_opt *by_id(const pdw_opt_cmd *cmd, int id)
{
    for (size_t i = 0; i < cmd->nopts; i++)
        if (cmd->opts[i].id == id && cmd->opts[i].type != PDW_OPT_FILE_OF)
            return &cmd->opts[i];
    return NULL;
}

int pdw_opt_check_private(const char *prog, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(errno));
        return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr,
                "%s: %s %s is accessible by group or others (mode %04o): it holds secrets; "
                "chmod 600 %s\n",
                prog, what, path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    return 0;
}

/* Check and convert v->text for o, then hand it to apply(). */
static int take(const pdw_opt_cmd *cmd, const pdw_opt *o, pdw_opt_value *v,
                pdw_opt_apply_cb apply, void *user)
{
    char why[96], range[128];
    switch (o->type) {
    case PDW_OPT_NUMBER:
    case PDW_OPT_SIZE:
    case PDW_OPT_SECONDS:
    case PDW_OPT_MILLIS:
        if (pdw_opt_number(o->type, v->text, o->lo, o->hi, &v->num, why, sizeof why) != 0) {
            describe_range(o, range, sizeof range);
            where(cmd, v);
            fprintf(stderr, "--%s takes %s, not '%s' (%s)\n", o->name, range, v->text, why);
            return -1;
        }
        break;
    case PDW_OPT_REAL: {
        char *end;
        errno = 0;
        double d = strtod(v->text, &end);
        if (!*v->text || *end || errno || d != d || d < o->rlo || d > o->rhi) {
            describe_range(o, range, sizeof range);
            where(cmd, v);
            fprintf(stderr, "--%s takes %s, not '%s'\n", o->name, range, v->text);
            return -1;
        }
        v->real = d;
        break;
    }
    case PDW_OPT_FILE_OF: {
        const pdw_opt *base = by_id(cmd, o->of);
        if (!base)
            return pdw_opt_error(cmd, o, v, "no option to read the file for");
        char label[64];
        snprintf(label, sizeof label, "--%s", o->name);
        if (pdw_opt_check_private(cmd->prog, label, v->text) != 0)
            return -1;
        size_t len;
        char *text = pdw_cli_read_file(v->text, &len);
        if (!text)
            return pdw_opt_error(cmd, o, v, "cannot read it: %s", strerror(errno));
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
        if (!len || memchr(text, '\n', len)) {
            free(text);
            return pdw_opt_error(cmd, o, v, "the file must hold one line (the value)");
        }
        pdw_opt_value bv = *v;
        bv.text = text; /* kept until exit: the command keeps pointers to its values */
        return apply(base, &bv, user);
    }
    default:
        if ((o->flags & PDW_OPT_SECRET) && !v->from_file)
            fprintf(stderr,
                    "%s: warning: --%s on the command line is visible to every user of this "
                    "machine (ps, /proc); use its environment variable, --%s-file FILE or a "
                    "configuration file\n",
                    cmd->prog, o->name, o->name);
        break;
    }
    return apply(o, v, user);
}

/* ---- the command line ---------------------------------------------------------------- */

const char *pdw_opt_find(int argc, char **argv, int first, const char *name)
{
    size_t n = strlen(name);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
            continue;
        if (a[2 + n] == '=')
            return a + 3 + n;
        if (a[2 + n] == '\0' && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

int pdw_opt_parse(const pdw_opt_cmd *cmd, int argc, char **argv, int first,
                  pdw_opt_apply_cb apply, void *user, char **pos, int *npos)
{
    int cap = npos ? *npos : 0, n = 0, only_pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (n >= cap) {
                fprintf(stderr, "%s: unexpected argument '%s' (%s --help lists the usage)\n",
                        cmd->prog, a, cmd->prog);
                return -1;
            }
            pos[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            pdw_opt_help(cmd, stdout);
            return 1;
        }
        const pdw_opt *o = NULL;
        const char *value = NULL;
        size_t nlen;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            o = pdw_opt_lookup(cmd, a + 2, nlen);
            if (eq)
                value = eq + 1;
        } else if (a[2] == '\0') {
            nlen = 1;
            for (size_t k = 0; k < cmd->nopts; k++)
                if (cmd->opts[k].short_name == a[1])
                    o = &cmd->opts[k];
        } else {
            nlen = strlen(a + 1);
        }
        if (!o) {
            /* the name only: an unknown --password=... must not print its value */
            const char *eq = strchr(a, '=');
            fprintf(stderr, "%s: unknown option '%.*s' (%s --help lists them)\n", cmd->prog,
                    eq ? (int)(eq - a) : (int)strlen(a), a, cmd->prog);
            return -1;
        }
        pdw_opt_value v = { NULL, 0, 0.0, NULL, 0 };
        if (o->type == PDW_OPT_FLAG) {
            if (value) {
                fprintf(stderr, "%s: --%s takes no value\n", cmd->prog, o->name);
                return -1;
            }
        } else {
            if (!value) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "%s: --%s needs a value (%s)\n", cmd->prog, o->name,
                            o->arg ? o->arg : "VALUE");
                    return -1;
                }
                value = argv[++i];
            }
            v.text = value;
        }
        if (take(cmd, o, &v, apply, user) != 0)
            return -1;
    }
    if (npos)
        *npos = n;
    return 0;
}

/* ---- the configuration file ---------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int pdw_opt_config(const pdw_opt_cmd *cmd, const char *path, int missing_ok,
                   pdw_opt_apply_cb apply, void *user)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (missing_ok && errno == ENOENT)
            return 0;
        fprintf(stderr, "%s: configuration file %s: %s\n", cmd->prog, path, strerror(errno));
        return -1;
    }
    if (pdw_opt_check_private(cmd->prog, "configuration file", path) != 0)
        return -1;
    /* kept until exit: the command keeps pointers into it */
    char *text = pdw_cli_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "%s: configuration file %s: %s\n", cmd->prog, path, strerror(errno));
        return -1;
    }
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        pdw_opt_value v = { NULL, 0, 0.0, path, lineno };
        char *eq = strchr(s, '=');
        if (!eq) {
            where(cmd, &v);
            fprintf(stderr, "expected 'key = value'\n");
            goto fail;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vn = strlen(value);
        if (vn >= 2 && value[0] == '"' && value[vn - 1] == '"') {
            value[vn - 1] = '\0';
            value++;
        }
        const pdw_opt *o = pdw_opt_lookup(cmd, key, strlen(key));
        if (!o || (o->flags & PDW_OPT_NO_CONFIG)) {
            where(cmd, &v);
            fprintf(stderr, "unknown key '%s' (the keys are the long options of %s --help)\n",
                    key, cmd->prog);
            goto fail;
        }
        v.text = value;
        if (o->type == PDW_OPT_FLAG) {
            if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
                !strcmp(value, "1")) {
                v.text = NULL;
            } else if (!strcmp(value, "false") || !strcmp(value, "no") ||
                       !strcmp(value, "off") || !strcmp(value, "0")) {
                continue;
            } else {
                pdw_opt_error(cmd, o, &v, "a flag takes true or false");
                goto fail;
            }
        }
        if (take(cmd, o, &v, apply, user) != 0)
            goto fail;
    }
    return 0; /* text stays: the command keeps pointers into it */
fail:
    free(text); /* the command exits with a usage error: nothing points into it */
    return -1;
}

/* ---- help ---------------------------------------------------------------------------- */

void pdw_opt_help(const pdw_opt_cmd *cmd, FILE *out)
{
    fputs(cmd->usage, out);
    for (size_t i = 0; i < cmd->nopts; i++) {
        const pdw_opt *o = &cmd->opts[i];
        if (o->flags & PDW_OPT_HIDDEN)
            continue;
        char left[96], shrt[8] = "";
        if (o->short_name)
            snprintf(shrt, sizeof shrt, "-%c, ", o->short_name);
        int n = snprintf(left, sizeof left, "  %s--%s%s%s", shrt, o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
        const char *h = o->help ? o->help : "";
        fputs(left, out);
        if (n + 1 >= HELP_COLUMN)
            fputs("  ", out);
        else
            fprintf(out, "%*s", HELP_COLUMN - n, "");
        for (const char *p = h; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            fwrite(p, 1, len, out);
            fputc('\n', out);
            if (!nl)
                break;
            p = nl + 1;
            if (*p)
                fprintf(out, "%*s", HELP_COLUMN, "");
        }
        if (!*h)
            fputc('\n', out);
    }
    if (cmd->footer)
        fputs(cmd->footer, out);
}

int pdw_opt_hostport(const char *s, char *host, size_t cap, unsigned *port, const char **why)
{
    const char *colon = strrchr(s, ':');
    if (!colon) {
        *why = "expected HOST:PORT";
        return -1;
    }
    size_t hl = (size_t)(colon - s);
    const char *h = s;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8080 */
        h++;
        hl -= 2;
    } else if (memchr(s, ':', hl)) {
        *why = "an IPv6 address goes in brackets: [::1]:8080";
        return -1;
    }
    if (hl >= cap) {
        *why = "the host is too long";
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned long long p;
    char reason[64];
    if (pdw_opt_number(PDW_OPT_NUMBER, colon + 1, 0, 65535, &p, reason, sizeof reason) != 0) {
        *why = "the port must be a number from 0 to 65535 (0: any free port)";
        return -1;
    }
    *port = (unsigned)p;
    return 0;
}
