/* test_config.c — the YAML config: the fixture's run.yaml, defaults, flow vs block style, the resolved-YAML round
 * trip, model.config with nested rope_scaling, data mixtures, and every error class with its key and line. */
#include <limits.h>
#include <glob.h>
#include "config.h"
#include "test_util.h"

static const char *g_yaml;
static void load_it(void *arg) {
    (void)arg;
    Config *c = config_load_string(g_yaml, "t.yaml", "/base");
    config_free(c);
}
static int err(const char *yaml, const char *want) {
    g_yaml = yaml;
    return expect_die(load_it, NULL, want);
}

#define MIN "model: {init: m}\ndata: {train: p.jsonl}\n"

int main(void) {
    /* the fixture config */
    char *p = fixture_path("tiny-a/run.yaml");
    Config *c = config_load(p);
    char *dir = sd_path_dir(p);
    char *want_model = sd_path_join(dir, "model"), *want_data = sd_path_join(dir, "pairs.jsonl");
    CHECK(!strcmp(c->model_init, want_model), "model.init resolved: %s", c->model_init);
    CHECK(!strcmp(c->data_train, want_data), "data.train resolved: %s", c->data_train);
    CHECK(c->max_length == 256 && c->max_prompt_length == 128 && !c->shuffle, "data keys");
    CHECK(c->loss_type == LOSS_SIMPO && c->beta == 2.0 && c->gamma_beta_ratio == 0.5, "loss keys");
    CHECK(c->lr == 1e-3 && c->beta1 == 0.9 && c->beta2 == 0.999 && c->eps == 1e-8 && c->weight_decay == 0.01, "optim");
    CHECK(c->max_grad_norm == 1.0 && c->schedule == SCHED_CONSTANT && c->warmup_steps == 0, "optim 2");
    CHECK(c->global_batch_pairs == 6 && c->micro_batch_pairs == 2 && c->max_steps == 2 && c->seed == 0, "train");
    CHECK(c->ckpt_every_steps == 2 && c->log_every_steps == 1, "checkpoint/log");

    /* round trip through the resolved YAML */
    char *y = config_to_yaml(c);
    Config *c2 = config_load_string(y, "resolved.yaml", "");
    char *y2 = config_to_yaml(c2);
    CHECK(!strcmp(y, y2), "config_to_yaml round trip:\n%s\n---\n%s", y, y2);
    CHECK(!strcmp(c2->model_init, c->model_init) && c2->lr == c->lr && c2->beta2 == c->beta2, "round-trip values");
    config_free(c2);
    free(y2);
    free(y);
    config_free(c);
    free(p); free(dir); free(want_model); free(want_data);

    /* train.recompute: false, true or auto (the trainer picks the layers); auto takes no count */
    c = config_load_string(MIN "train: {recompute: auto}\n", "t.yaml", "");
    CHECK(c->recompute == RECOMPUTE_AUTO && config_recompute_layers(c) == -1, "recompute auto");
    char *ya = config_to_yaml(c);
    CHECK(strstr(ya, "recompute: auto") != NULL, "recompute auto in the resolved YAML");
    free(ya);
    config_free(c);
    CHECK(err(MIN "train: {recompute: auto, recompute_layers: 2}\n", "auto chooses the count itself"),
          "recompute_layers with auto");
    CHECK(err(MIN "train: {recompute: maybe}\n", "key 'train.recompute': expected one of false|true|auto"),
          "recompute's choices");

    /* train.recompute_layers: per stage, 0 (the default) meaning every layer */
    c = config_load_string(MIN "train: {recompute: true, recompute_layers: 3}\n", "t.yaml", "");
    CHECK(config_recompute_layers(c) == 3, "recompute_layers 3: %d", config_recompute_layers(c));
    c->recompute_layers = 0;
    CHECK(config_recompute_layers(c) == INT_MAX, "recompute without a count: every layer");
    c->recompute = RECOMPUTE_OFF;
    CHECK(config_recompute_layers(c) == 0, "no recompute");
    config_free(c);

    /* defaults, block style, model.config with rope_scaling */
    c = config_load_string("model:\n  seed: 7\n  config:\n    vocab_size: 100\n    hidden_size: 32\n"
                           "    intermediate_size: 64\n    num_hidden_layers: 2\n    num_attention_heads: 4\n"
                           "    num_key_value_heads: 2\n    rope_theta: 500000.0\n    tie_word_embeddings: true\n"
                           "    rope_scaling: {rope_type: llama3, factor: 8.0, low_freq_factor: 1.0,\n"
                           "                   high_freq_factor: 4.0, original_max_position_embeddings: 8192}\n"
                           "data:\n  train: p.jsonl\n",
                           "t.yaml", "/base");
    CHECK(c->has_model_config && c->model_config.vocab_size == 100 && c->model_config.head_dim == 8, "model.config");
    CHECK(c->model_config.rope_type == ROPE_LLAMA3 && c->model_config.rope_factor == 8.0 &&
              c->model_config.rope_theta == 500000.0 && c->model_config.tie_word_embeddings, "rope_scaling");
    CHECK(c->model_seed == 7 && !c->model_init, "model.seed");
    CHECK(!strcmp(c->data_train, "/base/p.jsonl"), "relative path against base dir: %s", c->data_train);
    CHECK(c->max_length == 2048 && c->max_prompt_length == 1800 && c->shuffle, "data defaults");
    CHECK(c->beta == 2.0 && c->lr == 1e-6 && c->schedule == SCHED_COSINE && c->global_batch_pairs == 128, "defaults");
    CHECK(c->tp == 1 && c->pp == 1 && c->zero == 0 && !strcmp(c->comm_backend, "auto"), "parallel defaults");
    y = config_to_yaml(c);
    c2 = config_load_string(y, "resolved.yaml", "");
    CHECK(c2->model_config.rope_type == ROPE_LLAMA3 && c2->model_config.rope_low_freq_factor == 1.0,
          "model.config survives the round trip");
    config_free(c2);
    free(y);
    config_free(c);

    /* every shipped config loads (recipes and the tiny default) */
    const char *src = getenv("SIMPO_SRC");
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/configs/recipes/*.yaml", src ? src : "..");
    glob_t gl;
    int found = glob(pat, 0, NULL, &gl) == 0 ? (int)gl.gl_pathc : 0;
    CHECK(found >= 5, "%d recipes under %s", found, pat);
    for (int i = 0; i < found; i++) {
        Config *r = config_load(gl.gl_pathv[i]);
        CHECK(r->global_batch_pairs == 128 && r->schedule == SCHED_COSINE, "recipe %s", gl.gl_pathv[i]);
        config_free(r);
    }
    if (found) globfree(&gl);

    /* errors: key and line */
    CHECK(err(MIN "optim: {lrr: 1.0}\n", "t.yaml:3:9: unknown key 'optim.lrr'"), "unknown key");
    CHECK(err(MIN "optimizer: {lr: 1.0}\n", "t.yaml:3:1: unknown key 'optimizer'"), "unknown section");
    CHECK(err(MIN "optim: {lr: 3e-4x}\n", "t.yaml:3:13: key 'optim.lr': expected a float, found \"3e-4x\""), "bad float");
    CHECK(err(MIN "optim: {lr: -1}\n", "key 'optim.lr': expected a value > 0"), "lr range");
    CHECK(err(MIN "train: {micro_batch_pairs: 2.5}\n", "key 'train.micro_batch_pairs': expected an integer"), "int");
    CHECK(err(MIN "data: {shuffle: maybe}\n", "expected true or false"), "bool");
    CHECK(err(MIN "loss: {type: ppo}\n", "key 'loss.type': expected one of simpo|simpo_hinge|dpo"), "enum");
    CHECK(err(MIN "loss: {label_smoothing: 0.5}\n", "key 'loss.label_smoothing': expected a value >= 0 and < 0.5"),
          "exclusive bound");
    CHECK(err(MIN "optim: {betas: [0.9]}\n", "key 'optim.betas': expected a list of two floats"), "pair");
    CHECK(err(MIN "optim: {betas: [0.9, 1.0]}\n", "key 'optim.betas'"), "pair range");
    CHECK(err(MIN "parallel: {zero: 4}\n", "key 'parallel.zero': expected a value >= 0 and <= 3"), "zero range");
    CHECK(err("model: {init: m}\n", "key 'data.train' is required"), "missing data.train");
    CHECK(err("data: {train: p.jsonl}\n", "one of 'model.init' or 'model.config' is required"), "missing model");
    CHECK(err(MIN "train: {global_batch_pairs: 6, micro_batch_pairs: 4}\n", "must divide"), "divisibility");
    CHECK(err(MIN "data: {max_length: 100, max_prompt_length: 100}\n", "max_prompt_length"), "prompt < length");
    CHECK(err(MIN "train: {recompute_layers: 2}\n", "key 'train.recompute_layers' (line 3) says how many layers"),
          "recompute_layers needs recompute");
    CHECK(err(MIN "train: {recompute: true, recompute_layers: -1}\n", "key 'train.recompute_layers'"),
          "recompute_layers range");
    CHECK(err("model: {init: m}\ndata: {train: p.jsonl}\ndata: {train: q.jsonl}\n", "appears twice"), "duplicate");
    CHECK(err("model: {init: m\n", "t.yaml:2:1: invalid YAML"), "syntax error");
    CHECK(err(MIN "optim: {lr: [1]}\n", "key 'optim.lr': expected a float, found a list"), "list for scalar");
    CHECK(err("model:\n  config: {vocab_size: 10}\ndata: {train: p.jsonl}\n", "t.yaml:2:11: model.config"),
          "model.config error names the line");
    CHECK(err("model:\n  config: {vocab_size: 10}\ndata: {train: p.jsonl}\n", "'hidden_size' is required"),
          "model.config missing field");
    /* a data mixture: files resolved in order with their fractions, the joined name, the resolved-YAML round trip;
     * a held-out mixture; its errors */
    c = config_load_string("model: {init: m}\ndata: {train: {a.jsonl: 1.0, sub/b.jsonl: 0.25}, eval: {e.jsonl: 0.5}}\n",
                           "t.yaml", "/base");
    CHECK(c->n_train_mix == 2 && !strcmp(c->train_mix[0].path, "/base/a.jsonl") && c->train_mix[0].fraction == 1.0 &&
          !strcmp(c->train_mix[1].path, "/base/sub/b.jsonl") && c->train_mix[1].fraction == 0.25,
          "mixture parts: %d", c->n_train_mix);
    CHECK(!strcmp(c->data_train, "/base/a.jsonl + /base/sub/b.jsonl"), "mixture name: %s", c->data_train);
    CHECK(c->n_eval_mix == 1 && c->eval_mix[0].fraction == 0.5 && !strcmp(c->data_eval, "/base/e.jsonl"),
          "held-out mixture");
    y = config_to_yaml(c);
    c2 = config_load_string(y, "resolved.yaml", "");
    y2 = config_to_yaml(c2);
    CHECK(!strcmp(y, y2) && c2->n_train_mix == 2 && c2->train_mix[1].fraction == 0.25, "mixture round trip:\n%s", y);
    free(y), free(y2), config_free(c), config_free(c2);
    CHECK(err("model: {init: m}\ndata: {train: {a.jsonl: 0}}\n", "t.yaml:2:25: key 'data.train': the fraction of "
              "a.jsonl: expected a number in (0, 1]"), "mixture fraction 0");
    CHECK(err("model: {init: m}\ndata: {train: {a.jsonl: [1]}}\n", "found 'a mapping or list'"), "mixture fraction list");
    CHECK(err("model: {init: m}\ndata: {train: {}}\n", "found an empty mapping"), "empty mixture");
    CHECK(err("model: {init: m}\ndata: {eval: {a.jsonl: 1, a.jsonl: 0.5}, train: p.jsonl}\n",
              "key 'data.eval': the file a.jsonl appears twice"), "mixture file twice");
    /* a glob pattern: every match, sorted, as a mixture at 1.0; one match: the plain path; none: an error */
    {
        char tmpl[] = "/tmp/sd_cfg_glob_XXXXXX";
        char *gd = mkdtemp(tmpl);
        CHECK(gd != NULL, "mkdtemp");
        const char *names[] = {"train-00001-of-00002.parquet", "train-00000-of-00002.parquet", "test-00000.parquet"};
        for (int i = 0; i < 3 && gd; i++) {
            char *f = sd_path_join(gd, names[i]);
            sd_write_file_atomic(f, "x", 1);
            free(f);
        }
        Config *g = config_load_string("model: {init: m}\ndata: {train: train-*.parquet, eval: 'test-*'}\n", "g.yaml", gd);
        char *a0 = sd_path_join(gd, names[1]), *a1 = sd_path_join(gd, names[0]), *e0 = sd_path_join(gd, names[2]);
        CHECK(g->n_train_mix == 2 && !strcmp(g->train_mix[0].path, a0) && !strcmp(g->train_mix[1].path, a1) &&
                  g->train_mix[0].fraction == 1.0 && g->train_mix[1].fraction == 1.0,
              "glob: two shards in order (%d parts)", g->n_train_mix);
        CHECK(!g->eval_mix && !strcmp(g->data_eval, e0), "glob with one match: the path (%s)", g->data_eval);
        config_free(g);
        g_yaml = "model: {init: m}\ndata: {train: 'valid-*.parquet'}\n";
        CHECK(expect_die(load_it, NULL, "key 'data.train': the pattern 'valid-*.parquet' matches no file"),
              "glob without a match");
        free(a0), free(a1), free(e0);
        for (int i = 0; i < 3 && gd; i++) {
            char *f = sd_path_join(gd, names[i]);
            remove(f);
            free(f);
        }
        if (gd) rmdir(gd);
    }
    /* optim.schedule wsd and its decay keys: parsed, round-tripped only under wsd, refused elsewhere by line */
    {
        Config *w = config_load_string(MIN "optim: {schedule: wsd, decay_steps: 7, decay_type: 1-sqrt}\n", "w.yaml", "/b");
        CHECK(w->schedule == SCHED_WSD && w->decay_steps == 7 && w->decay_type == DECAY_1_SQRT && w->decay_ratio == 0.1,
              "wsd keys");
        char *yw = config_to_yaml(w);
        Config *w2 = config_load_string(yw, "w2.yaml", "/b");
        CHECK(w2->schedule == SCHED_WSD && w2->decay_steps == 7 && w2->decay_type == DECAY_1_SQRT, "wsd round trip");
        Config *cs = config_load_string(MIN "optim: {schedule: cosine}\n", "c.yaml", "/b");
        char *yc = config_to_yaml(cs);
        CHECK(!strstr(yc, "decay_"), "a cosine config's YAML leaves the wsd keys out:\n%s", yc);
        config_free(config_load_string(yc, "c2.yaml", "/b")); /* and reloads */
        free(yw), free(yc);
        config_free(w), config_free(w2), config_free(cs);
    }
    CHECK(err(MIN "optim: {schedule: cosine,\n  decay_ratio: 0.2}\n",
              "t.yaml: key 'optim.decay_ratio' (line 4) shapes the decay of optim.schedule wsd: it needs optim.schedule: wsd"),
          "decay key without wsd");
    CHECK(err(MIN "optim: {schedule: wsd, decay_type: exp}\n", "expected one of cosine|linear|1-sqrt"), "decay_type");
    CHECK(err(MIN "optim: {schedule: wsd, decay_ratio: 1.5}\n", "optim.decay_ratio"), "decay_ratio > 1");
    TEST_END();
}
