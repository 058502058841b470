/* main.c — the simpo_dist command line: dispatches to the subcommands in src/cmd_*.c. */
#include <stdio.h>
#include <string.h>
#include "comm.h"
#include "commands.h"
#include "parquet.h"
#include "config.h"

static const char *USAGE =
    "simpo_dist — SimPO preference optimisation for Llama-family models (C, MPI, CUDA)\n"
    "usage:\n"
    "  simpo_dist CONFIG.yaml                 train (same as: simpo_dist run CONFIG.yaml)\n"
    "  simpo_dist score --model HF_DIR --data PAIRS.jsonl [--out FILE]\n"
    "  simpo_dist export --checkpoint DIR_OR_FILE --out HF_DIR\n"
    "  simpo_dist plan CONFIG.yaml --gpus N [--gpu-mem GiB] ...   layouts, memory and step time per rank\n"
    "  simpo_dist analyze --model HF_DIR --data PAIRS.jsonl [--ref REF_DIR] [--out DIR]   reward accuracy,\n"
    "                                         likelihood-length correlation, margins by length (SimPO paper)\n"
    "  simpo_dist plot METRICS.jsonl --out DIR   training curves as SVG\n"
    "  simpo_dist prepare CONFIG.yaml [--out FILE]   tokenize data.train once into an HDF5 dataset\n"
    "  simpo_dist tokenize --tokenizer DIR [--chat] < in.jsonl   text or messages to token ids\n"
    "  simpo_dist generate --model HF_DIR (--prompt TEXT | --prompt-ids IDS | --data PROMPTS.jsonl) ...\n"
    "                                         continue prompts (KV cache; greedy, temperature, top-p)\n"
    "  simpo_dist convert RECIPE.yaml [--processes N] [--out FILE]   a SimPO reference recipe (run_simpo.py's\n"
    "                                         YAML) as a simpo_dist config\n"
    "  simpo_dist --config-reference          every config key (docs/config.md)\n"
    "  simpo_dist --version | --help          (each subcommand also takes --help)\n"
    "Under MPI: mpirun -np N simpo_dist CONFIG.yaml\n";

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("simpo_dist %s\nbackends: cpu (fp32, OpenMP + OpenBLAS)%s\ncollectives: mpi\n"
               "data: jsonl, json arrays, parquet (%s), arrow (datasets save_to_disk), hdf5 (prepared)\n", SIMPO_VERSION,
#ifdef SIMPO_HAVE_CUDA
               ", cuda",
#else
               "",
#endif
               parquet_codecs());
        return 0;
    }
    if (!strcmp(argv[1], "--config-reference")) {
        config_print_reference();
        return 0;
    }
    /* convert only translates one YAML file into another: no MPI start-up (a third of a second) for it */
    if (!strcmp(argv[1], "convert")) return cmd_convert(argc - 1, argv + 1);
    comm_init(&argc, &argv);
    int rc;
    if (!strcmp(argv[1], "score")) rc = cmd_score(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "export")) rc = cmd_export(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "plan")) rc = cmd_plan(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "analyze")) rc = cmd_analyze(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "plot")) rc = cmd_plot(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "generate")) rc = cmd_generate(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "prepare")) rc = cmd_prepare(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "tokenize")) rc = cmd_tokenize(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "run")) rc = cmd_train(argc - 1, argv + 1);
    else rc = cmd_train(argc, argv);
    comm_finalize();
    return rc;
}
