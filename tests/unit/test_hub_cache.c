/* test_hub_cache.c — Hub names from a local Hugging Face cache laid out as huggingface_hub lays it out (refs,
 * snapshots of links to blobs), and the split files of dataset directories by datasets' rules; the config keys
 * that take them (model.init, data.tokenizer, data.train / data.eval with data.*_split). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"
#include "hub_cache.h"
#include "test_util.h"

static char root[256];

/* root/rel as a file with text (its directories made) */
static void put(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* a snapshot file as the cache keeps it: a link to blobs/NAME holding text */
static void put_linked(const char *repo, const char *hash, const char *rel, const char *blob, const char *text) {
    char b[512], link[1024], target[1024];
    snprintf(b, sizeof b, "%s/blobs/%s", repo, blob);
    put(b, text);
    snprintf(link, sizeof link, "%s/%s/snapshots/%s/%s", root, repo, hash, rel);
    put(link + strlen(root) + 1, ""); /* makes the directories; replaced by the link */
    unlink(link);
    int depth = 2;
    for (const char *p = rel; (p = strchr(p, '/')); p++) depth++;
    target[0] = 0;
    for (int i = 0; i < depth; i++) strcat(target, "../");
    strcat(target, "blobs/");
    strcat(target, blob);
    if (symlink(target, link) != 0) {
        perror(link);
        exit(1);
    }
}

static char *at(const char *rel) { return sd_path_join(root, rel); }

/* the relative names of files, joined by " " (for comparisons) */
static char *names(char **files, int n, const char *dir) {
    static char buf[4096];
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *f = files[i];
        if (!strncmp(f, dir, strlen(dir))) f += strlen(dir) + 1;
        strcat(buf, i ? " " : "");
        strcat(buf, f);
    }
    return buf;
}

static void check_split(const char *dir_rel, const char *split, const char *want) {
    char *dir = at(dir_rel);
    int n = 0;
    char **files = hub_split_files(dir, split, &n, "test");
    const char *got = names(files, n, dir);
    CHECK(!strcmp(got, want), "%s split %s: '%s', want '%s'", dir_rel, split, got, want);
    for (int i = 0; i < n; i++) free(files[i]);
    free(files);
    free(dir);
}

