/* hub_cache.h — Hugging Face Hub models and datasets by name, from the local cache, and a dataset directory's
 * split files. Nothing is downloaded: `huggingface-cli download ORG/NAME` (or from_pretrained, snapshot_download)
 * fills the cache on a machine with network, as the reference trainer's users already have it.
 * defines: HubKind, hub_is_repo_id, hub_cache_dir, hub_datasets_cache_dir, hub_snapshot, hub_resolve, hub_split_files, hub_is_split_dir.
 *
 * The cache (huggingface_hub's layout): DIR/models--ORG--NAME/{refs/REVISION (a commit hash), snapshots/HASH/...}
 * (datasets--ORG--NAME for datasets), DIR = $HF_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 * Every returned string is allocated here and freed by the caller (free). Errors die naming `where` (a config's
 * FILE:LINE: key, or a command-line option), what was looked for and where. */
#ifndef SD_HUB_CACHE_H
#define SD_HUB_CACHE_H
#include <stdbool.h>

typedef enum { HUB_MODEL, HUB_DATASET } HubKind;

/* s has the form ORG/NAME of a Hub repository, optionally @REVISION (a branch, tag or commit hash) */
bool hub_is_repo_id(const char *s);

/* the cache directory the environment names (see above) */
char *hub_cache_dir(void);

/* the datasets library's own cache: $HF_DATASETS_CACHE, else $HF_HOME/datasets, else
 * $XDG_CACHE_HOME/huggingface/datasets, else ~/.cache/huggingface/datasets. A dataset the Hub cache lacks is looked
 * up there as load_dataset prepared it (ORG___NAME/CONFIG/VERSION/HASH/, the most recently modified HASH directory,
 * as datasets' offline reload picks it). */
char *hub_datasets_cache_dir(void);

/* the snapshot directory of repository `id` (ORG/NAME[@REVISION], revision main by default) in the cache; dies when
 * the cache does not have it (naming the directory looked for and the command that fetches it) */
char *hub_snapshot(const char *id, HubKind kind, const char *where);

/* a model, tokenizer or dataset named as a path (relative to base_dir, NULL: the working directory) or, where no
 * such path exists and `value` is a repository id, the cache's snapshot of it. A path that does not exist and is no
 * repository id comes back joined, for the caller's own error. */
char *hub_resolve(const char *base_dir, const char *value, HubKind kind, const char *where);

/* whether dir is one split of a dataset as datasets' save_to_disk writes it (state.json) */
bool hub_is_split_dir(const char *dir);

/* The data files of split `split` of a dataset directory (a Hub snapshot, a `huggingface-cli download --local-dir`
 * copy, or a save_to_disk DatasetDict), as datasets' load_dataset(DIR, split=SPLIT) finds them, in name order:
 *  - a DatasetDict (dataset_dict.json): the split's directory;
 *  - datasets' cache of a prepared dataset (dataset_info.json's splits, NAME-SPLIT.arrow or
 *    NAME-SPLIT-NNNNN-of-NNNNN.arrow beside it): those files;
 *  - the default config's data_files in README.md's YAML header (`configs:`), when it has them;
 *  - Hub-converted shards, data/SPLIT-NNNNN-of-NNNNN.*: when any file has this form, the splits are their names;
 *  - else the file or directory names holding the split's keyword (train|training, validation|valid|dev|val,
 *    test|testing|eval|evaluation; another split name is its own keyword) between separators (-._ digits, space).
 * Data files are .parquet, .arrow, .jsonl and .json. Returns an array of *n paths (free each, then the array); dies
 * listing the splits the directory has when it has no such split. */
char **hub_split_files(const char *dir, const char *split, int *n, const char *where);
#endif
