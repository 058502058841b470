/* test_grid.c — rank placement and ZeRO partitioning as pure functions: the (dp, pp, tp) <-> rank round trip for
 * every grid up to 64 ranks (TP innermost), and for ZeRO plans over random parameter lists: the shards tile the
 * buffer exactly once, pieces lie inside their parameter, and the rectangles of a flat range cover it in order. */
#include "comm.h"
#include "test_util.h"
#include "zero.h"

int main(void) {
    int bad = 0, grids = 0;
    for (int world = 1; world <= 64; world++)
        for (int tp = 1; tp <= world; tp++)
            for (int pp = 1; pp <= world / tp; pp++) {
                if (world % (tp * pp)) continue;
                grids++;
                int dp = world / (tp * pp);
                for (int r = 0; r < world; r++) {
                    int d, p, t;
                    grid_coords(r, tp, pp, &d, &p, &t);
                    bad += d < 0 || d >= dp || p < 0 || p >= pp || t < 0 || t >= tp || grid_rank(d, p, t, tp, pp) != r;
                    bad += tp > 1 && r + 1 < world && (r + 1) % tp != 0 && grid_rank(d, p, t + 1, tp, pp) != r + 1;
                }
            }
    CHECK(bad == 0, "%d placement errors", bad);
    printf("%d grids checked\n", grids);

    /* ZeRO plans */
    uint64_t seed = 7;
    for (int trial = 0; trial < 200; trial++) {
        int np = 1 + (int)(sd_hash64(seed, trial, 0) % 12), dp = 1 + (int)(sd_hash64(seed, trial, 1) % 8);
        size_t offs[12], nums[12], n = 0;
        for (int i = 0; i < np; i++) {
            offs[i] = n;
            nums[i] = 1 + sd_hash64(seed, trial, 10 + i) % 300;
            n += nums[i];
        }
        size_t align = 64 * (size_t)dp, n_pad = (n + align - 1) / align * align;
        int *cover = sd_calloc(n, sizeof(int), "cover");
        for (int r = 0; r < dp; r++) {
            ZeroPlan *z = zero_plan_create(trial % 3 ? trial % 3 : 1, dp, r, n, n_pad, offs, nums, np);
            size_t prev_end = z->own.start;
            for (int k = 0; k < z->npieces; k++) {
                const OwnedPiece *pc = &z->pieces[k];
                bad += pc->flat.start != prev_end || pc->flat.end <= pc->flat.start;
                bad += pc->flat.start < offs[pc->param] || pc->flat.end > offs[pc->param] + nums[pc->param];
                bad += pc->in_param != pc->flat.start - offs[pc->param];
                for (size_t e = pc->flat.start; e < pc->flat.end; e++) cover[e]++;
                prev_end = pc->flat.end;
                /* rectangles of the piece inside a [rows, cols] view of its parameter */
                size_t cols = 1 + nums[pc->param] % 7, rows = (nums[pc->param] + cols - 1) / cols;
                if (rows * cols != nums[pc->param]) continue; /* only exact 2-D views */
                int64_t ro[3][2], rc[3][2];
                int nr = zero_range_rects((int64_t)rows, (int64_t)cols, pc->in_param, pc->flat.end - pc->flat.start, ro, rc);
                size_t pos = pc->in_param;
                for (int q = 0; q < nr; q++) {
                    bad += (size_t)ro[q][0] * cols + (size_t)ro[q][1] != pos; /* contiguous, in order */
                    bad += rc[q][0] > 1 && (ro[q][1] != 0 || (size_t)rc[q][1] != cols); /* multi-row = whole rows */
                    pos += (size_t)rc[q][0] * (size_t)rc[q][1];
                }
                bad += pos != pc->in_param + (pc->flat.end - pc->flat.start) || nr > 3;
            }
            bad += prev_end != z->own.end;
            zero_plan_free(z);
        }
        for (size_t e = 0; e < n; e++) bad += cover[e] != 1;
        free(cover);
    }
    CHECK(bad == 0, "%d ZeRO plan errors", bad);
    TEST_END();
}
