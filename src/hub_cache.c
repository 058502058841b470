/* hub_cache.c — Hub repositories from the local cache and a dataset directory's split files. See hub_cache.h. */
#define _GNU_SOURCE
#include "hub_cache.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>
#include "util.h"

static bool id_char(char c) { return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.'; }

bool hub_is_repo_id(const char *s) {
    const char *at = strchr(s, '@'), *end = at ? at : s + strlen(s), *slash = memchr(s, '/', (size_t)(end - s));
    if (!slash || slash == s || slash + 1 == end) return false;
    for (const char *p = s; p < end; p++)
        if (p != slash && !id_char(*p)) return false;
    /* no "." or ".." parts, no part starting with '-' or '.' (paths, not names) */
    if (s[0] == '.' || s[0] == '-' || slash[1] == '.' || slash[1] == '-') return false;
    if (at) {
        if (!at[1]) return false;
        for (const char *p = at + 1; *p; p++)
            if (!id_char(*p) && *p != '/') return false;
        if (strstr(at, "..")) return false;
    }
    return true;
}

/* DIR/sub of the Hugging Face home: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface */
static char *hf_home(const char *sub) {
    const char *v = getenv("HF_HOME");
    if (v && *v) return sd_path_join(v, sub);
    const char *home = getenv("HOME");
    char *base = (v = getenv("XDG_CACHE_HOME")) && *v ? sd_strdup(v) : sd_path_join(home && *home ? home : "/", ".cache");
    char *hf = sd_path_join(base, "huggingface"), *dir = sd_path_join(hf, sub);
    free(hf);
    free(base);
    return dir;
}

char *hub_cache_dir(void) {
    const char *v = getenv("HF_HUB_CACHE");
    return v && *v ? sd_strdup(v) : hf_home("hub");
}

/* a file's first line, trimmed (a ref's commit hash); NULL when it cannot be read */
static char *read_line(const char *path) {
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fclose(f);
    char *t = sd_read_file(path, &len);
    size_t n = strcspn(t, "\r\n");
    while (n && isspace((unsigned char)t[n - 1])) n--;
    t[n] = 0;
    return t;
}

static void add_name(char **names, const char *name);

/* the snapshot names of a repository directory, joined by ", " (for errors); "" when none */
static char *snapshot_names(const char *snaps, int *count) {
    char *out = sd_strdup("");
    *count = 0;
    DIR *d = opendir(snaps);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') add_name(&out, e->d_name), ++*count;
    if (d) closedir(d);
    return out;
}

/* datasets' camelcase_to_snakecase: "_" between an upper-case run and a capitalised word and after a lower-case
 * letter or digit before a capital, then lower case ("MyData" -> "my_data"); caller frees */
static char *snake_case(const char *s, size_t n) {
    char *out = sd_alloc(2 * n + 1, "name");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool up = isupper((unsigned char)s[i]);
        if (up && i > 0 && (islower((unsigned char)s[i - 1]) || isdigit((unsigned char)s[i - 1]) ||
                            (isupper((unsigned char)s[i - 1]) && i + 1 < n && islower((unsigned char)s[i + 1]))))
            out[k++] = '_';
        out[k++] = (char)tolower((unsigned char)s[i]);
    }
    out[k] = 0;
    return out;
}

char *hub_datasets_cache_dir(void) {
    const char *v = getenv("HF_DATASETS_CACHE");
    return v && *v ? sd_strdup(v) : hf_home("datasets");
}

/* the datasets library's own cache of a dataset load_dataset prepared (DIR/ORG___NAME/CONFIG/VERSION/HASH/ with
 * dataset_info.json and NAME-SPLIT*.arrow; NAME snake-cased in newer versions): the most recently modified HASH
 * directory, as datasets' offline reload picks it; NULL when there is none */
