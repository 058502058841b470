/* check_params.c — test tool: compares the parameters of a checkpoint (step dir, index.h5, or checkpoint.dir) or
 * a Hugging Face model dir against a reference safetensors file, with the fixture README's rule: every element
 * within 1e-4 absolute, except at most max(5, n/2000) elements within 2.5e-3 (Adam's first-update sign flips on
 * near-zero gradients). usage: check_params GOT REF.safetensors
 * With --bf16-of: GOT (a Hugging Face dir) must hold BF16 tensors, each element REF's rounded to bf16 (nearest
 * even), bit for bit: check_params --bf16-of GOT_HF_DIR REF.safetensors */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "safetensors.h"
#include "util.h"

/* --bf16-of: every tensor of ref in got's BF16 tensors as its bf16 rounding */
static int bf16_of(const char *got_dir, const char *ref_file) {
    StDir *ref = st_open_file(ref_file), *got = st_open_dir(got_dir);
    size_t bad = 0, total = 0;
    for (int i = 0; i < ref->ntensors; i++) {
        const StTensor *t = &ref->tensors[i], *g = st_find(got, t->name);
        if (!g || g->numel != t->numel || g->dtype != ST_BF16) {
            fprintf(stderr, "check_params: %s missing, of another size or not BF16\n", t->name);
            return 1;
        }
        float *want = sd_alloc(t->numel * 4, "ref"), *have = sd_alloc(t->numel * 4, "got");
        st_read_f32(ref, t, want);
        st_read_f32(got, g, have);
        for (size_t e = 0; e < t->numel; e++, total++)
            if (sd_bf16_to_f32(sd_f32_to_bf16(want[e])) != have[e] && bad++ < 5)
                fprintf(stderr, "check_params: %s[%zu] = %.8g, want bf16(%.8g)\n", t->name, e, have[e], want[e]);
        free(want), free(have);
    }
    printf("check_params --bf16-of %s: %d tensors, %zu elements, %zu not the bf16 rounding\n", bad ? "FAILED" : "ok",
           ref->ntensors, total, bad);
    st_close(ref), st_close(got);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--bf16-of")) return bf16_of(argv[2], argv[3]);
    if (argc != 3) {
        fprintf(stderr, "usage: check_params CKPT_OR_HF_DIR REF.safetensors | --bf16-of HF_DIR REF.safetensors\n");
        return 2;
    }
    StDir *ref = st_open_file(argv[2]);
    char *step = ckpt_find_latest(argv[1]);
    CkptReader *r = step ? ckpt_open(step) : NULL;
    StDir *hf = step ? NULL : st_open_dir(argv[1]);
    double worst = 0;
    size_t beyond = 0, total = 0, far = 0;
    for (int i = 0; i < ref->ntensors; i++) {
        const StTensor *t = &ref->tensors[i];
        float *want = sd_alloc(t->numel * 4, "ref"), *got = sd_alloc(t->numel * 4, "got");
        st_read_f32(ref, t, want);
        if (r) {
            int64_t off[4] = {0}, cnt[4];
            for (int d = 0; d < t->ndim; d++) cnt[d] = t->shape[d];
            ckpt_read(r, "param", t->name, t->ndim, off, cnt, got);
        } else {
            const StTensor *g = st_find(hf, t->name);
            if (!g || g->numel != t->numel) {
                fprintf(stderr, "check_params: %s missing or of another size\n", t->name);
                return 1;
            }
            st_read_f32(hf, g, got);
        }
        for (size_t e = 0; e < t->numel; e++) {
            double d = fabs((double)got[e] - (double)want[e]);
            if (!(d <= 2.5e-3)) {
                if (far++ < 5) fprintf(stderr, "check_params: %s[%zu] = %.8g, want %.8g\n", t->name, e, got[e], want[e]);
            }
            if (d > 1e-4) beyond++;
            if (d > worst) worst = d;
            total++;
        }
        free(want);
        free(got);
    }
    size_t allowed = total / 2000 > 5 ? total / 2000 : 5;
    int ok = far == 0 && beyond <= allowed;
    printf("check_params %s: %d tensors, %zu elements, max abs diff %.3g, %zu beyond 1e-4 (allowed %zu)\n",
           ok ? "ok" : "FAILED", ref->ntensors, total, worst, beyond, allowed);
    if (r) ckpt_close(r);
    if (hf) st_close(hf);
    st_close(ref);
    free(step);
    return ok ? 0 : 1;
}
