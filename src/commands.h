/* commands.h — the subcommands of the CLI (src/main.c dispatches; docs/cli.md documents).
 * defines: cmd_train, cmd_score, cmd_export, cmd_plan, cmd_analyze, cmd_plot, cmd_generate, cmd_prepare,
 * cmd_tokenize, cmd_convert. Each parses its own
 * arguments (argv[0] is the subcommand name), prints its --help, and returns the process exit code. */
#ifndef SD_COMMANDS_H
#define SD_COMMANDS_H
int cmd_train(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
#endif