static char *datasets_cache_entry(const char *id, size_t name_len) {
    const char *slash = memchr(id, '/', name_len);
    char *dc = hub_datasets_cache_dir(), *best = NULL;
    double best_t = -1;
    for (int snake = 0; snake < 2; snake++) {
        char *last = snake ? snake_case(slash + 1, name_len - (size_t)(slash + 1 - id))
                           : sd_strdup(slash + 1);
        size_t len = (size_t)(slash - id) + strlen(last) + 4;
        char *rel = sd_alloc(len, "path");
        snprintf(rel, len, "%.*s___%s", (int)(slash - id), id, last);
        free(last);
        char *root = sd_path_join(dc, rel);
        free(rel);
        /* ROOT/CONFIG/VERSION/HASH */
        DIR *d1 = opendir(root);
        for (struct dirent *a; d1 && (a = readdir(d1));) {
            if (a->d_name[0] == '.') continue;
            char *p1 = sd_path_join(root, a->d_name);
            DIR *d2 = opendir(p1);
            for (struct dirent *b; d2 && (b = readdir(d2));) {
                if (b->d_name[0] == '.') continue;
                char *p2 = sd_path_join(p1, b->d_name);
                DIR *d3 = opendir(p2);
                for (struct dirent *c; d3 && (c = readdir(d3));) {
                    if (c->d_name[0] == '.') continue;
                    char *p3 = sd_path_join(p2, c->d_name), *info = sd_path_join(p3, "dataset_info.json");
                    struct stat st;
                    if (sd_file_exists(info) && stat(p3, &st) == 0 && S_ISDIR(st.st_mode)) {
                        double t = (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
                        if (t > best_t) {
                            free(best);
                            best = sd_strdup(p3);
                            best_t = t;
                        }
                    }
                    free(info);
                    free(p3);
                }
                if (d3) closedir(d3);
                free(p2);
            }
            if (d2) closedir(d2);
            free(p1);
        }
        if (d1) closedir(d1);
        free(root);
        if (best) break;
    }
    free(dc);
    return best;
}

/* hub_snapshot; tried: the path the name was looked for first (named in the error), or NULL */
static char *snapshot(const char *id, HubKind kind, const char *where, const char *tried) {
    const char *at = strchr(id, '@');
    size_t name_len = at ? (size_t)(at - id) : strlen(id);
    const char *rev = at ? at + 1 : "main", *what = kind == HUB_MODEL ? "model" : "dataset";
    /* models--ORG--NAME: the id's '/' as "--" */
    char *repo_name = sd_alloc(name_len + 16, "path");
    int k = sprintf(repo_name, "%ss--", what);
    for (size_t i = 0; i < name_len; i++) {
        if (id[i] == '/') k += sprintf(repo_name + k, "--");
        else repo_name[k++] = id[i];
    }
    repo_name[k] = 0;
    char *cache = hub_cache_dir(), *repo = sd_path_join(cache, repo_name);
    free(repo_name);
    if (!sd_dir_exists(repo)) {
        char *prepared = kind == HUB_DATASET && !at ? datasets_cache_entry(id, name_len) : NULL;
        if (prepared) {
            free(repo);
            free(cache);
            return prepared;
        }
        char *dc = hub_datasets_cache_dir();
        sd_die(where, "'%s' is not a path%s%s%s, nor a %s in the Hugging Face cache (no %s%s%s%s; %s): nothing is "
                      "downloaded at run time, fetch it first with `huggingface-cli download %.*s%s%s`", id,
               tried ? " (no " : "", tried ? tried : "", tried ? ")" : "", what, repo,
               kind == HUB_DATASET ? ", nor datasets' cache of it in " : "", kind == HUB_DATASET ? dc : "",
               kind == HUB_DATASET && at ? " (not searched for a revision)" : "",
               kind == HUB_DATASET ? "HF_HUB_CACHE, HF_DATASETS_CACHE or HF_HOME name other caches"
                                   : "HF_HUB_CACHE or HF_HOME name another cache", (int)name_len, id,
               kind == HUB_DATASET ? " --repo-type dataset" : "", at ? " --revision REV" : "");
    }
    char *refs = sd_path_join(repo, "refs"), *ref = sd_path_join(refs, rev), *snaps = sd_path_join(repo, "snapshots");
    char *hash = read_line(ref), *snap = NULL;
    if (hash && *hash) snap = sd_path_join(snaps, hash);
    else {
        char *direct = sd_path_join(snaps, rev); /* a commit hash given as the revision */
        if (sd_dir_exists(direct)) snap = direct;
        else free(direct);
    }
    if (!snap && !at) { /* fetched by commit hash alone: no refs/main, the one snapshot there is */
        int count = 0;
        char *names = snapshot_names(snaps, &count);
        if (count == 1) snap = sd_path_join(snaps, names);
        free(names);
    }
    if (!snap || !sd_dir_exists(snap)) {
        int count = 0;
        char *names = snapshot_names(snaps, &count);
        sd_die(where, "%s '%s': the Hugging Face cache (%s) has no revision '%s' (%s%s; snapshots: %s)", what, id,
               repo, rev, hash ? "refs names the missing snapshot " : "no refs/", hash ? hash : rev,
               count ? names : "none");
    }
    free(hash);
    free(snaps);
    free(ref);
    free(refs);
    free(repo);
    free(cache);
    return snap;
}

char *hub_snapshot(const char *id, HubKind kind, const char *where) { return snapshot(id, kind, where, NULL); }

char *hub_resolve(const char *base_dir, const char *value, HubKind kind, const char *where) {
    char *path = base_dir ? sd_path_join(base_dir, value) : sd_strdup(value);
    struct stat st;
    if (stat(path, &st) == 0 || value[0] == '/' || !hub_is_repo_id(value)) return path;
    sd_cleanup_push(free, path);
    char *snap = snapshot(value, kind, where, strcmp(path, value) ? path : NULL);
    sd_cleanup_pop();
    free(path);
    return snap;
}

bool hub_is_split_dir(const char *dir) {
    char *p = sd_path_join(dir, "state.json");
    bool yes = sd_file_exists(p);
    free(p);
    return yes;
}

/* ---- a directory's files ---- */

typedef struct {
    char **rel;    /* paths relative to the directory, '/'-separated */
    int n, cap;
    long visited;  /* directory entries looked at, against HUB_MAX_ENTRIES */
} FileList;

/* A dataset's repository holds at most thousands of files; a directory with more entries than this (a home
 * directory or / named by mistake) is refused rather than walked for minutes */
#define HUB_MAX_ENTRIES 100000

static void list_add(FileList *l, const char *rel) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->rel = sd_realloc(l->rel, sd_mul_size((size_t)l->cap, sizeof *l->rel, "files"), "files");
    }
    l->rel[l->n++] = sd_strdup(rel);
}

