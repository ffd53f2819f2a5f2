/* The option parser of every pdwebhook subcommand, table-driven (curl's tool_getparam.c
 * `aliases[]` is the model): one table per command names each option, its value and its
 * range; the same table prints `--help`, checks numbers with their units, reads the
 * configuration file (the same keys as the long options) and reads secrets from files.
 *
 * Messages name the command, the option, the value (never a secret's) and the reason:
 *   pdwebhook serve: --listen '127.0.0.1:99999': the port must be from 0 to 65535
 * and a usage error is exit status 2 for every command. */
#ifndef PDW_OPTIONS_H
#define PDW_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum pdw_opt_type {
    PDW_OPT_FLAG,     /* no value; in a config file: true/false, yes/no, 1/0 */
    PDW_OPT_STRING,   /* any text */
    PDW_OPT_NUMBER,   /* a whole number in [lo, hi] */
    PDW_OPT_SIZE,     /* bytes in [lo, hi], with an optional k, M or G (1024-based) */
    PDW_OPT_SECONDS,  /* a duration in whole seconds: 90, 90s, 1500ms (if whole), 2m, 1h */
    PDW_OPT_MILLIS,   /* a duration in milliseconds: 1000, 1000ms, 1s, 2m */
    PDW_OPT_REAL,     /* a real number in [rlo, rhi] */
    PDW_OPT_FILE_OF,  /* NAME-file: the value of option `of` read from a file (a secret) */
} pdw_opt_type;

#define PDW_OPT_SECRET 1u      /* never printed; a warning when given on the command line */
#define PDW_OPT_REPEAT 2u      /* may be given more than once */
#define PDW_OPT_HIDDEN 4u      /* not in --help (an alias kept for old scripts) */
#define PDW_OPT_NO_CONFIG 8u   /* command line only (--config itself, --help) */

typedef struct pdw_opt {
    int id;                   /* handed to the command's apply(); > 0 */
    const char *name;         /* the long name without "--"; the config key */
    char short_name;          /* e.g. 'h', or 0 */
    const char *arg;          /* the value's name in --help ("HOST:PORT"); NULL for a flag */
    pdw_opt_type type;
    unsigned long long lo, hi; /* NUMBER, SIZE, SECONDS (s), MILLIS (ms) */
    double rlo, rhi;          /* REAL */
    unsigned flags;           /* PDW_OPT_* */
    const char *help;         /* lines separated by '\n' */
    int of;                   /* FILE_OF: the id of the option whose value the file holds */
} pdw_opt;

typedef struct pdw_opt_cmd {
    const char *prog;         /* "pdwebhook serve": the prefix of every message */
    const char *usage;        /* the first lines of --help, ending in '\n' */
    const pdw_opt *opts;
    size_t nopts;
    const char *footer;       /* printed after the options; NULL: none */
} pdw_opt_cmd;

/* A parsed value: the text (for a FILE_OF option, the file's content without its last
 * newline: freed after apply() returns, copy what is kept) and, for numbers, the value in
 * the option's unit (REAL: real). from_file is the config file's path, or NULL for the
 * command line. */
typedef struct pdw_opt_value {
    const char *text;
    unsigned long long num;
    double real;
    const char *from_file;
    int line;
} pdw_opt_value;

/* The command's part: keep the value of option o. 0, or -1 after printing why (with
 * pdw_opt_error()). */
typedef int (*pdw_opt_apply_cb)(const pdw_opt *o, const pdw_opt_value *v, void *user);

/* Parse argv[first..argc): options (--name VALUE, --name=VALUE, -h) anywhere until "--",
 * the rest positional: up to *npos of them go to pos[] in order (*npos updated; more is a
 * usage error). "--help" and "-h" print the help to stdout. Returns 0, 1 (help printed:
 * exit 0) or -1 (a usage error, printed: exit 2). */
int pdw_opt_parse(const pdw_opt_cmd *cmd, int argc, char **argv, int first,
                  pdw_opt_apply_cb apply, void *user, char **pos, int *npos);

/* The value of --config FILE (or --config=FILE) in argv, if any; NULL else. */
const char *pdw_opt_find(int argc, char **argv, int first, const char *name);

/* Read a configuration file: "key = value" per line, '#' comments, blank lines; the keys
 * are the long options ('_' or '-'), flags take true/false. The file must not be readable
 * or writable by group or others. 0, or -1 after printing why (the file, the line). With
 * missing_ok, a file that does not exist is not an error. */
int pdw_opt_config(const pdw_opt_cmd *cmd, const char *path, int missing_ok,
                   pdw_opt_apply_cb apply, void *user);

/* Print the help (the usage, the table, the footer). */
void pdw_opt_help(const pdw_opt_cmd *cmd, FILE *out);

/* "PROG: --NAME 'VALUE': REASON" (the value hidden for a secret; "PROG: FILE line N: ..."
 * from a config file). Returns -1. */
int pdw_opt_error(const pdw_opt_cmd *cmd, const pdw_opt *o, const pdw_opt_value *v,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The option of the table called name (without "--"), or NULL. */
const pdw_opt *pdw_opt_lookup(const pdw_opt_cmd *cmd, const char *name, size_t len);

/* A secret file: its mode must deny group and others any access (as ssh wants of a private
 * key). 0, or -1 after printing "PROG: PATH: ..." with the reason. */
int pdw_opt_check_private(const char *prog, const char *what, const char *path);

/* Parse HOST:PORT ("[::1]:8080" too): host into host (cap bytes, brackets removed; may be
 * empty), *port from 0 to 65535. 0, or -1 with a reason in why. */
int pdw_opt_hostport(const char *s, char *host, size_t cap, unsigned *port, const char **why);

/* Numbers as the table types read them (exposed for tests and for config values). 0 or -1
 * with a reason in why. */
int pdw_opt_number(pdw_opt_type type, const char *s, unsigned long long lo,
                   unsigned long long hi, unsigned long long *out, char *why, size_t whycap);

#endif
