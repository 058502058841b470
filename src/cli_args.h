/* cli_args.h — the option loop the subcommands share: `--name VALUE` options and `--flag` switches.
 * defines: CliOpt, cli_parse.
 * Values point into argv (borrowed). Errors name the subcommand: unknown argument, missing value. */
#ifndef SD_CLI_ARGS_H
#define SD_CLI_ARGS_H
#include <stdbool.h>

typedef struct {
    const char *name;      /* "--model" */
    const char **value;    /* receives the next argument; NULL for a switch */
    bool *flag;            /* set to true by a switch (value == NULL) */
} CliOpt;

/* Parses argv[1..argc) (argv[0] is the subcommand). Prints usage and returns true on --help / -h (the command
 * then returns 0); dies on anything else it does not know. */
bool cli_parse(const char *cmd, const char *usage, int argc, char **argv, const CliOpt *opts, int nopts);
#endif