/* every regular file under root/rel (symlinks followed: a snapshot's files are links to blobs), hidden names
 * (.git, .cache, .gitattributes) skipped; depth-limited against link cycles */
static void walk(const char *root, const char *rel, FileList *l, int depth) {
    char *dir = *rel ? sd_path_join(root, rel) : sd_strdup(root);
    DIR *d = depth < 16 ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        return;
    }
    for (struct dirent *e; l->visited <= HUB_MAX_ENTRIES && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        l->visited++;
        char *r = *rel ? sd_path_join(rel, e->d_name) : sd_strdup(e->d_name), *full = sd_path_join(root, r);
        struct stat st;
        if (stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode)) walk(root, r, l, depth + 1);
            else if (S_ISREG(st.st_mode)) list_add(l, r);
        }
        free(full);
        free(r);
    }
    closedir(d);
    free(dir);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_free(FileList *l) {
    for (int i = 0; i < l->n; i++) free(l->rel[i]);
    free(l->rel);
}

static bool is_data_file(const char *rel) {
    static const char *ext[] = {".parquet", ".arrow", ".jsonl", ".json"};
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    if (!strcmp(base, "dataset_info.json") || !strcmp(base, "state.json") || !strcmp(base, "dataset_dict.json") ||
        !strcmp(base, "dataset_infos.json"))
        return false;
    size_t n = strlen(rel);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (n > strlen(ext[i]) && !strcasecmp(rel + n - strlen(ext[i]), ext[i])) return true;
    return false;
}

/* ---- the split rules ---- */

/* Hub-converted shards: data/SPLIT-NNNNN-of-NNNNN.* ; the split's name into name (len < cap), or false */
static bool shard_split(const char *rel, char *name, size_t cap) {
    if (strncmp(rel, "data/", 5)) return false;
    const char *b = rel + 5, *of = strstr(b, "-of-");
    if (strchr(b, '/') || !of || of - b < 7) return false;
    const char *num = of - 5;
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)num[i]) || !isdigit((unsigned char)of[4 + i])) return false;
    if (num[-1] != '-' || (size_t)(num - 1 - b) >= cap || num - 1 == b) return false;
    memcpy(name, b, (size_t)(num - 1 - b));
    name[num - 1 - b] = 0;
    return true;
}

static bool sep_char(char c) { return c == '-' || c == '.' || c == '_' || c == ' ' || isdigit((unsigned char)c); }

