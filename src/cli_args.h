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

/* `value` of option `opt` (NULL: none) as a local directory or a Hub name from the cache (hub_resolve): a model's
 * or tokenizer's directory; the returned path is value itself or kept until exit (the command does not free it) */
const char *cli_model_dir(const char *opt, const char *value);

/* --chat-convention's value (NULL: trl) as data.chat_convention: true for simpo_reference; dies naming cmd on
 * anything else than trl or simpo_reference */
bool cli_simpo_reference(const char *cmd, const char *convention);

/* model_dir itself where it holds a tokenizer.json (the reference trainer loads the model's own tokenizer), else
 * NULL: the default of a command's --tokenizer */
const char *cli_model_tokenizer(const char *model_dir);
#endif
