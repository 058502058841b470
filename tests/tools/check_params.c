/* check_params.c — test tool: compares the parameters of a checkpoint (step dir, index.h5, or checkpoint.dir) or
 * a Hugging Face model dir against a reference safetensors file, with the fixture README's rule: every element
 * within 1e-4 absolute, except at most max(5, n/2000) elements within 2.5e-3 (Adam's first-update sign flips on
 * near-zero gradients). usage: check_params GOT REF.safetensors */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "checkpoint.h"
#include "safetensors.h"
#include "util.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: check_params CKPT_OR_HF_DIR REF.safetensors\n");
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