/* whether a path part (a directory or file name) holds keyword kw between separators: kw alone (a directory), kw
 * then a separator at its start, or a separator, kw and a separator (or the end, for a directory) inside */
static bool part_has_keyword(const char *part, size_t len, const char *kw, bool is_dir) {
    size_t k = strlen(kw);
    for (size_t i = 0; i + k <= len; i++) {
        if (strncasecmp(part + i, kw, k)) continue;
        bool before = i == 0 || sep_char(part[i - 1]);
        bool after = i + k == len ? is_dir : sep_char(part[i + k]);
        if (before && after) return true;
    }
    return false;
}

/* 1: a directory of rel holds the keyword, 2: its file name does, 0: neither */
static int keyword_place(const char *rel, const char *kw) {
    const char *p = rel;
    for (const char *slash; (slash = strchr(p, '/')); p = slash + 1)
        if (part_has_keyword(p, (size_t)(slash - p), kw, true)) return 1;
    return part_has_keyword(p, strlen(p), kw, false) ? 2 : 0;
}

/* the keywords of a split: datasets' synonyms for its three standard names, else the name itself */
static const char *const *split_keywords(const char *split) {
    static const char *const train[] = {"train", "training", NULL};
    static const char *const val[] = {"validation", "valid", "dev", "val", NULL};
    static const char *const test[] = {"test", "testing", "eval", "evaluation", NULL};
    if (!strcmp(split, "train")) return train;
    if (!strcmp(split, "validation")) return val;
    if (!strcmp(split, "test")) return test;
    return NULL;
}

typedef struct {
    char **path;
    int n;
} Found;

static void found_add(Found *f, const char *dir, const char *rel) {
    f->path = sd_realloc(f->path, sd_mul_size((size_t)f->n + 1, sizeof *f->path, "files"), "files");
    f->path[f->n++] = sd_path_join(dir, rel);
}

/* append name to a ", "-joined list unless it is there */
static void add_name(char **names, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = *names; *p;) {
        size_t len = strcspn(p, ",");
        if (len == nl && !strncmp(p, name, nl)) return;
        p += len;
        while (*p == ',' || *p == ' ') p++;
    }
    size_t len = strlen(*names) + nl + 3;
    char *grown = sd_alloc(len, "names");
    snprintf(grown, len, "%s%s%s", *names, **names ? ", " : "", name);
    free(*names);
    *names = grown;
}

