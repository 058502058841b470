/* score.c — see score.h. One pair per micro-batch, so the activation arena is sized by the longest pair; each
 * pair's prompt runs through the layers once for both responses (prefix sharing, pairs.h). */
#include "score.h"
#include <stdio.h>
#include <string.h>
#include "util.h"
#ifdef SIMPO_HAVE_CUDA
#include "backend_cuda.h"
#endif

/* the backend of device (cpu | cuda | auto), as the trainer picks it for one rank */
static const Backend *score_backend(const char *device) {
    if (!strcmp(device, "cpu")) return backend_cpu();
    if (strcmp(device, "cuda") && strcmp(device, "auto"))
        sd_die("score", "--device: expected cpu, cuda or auto, found '%s'", device);
#ifdef SIMPO_HAVE_CUDA
    if (cuda_device_available()) {
        cuda_set_device_from_local_rank();
        return backend_cuda();
    }
    if (!strcmp(device, "cuda")) sd_die("score", "--device cuda, but no CUDA device is visible (use cpu or auto)");
#else
    if (!strcmp(device, "cuda"))
        sd_die("score", "--device cuda needs a build with the CUDA backend; this one has none (nvcc was not found "
               "when it was configured)");
#endif
    return backend_cpu();
}

ScoreOpts score_opts(const char *cmd, const char *device, const char *dtype) {
    if (strcmp(dtype, "fp32") && strcmp(dtype, "bf16")) sd_die(cmd, "--dtype: expected fp32 or bf16, found '%s'", dtype);
    return (ScoreOpts){device, !strcmp(dtype, "bf16")};
}

void score_pairs(const char *model_dir, const ModelConfig *mc, const PairSet *ps, SeqLogp *out, const ScoreOpts *o) {
    const Backend *be = score_backend(o && o->device ? o->device : "cpu");
    bool bf16 = o && o->bf16;
    if (bf16 && !be->set_matmul_bf16) sd_die("score", "--dtype bf16: the %s backend has fp32 matmuls only", be->name);
    if (be->set_matmul_bf16) be->set_matmul_bf16(bf16); /* before the model: it stores bf16 activations then */
    size_t max_tokens = 1;
    for (size_t i = 0; i < ps->n; i++) {
        size_t n = pair_tokens(&ps->pairs[i], false); /* attention's rows; the layers see fewer */
        if (n > max_tokens) max_tokens = n;
    }
    fprintf(stderr, "simpo_dist: scoring %zu pairs on the %s backend (%s)\n", ps->n, be->name, bf16 ? "bf16" : "fp32");
    Model *m = model_create_inference(mc, be, max_tokens);
    model_load_hf(m, model_dir);
    if (m->act16) { /* the matmuls read bf16 weights converted once, not before every matmul */
        model_enable_weights16(m);
        model_refresh_weights16(m);
    }
    for (size_t i = 0; i < ps->n; i++) {
        MicroBatch *mb = microbatch_pack_opts(ps, &i, 1, true);
        model_forward_logprobs(m, mb, &out[2 * i]);
        microbatch_free(mb);
    }
    model_free(m);
    if (be->set_matmul_bf16) be->set_matmul_bf16(false);
}