static const char *die_dir, *die_split, *die_id;
static void split_it(void *arg) {
    (void)arg;
    char *dir = at(die_dir);
    int n;
    hub_split_files(dir, die_split, &n, "test");
}
static void snapshot_it(void *arg) { free(hub_snapshot(die_id, arg ? HUB_DATASET : HUB_MODEL, "test")); }
static const char *die_yaml;
static void load_it(void *arg) {
    (void)arg;
    config_free(config_load_string(die_yaml, "t.yaml", root));
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/hub_cacheXXXXXX");
    if (!mkdtemp(root)) return 1;

    /* ids */
    const char *yes[] = {"a/b", "meta-llama/Meta-Llama-3-8B-Instruct", "org/n.a_m-e", "a/b@main", "a/b@refs/pr/1",
                         "a/b@0123456789abcdef0123456789abcdef01234567"};
    const char *no[] = {"a", "/a/b", "a/b/c", "./x", "../a", "a/", "/b", "a/b@", "a b/c", "a/b*", "a/.b", "-a/b",
                        "a/b@x/../../y"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) CHECK(hub_is_repo_id(yes[i]), "'%s' is an id", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) CHECK(!hub_is_repo_id(no[i]), "'%s' is no id", no[i]);

    /* the cache directory: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then HOME */
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    char *d = hub_cache_dir();
    CHECK(!strcmp(d, "/home/u/.cache/huggingface/hub"), "HOME: %s", d);
    free(d);
    setenv("XDG_CACHE_HOME", "/x", 1);
    d = hub_cache_dir();
    CHECK(!strcmp(d, "/x/huggingface/hub"), "XDG: %s", d);
    free(d);
    setenv("HF_HOME", "/h", 1);
    d = hub_cache_dir();
    CHECK(!strcmp(d, "/h/hub"), "HF_HOME: %s", d);
    free(d);
    setenv("HF_HUB_CACHE", root, 1);
    d = hub_cache_dir();
    CHECK(!strcmp(d, root), "HF_HUB_CACHE: %s", d);
    free(d);

    /* a model: main, a branch, a commit hash; links into blobs */
    const char *h1 = "1111111111111111111111111111111111111111", *h2 = "2222222222222222222222222222222222222222";
    put("models--org--tiny/refs/main", "1111111111111111111111111111111111111111\n");
    put("models--org--tiny/refs/v2", h2);
    put_linked("models--org--tiny", h1, "config.json", "c1", "{\"main\": 1}");
    put_linked("models--org--tiny", h1, "tokenizer.json", "t1", "{}");
    put_linked("models--org--tiny", h2, "config.json", "c2", "{\"v2\": 1}");
    char *snap = hub_snapshot("org/tiny", HUB_MODEL, "test"), *want = at("models--org--tiny/snapshots/1111111111111111111111111111111111111111");
    CHECK(!strcmp(snap, want), "main: %s", snap);
    char *cfg = sd_path_join(snap, "config.json"), *text = sd_read_file(cfg, NULL);
    CHECK(!strcmp(text, "{\"main\": 1}"), "the link reads its blob: %s", text);
    free(text);
    free(cfg);
    free(snap);
    free(want);
    snap = hub_snapshot("org/tiny@v2", HUB_MODEL, "test");
    CHECK(strstr(snap, h2) != NULL, "@v2: %s", snap);
    free(snap);
    snap = hub_snapshot("org/tiny@2222222222222222222222222222222222222222", HUB_MODEL, "test");
    CHECK(strstr(snap, h2) != NULL, "@hash: %s", snap);
    free(snap);
    /* no refs/main: the one snapshot (a download by commit hash) */
    put_linked("models--org--byhash", h1, "config.json", "c", "{}");
    snap = hub_snapshot("org/byhash", HUB_MODEL, "test");
    CHECK(strstr(snap, "models--org--byhash/snapshots/1111") != NULL, "single snapshot: %s", snap);
    free(snap);
    die_id = "org/missing";
    CHECK(expect_die(snapshot_it, NULL, "'org/missing' is not a path, nor a model in the Hugging Face cache"),
          "a model not in the cache");
    CHECK(strstr(t_die_msg, "huggingface-cli download org/missing`") && strstr(t_die_msg, "models--org--missing"),
          "names the directory and the command: %s", t_die_msg);
    CHECK(expect_die(snapshot_it, (void *)1, "huggingface-cli download org/missing --repo-type dataset"),
          "a dataset not in the cache names --repo-type dataset");
    die_id = "org/tiny@v9";
    CHECK(expect_die(snapshot_it, NULL, "has no revision 'v9'"), "a revision not in the cache");
    CHECK(strstr(t_die_msg, h1) && strstr(t_die_msg, h2), "lists the snapshots: %s", t_die_msg);

    /* resolve: a path that exists wins; a missing non-id comes back as the path */
    char *r = hub_resolve(root, "models--org--tiny", HUB_MODEL, "test");
    want = at("models--org--tiny");
    CHECK(!strcmp(r, want), "existing path: %s", r);
    free(r);
    free(want);
    r = hub_resolve("/base", "no-such-dir", HUB_MODEL, "test");
    CHECK(!strcmp(r, "/base/no-such-dir"), "missing non-id: %s", r);
    free(r);
    r = hub_resolve("/base", "org/tiny", HUB_MODEL, "test");
    CHECK(strstr(r, "models--org--tiny/snapshots/1111") != NULL, "id: %s", r);
    free(r);

    /* splits: Hub-converted shards (their names are the splits) */
    put("ds1/data/train_prefs-00000-of-00001.parquet", "x");
    put("ds1/data/test_prefs-00001-of-00002.parquet", "x");
    put("ds1/data/test_prefs-00000-of-00002.parquet", "x");
    put("ds1/data/train_sft-00000-of-00001.parquet", "x");
    put("ds1/README.md", "# no YAML header\n");
    put("ds1/.gitattributes", "x");
    check_split("ds1", "train_prefs", "data/train_prefs-00000-of-00001.parquet");
    check_split("ds1", "test_prefs", "data/test_prefs-00000-of-00002.parquet data/test_prefs-00001-of-00002.parquet");
    die_dir = "ds1", die_split = "train";
    CHECK(expect_die(split_it, NULL, "has no data files of split 'train'"), "train is not train_prefs");
    CHECK(strstr(t_die_msg, "train_prefs, test_prefs, train_sft") || strstr(t_die_msg, "test_prefs, train_prefs"),
          "lists the splits: %s", t_die_msg);

    /* README.md's configs: the default config's patterns (a list and a single pattern) */
    put("ds2/README.md", "---\nlicense: mit\nconfigs:\n- config_name: other\n  data_files: other/*.jsonl\n"
                         "- config_name: default\n  default: true\n  data_files:\n  - split: train\n"
                         "    path:\n    - part-b/*.jsonl\n    - part-a/*.jsonl\n  - split: eval\n    path: ev.json\n---\n# card\n");
    put("ds2/part-a/1.jsonl", "x");
    put("ds2/part-a/0.jsonl", "x");
    put("ds2/part-b/0.jsonl", "x");
    put("ds2/ev.json", "x");
    put("ds2/train.jsonl", "x"); /* a keyword name the configs do not name: not taken */
    check_split("ds2", "train", "part-b/0.jsonl part-a/0.jsonl part-a/1.jsonl");
    check_split("ds2", "eval", "ev.json");
    die_dir = "ds2", die_split = "test";
    CHECK(expect_die(split_it, NULL, "by README.md's configs; splits found: train, eval"), "configs' splits");
    put("ds3/README.md", "---\nconfigs:\n- config_name: a\n  data_files: a.jsonl\n- config_name: b\n  data_files: b.jsonl\n---\n");
    die_dir = "ds3", die_split = "train";
    CHECK(expect_die(split_it, NULL, "the dataset has configs a, b and none is the default"), "no default config");
    /* the config named "default" without `default: true`, after another */
    put("ds7/README.md", "---\nconfigs:\n- config_name: extra\n  data_files: x/*.jsonl\n- config_name: default\n"
                         "  data_files: d/*.jsonl\n---\n");
    put("ds7/x/0.jsonl", "x");
    put("ds7/d/0.jsonl", "x");
    check_split("ds7", "train", "d/0.jsonl");
    put("ds3b/README.md", "---\nconfigs:\n- config_name: only\n  data_files: d/*.parquet\n---\n");
    put("ds3b/d/x.parquet", "x");
    check_split("ds3b", "train", "d/x.parquet");

    /* keywords: directories first, then file names, with separators around the keyword */
    put("ds4/train.jsonl", "x");
    put("ds4/pretrain.jsonl", "x"); /* "train" inside a word: not the split */
    put("ds4/my-test.1.parquet", "x");
    put("ds4/eval_set.arrow", "x");
    put("ds4/dev.json", "x");
    put("ds4/notes.txt", "x");
    put("ds4/dataset_info.json", "x");
    check_split("ds4", "train", "train.jsonl");
    check_split("ds4", "test", "eval_set.arrow my-test.1.parquet");
    check_split("ds4", "validation", "dev.json");
    put("ds5/training/a.parquet", "x");
    put("ds5/training/b.parquet", "x");
    put("ds5/train-extra.jsonl", "x");
    check_split("ds5", "train", "training/a.parquet training/b.parquet");
    put("ds6/my_split-0.jsonl", "x");
    check_split("ds6", "my_split", "my_split-0.jsonl");
    die_dir = "ds4", die_split = "nope";
    CHECK(expect_die(split_it, NULL, "has no data files of split 'nope'"), "an unknown split");
    CHECK(strstr(t_die_msg, "splits found: train, validation, test"), "lists the standard splits: %s", t_die_msg);

    /* a save_to_disk DatasetDict: the split's directory */
    put("dd/dataset_dict.json", "{\"splits\": [\"train_prefs\", \"test_prefs\"]}");
    put("dd/train_prefs/state.json", "{}");
    put("dd/test_prefs/state.json", "{}");
    check_split("dd", "train_prefs", "train_prefs");
    die_dir = "dd", die_split = "train";
    CHECK(expect_die(split_it, NULL, "(a datasets DatasetDict) has no split 'train'"), "a DatasetDict without it");
    CHECK(strstr(t_die_msg, "train_prefs") && strstr(t_die_msg, "test_prefs"), "lists: %s", t_die_msg);

    /* datasets' own cache (load_dataset's prepared Arrow files) where the Hub cache lacks the dataset: the newest
     * HASH directory, the name snake-cased as newer datasets versions write it; map()'s cache-*.arrow are no split */
    char *dsc = at("dscache");
    setenv("HF_DATASETS_CACHE", dsc, 1);
    d = hub_datasets_cache_dir();
    CHECK(!strcmp(d, dsc), "HF_DATASETS_CACHE: %s", d);
    free(d);
    unsetenv("HF_DATASETS_CACHE");
    d = hub_datasets_cache_dir();
    CHECK(!strcmp(d, "/h/datasets"), "HF_HOME/datasets: %s", d);
    free(d);
    setenv("HF_DATASETS_CACHE", dsc, 1);
    const char *info = "{\"dataset_name\": \"my_data\", \"splits\": {\"train\": {\"name\": \"train\"}, "
                       "\"test\": {\"name\": \"test\", \"shard_lengths\": [2, 1]}}}";
    const char *olds[] = {"aaa", "old", "zzz", "nex"}; /* older than "new", around it in name and directory order */
    for (int i = 0; i < 4; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "dscache/Org___my_data/default/0.0.0/%s/dataset_info.json", olds[i]);
        put(rel, info);
        snprintf(rel, sizeof rel, "dscache/Org___my_data/default/0.0.0/%s/my_data-train.arrow", olds[i]);
        put(rel, "old");
    }
    put("dscache/Org___my_data/default/0.0.0/new/dataset_info.json", info);
    put("dscache/Org___my_data/default/0.0.0/new/my_data-train.arrow", "x");
    put("dscache/Org___my_data/default/0.0.0/new/my_data-test-00001-of-00002.arrow", "x");
    put("dscache/Org___my_data/default/0.0.0/new/my_data-test-00000-of-00002.arrow", "x");
    put("dscache/Org___my_data/default/0.0.0/new/cache-0123abcd.arrow", "x");
    for (int i = 0; i < 4; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "dscache/Org___my_data/default/0.0.0/%s", olds[i]);
        char *old = at(rel);
        struct timespec past[2] = {{1000000 + i, 0}, {1000000 + i, 0}};
        CHECK(utimensat(AT_FDCWD, old, past, 0) == 0, "set an old time");
        free(old);
    }
    snap = hub_snapshot("Org/MyData", HUB_DATASET, "test");
    CHECK(strstr(snap, "dscache/Org___my_data/default/0.0.0/new") != NULL, "datasets' cache, newest: %s", snap);
    free(snap);
    check_split("dscache/Org___my_data/default/0.0.0/new", "train", "my_data-train.arrow");
    check_split("dscache/Org___my_data/default/0.0.0/new", "test",
                "my_data-test-00000-of-00002.arrow my_data-test-00001-of-00002.arrow");
    die_dir = "dscache/Org___my_data/default/0.0.0/new", die_split = "validation";
    CHECK(expect_die(split_it, NULL, "by dataset_info.json's splits (datasets' cache); splits found: train, test"),
          "a split datasets' cache lacks");
    put("dscache/org___plain/default/0.0.0/h/dataset_info.json", "{\"splits\": {\"train_prefs\": {}}}");
    put("dscache/org___plain/default/0.0.0/h/plain-train_prefs.arrow", "x");
    snap = hub_snapshot("org/plain", HUB_DATASET, "test");
    CHECK(strstr(snap, "dscache/org___plain/default/0.0.0/h") != NULL, "the name as written: %s", snap);
    free(snap);
    check_split("dscache/org___plain/default/0.0.0/h", "train_prefs", "plain-train_prefs.arrow");
    die_id = "org/plain@v1";
    CHECK(expect_die(snapshot_it, (void *)1, "(not searched for a revision)"), "datasets' cache has no revisions");
    die_id = "org/absent";
    CHECK(expect_die(snapshot_it, (void *)1, "nor datasets' cache of it in"), "a dataset in neither cache");
    /* a Hub snapshot's own dataset_info.json (no Arrow files of its splits) is not datasets' cache */
    put("ds1/dataset_info.json", "{\"splits\": {\"train_prefs\": {}}}");
    check_split("ds1", "train_prefs", "data/train_prefs-00000-of-00001.parquet");
    free(dsc);

    /* the config: model.init and data.train by Hub name, data.train_split; data.eval as a mixture; data.tokenizer
     * defaults to the model's directory (it has tokenizer.json) */
    put("datasets--org--uf/refs/main", h1);
    put_linked("datasets--org--uf", h1, "data/train_prefs-00000-of-00001.parquet", "p0", "x");
    put_linked("datasets--org--uf", h1, "data/test_prefs-00000-of-00002.parquet", "q0", "x");
    put_linked("datasets--org--uf", h1, "data/test_prefs-00001-of-00002.parquet", "q1", "x");
    Config *c = config_load_string("model: {init: org/tiny}\n"
                                   "data: {train: org/uf, train_split: train_prefs, eval: {org/uf: 1.0, ds4/train.jsonl: 0.5}, "
                                   "eval_split: test_prefs}\n", "t.yaml", root);
    CHECK(strstr(c->model_init, "models--org--tiny/snapshots/1111") != NULL, "model.init: %s", c->model_init);
    CHECK(c->data_tokenizer && !strcmp(c->data_tokenizer, c->model_init), "data.tokenizer defaults to the model's: %s",
          c->data_tokenizer ? c->data_tokenizer : "(none)");
    CHECK(c->n_train_mix == 1 && c->train_mix[0].n_files == 1 && !strcmp(c->train_mix[0].path, "org/uf split train_prefs") &&
              strstr(c->train_mix[0].files[0], "snapshots/1111111111111111111111111111111111111111/data/train_prefs-00000"),
          "data.train: %d parts, %s", c->n_train_mix, c->n_train_mix ? c->train_mix[0].path : "");
    CHECK(!strcmp(c->data_train, "org/uf split train_prefs"), "shown: %s", c->data_train);
    CHECK(c->n_eval_mix == 2 && c->eval_mix[0].n_files == 2 && c->eval_mix[1].fraction == 0.5 &&
              strstr(c->eval_mix[0].files[1], "test_prefs-00001-of-00002") && c->eval_mix[1].n_files == 0,
          "data.eval: %d parts", c->n_eval_mix);
    config_free(c);
    /* a local dataset directory (a --local-dir download) with the default split train; data.tokenizer given */
    c = config_load_string("model: {init: org/tiny@v2}\ndata: {train: ds4, tokenizer: org/tiny}\n", "t.yaml", root);
    CHECK(strstr(c->model_init, h2) != NULL, "model.init @v2: %s", c->model_init);
    CHECK(strstr(c->data_tokenizer, h1) != NULL, "data.tokenizer by name: %s", c->data_tokenizer);
    CHECK(c->n_train_mix == 1 && c->train_mix[0].n_files == 1 && strstr(c->train_mix[0].files[0], "ds4/train.jsonl"),
          "a local dataset directory's train split");
    config_free(c);
    /* errors name the file, line and key */
    die_yaml = "model: {init: org/nothere}\ndata: {train: ds4}\n";
    CHECK(expect_die(load_it, NULL, "key 'model.init': 'org/nothere' is not a path (no "), "model.init not in the cache");
    CHECK(strstr(t_die_msg, "/org/nothere), nor a model in the Hugging Face cache"),
          "names the path it tried (against the config's directory): %s", t_die_msg);
    CHECK(strstr(t_die_msg, "t.yaml:1:"), "names the line: %s", t_die_msg);
    die_yaml = "model: {init: org/tiny}\ndata:\n  train: org/uf\n";
    CHECK(expect_die(load_it, NULL, "t.yaml:3: key 'data.train' (split 'train', data.train_split)"),
          "a split the dataset lacks");
    CHECK(strstr(t_die_msg, "splits found: train_prefs, test_prefs") || strstr(t_die_msg, "test_prefs, train_prefs"),
          "lists the dataset's splits: %s", t_die_msg);
    die_yaml = "model: {init: org/tiny}\ndata: {train: other/uf}\n";
    CHECK(expect_die(load_it, NULL, "/other/uf), nor a dataset in the Hugging Face cache"),
          "a dataset not in the cache");
    /* a file-like name that does not exist stays a path (its error comes when it is read), not a Hub lookup */
    c = config_load_string("model: {init: org/tiny}\ndata: {train: data/pairs.jsonl}\n", "t.yaml", root);
    want = at("data/pairs.jsonl");
    CHECK(!strcmp(c->data_train, want) && !c->train_mix, "a missing .jsonl: %s", c->data_train);
    free(want);
    config_free(c);

    t_remove_tree(root);
    TEST_END();
}