/* README.md's YAML header (between "---" lines), parsed; false when there is none */
static bool readme_header(const char *dir, yaml_document_t *doc) {
    char *p = sd_path_join(dir, "README.md");
    bool ok = false;
    if (sd_file_exists(p)) {
        size_t len = 0;
        char *t = sd_read_file(p, &len);
        char *end = !strncmp(t, "---\n", 4) || !strncmp(t, "---\r\n", 5) ? strstr(t + 3, "\n---") : NULL;
        if (end) {
            yaml_parser_t parser;
            yaml_parser_initialize(&parser);
            yaml_parser_set_input_string(&parser, (const unsigned char *)t, (size_t)(end - t) + 1);
            /* skip the opening "---" line: it starts the document anyway */
            ok = yaml_parser_load(&parser, doc) && yaml_document_get_root_node(doc);
            if (!ok) yaml_document_delete(doc);
            yaml_parser_delete(&parser);
        }
        free(t);
    }
    free(p);
    return ok;
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *m, const char *key) {
    if (!m || m->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top; q++) {
        yaml_node_t *k = yaml_document_get_node(doc, q->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, q->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* the files of the default config's patterns for split (README.md's `configs:`) into *f, the config's splits into
 * *names; false when the header has no configs. More than one config and none the default: an error. */
static bool readme_split(const char *dir, const FileList *l, const char *split, Found *f, char **names,
                         const char *where) {
    yaml_document_t doc;
    if (!readme_header(dir, &doc)) return false;
    yaml_node_t *configs = map_get(&doc, yaml_document_get_root_node(&doc), "configs"), *cfg = NULL;
    int n_cfg = configs && configs->type == YAML_SEQUENCE_NODE
                    ? (int)(configs->data.sequence.items.top - configs->data.sequence.items.start) : 0;
    for (int i = 0; i < n_cfg && !cfg; i++) {
        yaml_node_t *c = yaml_document_get_node(&doc, configs->data.sequence.items.start[i]);
        const char *name = scalar(map_get(&doc, c, "config_name")), *dflt = scalar(map_get(&doc, c, "default"));
        if ((name && !strcmp(name, "default")) || (dflt && !strcasecmp(dflt, "true")) || n_cfg == 1) cfg = c;
    }
    if (n_cfg > 1 && !cfg) {
        char *all = sd_strdup("");
        for (int i = 0; i < n_cfg; i++) {
            const char *name = scalar(map_get(&doc, yaml_document_get_node(&doc, configs->data.sequence.items.start[i]),
                                              "config_name"));
            add_name(&all, name ? name : "?");
        }
        sd_die(where, "%s: the dataset has configs %s and none is the default: name the config's files (a glob "
                      "pattern of its data files under %s)", dir, all, dir);
    }
    yaml_node_t *files = cfg ? map_get(&doc, cfg, "data_files") : NULL;
    if (!files) {
        yaml_document_delete(&doc);
        return false;
    }
    /* data_files: a pattern or list of patterns (the train split), or a list of {split, path: pattern(s)} */
    int n_items = files->type == YAML_SEQUENCE_NODE
                      ? (int)(files->data.sequence.items.top - files->data.sequence.items.start) : 1;
    for (int i = 0; i < n_items; i++) {
        yaml_node_t *it = files->type == YAML_SEQUENCE_NODE
                              ? yaml_document_get_node(&doc, files->data.sequence.items.start[i]) : files;
        const char *s = it->type == YAML_MAPPING_NODE ? scalar(map_get(&doc, it, "split")) : "train";
        yaml_node_t *pats = it->type == YAML_MAPPING_NODE ? map_get(&doc, it, "path") : it;
        if (!s || !pats) continue;
        add_name(names, s);
        if (strcmp(s, split)) continue;
        int n_pat = pats->type == YAML_SEQUENCE_NODE
                        ? (int)(pats->data.sequence.items.top - pats->data.sequence.items.start) : 1;
        for (int j = 0; j < n_pat; j++) {
            const char *pat = scalar(pats->type == YAML_SEQUENCE_NODE
                                         ? yaml_document_get_node(&doc, pats->data.sequence.items.start[j]) : pats);
            if (!pat) continue;
            /* without FNM_PATHNAME '*' also crosses '/': "**" matches as datasets' glob does */
            for (int k = 0; k < l->n; k++)
                if (!fnmatch(pat, l->rel[k], 0) && is_data_file(l->rel[k])) found_add(f, dir, l->rel[k]);
        }
    }
    yaml_document_delete(&doc);
    return true;
}

/* whether rel (a top-level name) is NAME-SPLIT.arrow or NAME-SPLIT-NNNNN-of-NNNNN.arrow */
static bool cache_file_of(const char *rel, const char *split) {
    size_t n = strlen(rel), k = strlen(split);
    if (strchr(rel, '/') || n < k + 8 || strcmp(rel + n - 6, ".arrow")) return false;
    const char *end = rel + n - 6; /* the ".arrow" */
    if (end - rel > 15 && end[-15] == '-' && !strncmp(end - 9, "-of-", 4)) { /* a shard: -NNNNN-of-NNNNN */
        bool digits = true;
        for (int i = 0; i < 5; i++)
            digits = digits && isdigit((unsigned char)end[-14 + i]) && isdigit((unsigned char)end[-5 + i]);
        if (digits) end -= 15;
    }
    return k > 0 && end - rel > (long)k + 1 && end[-(long)k - 1] == '-' && !strncmp(end - k, split, k);
}

/* datasets' own cache of a prepared dataset (dataset_info.json with "splits", NAME-SPLIT*.arrow beside it; map()'s
 * cache-*.arrow files are not data): the split's files into *f, dataset_info's split names into *names. False when
 * dir is no such directory (no split of dataset_info.json has such a file: a Hub repository's own info file). */
static bool cache_split(const char *dir, const FileList *l, const char *split, Found *f, char **names) {
    char *ip = sd_path_join(dir, "dataset_info.json");
    if (!sd_file_exists(ip)) {
        free(ip);
        return false;
    }
    char *text = sd_read_file(ip, NULL);
    free(ip);
    cJSON *j = cJSON_Parse(text), *splits = cJSON_GetObjectItemCaseSensitive(j, "splits"), *e;
    free(text);
    bool is_cache = false;
    if (!cJSON_IsObject(splits)) splits = NULL;
    cJSON_ArrayForEach(e, splits)
        for (int i = 0; i < l->n && !is_cache; i++) is_cache = cache_file_of(l->rel[i], e->string);
    if (is_cache) {
        cJSON_ArrayForEach(e, splits) add_name(names, e->string);
        for (int i = 0; i < l->n; i++)
            if (cache_file_of(l->rel[i], split)) found_add(f, dir, l->rel[i]);
    }
    cJSON_Delete(j);
    return is_cache;
}

char **hub_split_files(const char *dir, const char *split, int *n, const char *where) {
    Found f = {NULL, 0};
    char *names = sd_strdup("");
    char *dd = sd_path_join(dir, "dataset_dict.json");
    if (sd_file_exists(dd)) { /* save_to_disk of a DatasetDict: a directory a split */
        char *sub = sd_path_join(dir, split);
        if (hub_is_split_dir(sub)) {
            free(dd);
            free(names);
            char **one = sd_alloc(sizeof *one, "files");
            one[0] = sub;
            *n = 1;
            return one;
        }
        free(sub);
        /* its splits in dataset_dict.json's order ({"splits": [...]}) */
        char *text = sd_read_file(dd, NULL);
        cJSON *j = cJSON_Parse(text), *splits = cJSON_GetObjectItemCaseSensitive(j, "splits"), *e;
        cJSON_ArrayForEach(e, splits) if (cJSON_IsString(e)) add_name(&names, e->valuestring);
        cJSON_Delete(j);
        free(text);
        free(dd);
        sd_die(where, "%s (a datasets DatasetDict) has no split '%s' (its splits: %s)", dir, split, names);
    }
    free(dd);
    FileList l = {NULL, 0, 0, 0};
    walk(dir, "", &l, 0);
    if (l.visited > HUB_MAX_ENTRIES) {
        list_free(&l);
        free(names);
        sd_die(where, "%s holds more than %d files and directories: not a dataset's directory (name its data files, "
                      "or a glob pattern of them)", dir, HUB_MAX_ENTRIES);
    }
    qsort(l.rel, (size_t)l.n, sizeof *l.rel, cmp_str);
    const char *rule = "README.md's configs";
    if (cache_split(dir, &l, split, &f, &names)) rule = "dataset_info.json's splits (datasets' cache)";
    else if (!readme_split(dir, &l, split, &f, &names, where)) {
        rule = "data/SPLIT-NNNNN-of-NNNNN files";
        char name[256];
        bool sharded = false;
        for (int i = 0; i < l.n; i++)
            if (is_data_file(l.rel[i]) && shard_split(l.rel[i], name, sizeof name)) {
                sharded = true;
                add_name(&names, name);
                if (!strcmp(name, split)) found_add(&f, dir, l.rel[i]);
            }
        if (!sharded) { /* keywords: in a directory name first, then in file names */
            rule = "the split's name in file or directory names";
            const char *const *kws = split_keywords(split), *own[] = {split, NULL};
            if (!kws) kws = own;
            for (int place = 1; place <= 2 && f.n == 0; place++)
                for (int i = 0; i < l.n; i++) {
                    if (!is_data_file(l.rel[i])) continue;
                    for (int k = 0; kws[k]; k++)
                        if (keyword_place(l.rel[i], kws[k]) == place) {
                            found_add(&f, dir, l.rel[i]);
                            break;
                        }
                }
            static const char *const std[] = {"train", "validation", "test"};
            for (int s = 0; s < 3; s++)
                for (int i = 0; i < l.n; i++) {
                    const char *const *kw = split_keywords(std[s]);
                    bool hit = false;
                    for (int k = 0; kw[k] && !hit; k++) hit = is_data_file(l.rel[i]) && keyword_place(l.rel[i], kw[k]);
                    if (hit) {
                        add_name(&names, std[s]);
                        break;
                    }
                }
        }
    }
    list_free(&l);
    if (f.n == 0)
        sd_die(where, "%s has no data files of split '%s' (by %s; splits found: %s; data files are .parquet, .arrow, "
                      ".jsonl, .json)", dir, split, rule, *names ? names : "none");
    free(names);
    *n = f.n;
    return f.path;
}
