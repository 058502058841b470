/* backend.h — the kernel interface every backend implements (a struct of function pointers).
 *
 * defines: Backend, backend_cpu(), backend_cpu_strict(), GradRows (GRAD_ROWS_ALL / HELD / FREE, grad_rows_at,
 *          grad_rows_in).
 * The model, the loss path and the optimizer are written once against this interface; the CPU backend
 * (src/cpu/, fp32, OpenMP + OpenBLAS) is the reference every other backend must reproduce.
 *
 * Conventions for every op:
 *   - All tensors are fp32, row-major, contiguous, in the backend's memory (host memory for the CPU backend).
 *     Only a backend with host_addressable set may have its memory read or written by the host directly (or
 *     handed to MPI); every other caller goes through upload / download, and index arrays (ids, pos, cu_seqlens,
 *     targets) are uploaded like the rest. The strict CPU backend (backend_cpu_strict) enforces this on CPU.
 *   - Shapes use the style guide's letters: N rows (tokens), C model width, NH / NKV query / key-value heads of
 *     this rank, HD head dim, FF MLP width of this rank, V_loc / V_off the vocabulary slice of this rank.
 *     All sizes are element counts, never bytes, unless the name says bytes.
 *   - "writes" means the output is overwritten; "accumulates" means += (gradient buffers).
 *   - No op allocates memory visible to the caller; scratch lives inside the op and is freed there.
 *   - Packed variable-length batches: S sequences back to back, sequence s occupies rows
 *     [cu_seqlens[s], cu_seqlens[s+1]); attention is causal inside each sequence only.
 */
#ifndef SD_BACKEND_H
#define SD_BACKEND_H
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Options of attn_fwd / attn_bwd (Gemma 2; host memory, read during the call). A NULL pointer means Llama's
 * attention; so does a struct with every field 0.
 *   scale:   multiplies q.k (Gemma 2: query_pre_attn_scalar^-1/2); <= 0: 1/sqrt(HD) (computed as 1.0f/sqrtf(HD)).
 *   softcap: > 0: the scaled score s becomes softcap * tanh(s / softcap) before the causal mask and the softmax
 *            (attn_logit_softcapping); 0: off. The backward multiplies d/ds by 1 - tanh(s / softcap)^2.
 *   window:  > 0: query row i sees key row j of its sequence only when i - window < j <= i (transformers'
 *            sliding_window_overlay: kv_idx > q_idx - sliding_window); 0: causal over the whole sequence. */
typedef struct AttnOpts {
    float scale;
    float softcap;
    int window;
} AttnOpts;
/* The scale opts stands for (1.0f/sqrtf(HD) when opts is NULL or its scale <= 0). */
static inline float attn_opts_scale(const AttnOpts *opts, int HD) {
    return opts && opts->scale > 0.0f ? opts->scale : 1.0f / sqrtf((float)HD);
}
/* true when opts asks for Llama's attention: no cap, no window, the scale 1/sqrt(HD) (what the kernels that know
 * no options, e.g. the CUDA tensor-core path, compute). */
static inline bool attn_opts_is_default(const AttnOpts *opts, int HD) {
    return !opts || (!(opts->softcap > 0.0f) && opts->window <= 0 &&
                     attn_opts_scale(opts, HD) == 1.0f / sqrtf((float)HD));
}

/* A gradient held by rows (adamw, adamw_sumsq; model.h's sparse embedding gradient): of a tensor of n / cols rows,
 * row r has the gradient g[map[r] * cols .. + cols) when map[r] >= 0 and zero otherwise; g holds `held` rows
 * (map's values lie below it). map: backend memory, n / cols ints; the struct itself is host memory, read during
 * the call. part: which rows the call updates, the others left as they are: GRAD_ROWS_ALL (0, the default of a
 * zeroed struct) every row, GRAD_ROWS_HELD the held ones, GRAD_ROWS_FREE the others (whose update needs no
 * gradient, so it may run before the backward: AdamW inside the backward, optim.h). HELD then FREE, or FREE then
 * HELD, is bitwise ALL, and adamw_sumsq's sum of squares over HELD bitwise ALL's (the rows left out add nothing);
 * over FREE it is 0. */
enum { GRAD_ROWS_ALL = 0, GRAD_ROWS_HELD = 1, GRAD_ROWS_FREE = 2 };
typedef struct GradRows {
    const int *map;
    size_t cols, held;
    int part;
} GradRows;
/* element i's gradient under rows (the reference every backend's gathered read reproduces) */
static inline float grad_rows_at(const float *g, const GradRows *rows, size_t i) {
    const size_t r = i / rows->cols;
    const int s = rows->map[r];
    return s < 0 ? 0.0f : g[(size_t)s * rows->cols + (i - r * rows->cols)];
}
/* whether element i is among the rows rows->part selects (host reads of map: CPU backends) */
static inline bool grad_rows_in(const GradRows *rows, size_t i) {
    return rows->part == GRAD_ROWS_ALL || (rows->map[i / rows->cols] >= 0) == (rows->part == GRAD_ROWS_HELD);
}

typedef struct Backend {
    const char *name;
    /* true: the backend's memory is ordinary host memory (the CPU backend), so MPI and the host may touch it.
     * false (the default of a designated initializer, so the safe one): collectives stage through host buffers
     * and nothing on the host dereferences it (the CUDA and the strict CPU backends). */
    bool host_addressable;
    /* Waits until all work the backend queued has finished; called before a collectives library that runs on its
     * own streams (NCCL) touches the buffers. NULL for a backend whose ops have finished when they return; a GPU
     * backend with asynchronous ops must set it (cuda_synchronize), or parallel.backend: nccl refuses it. */
    void (*sync)(void);
    /* A second, low-priority queue for work that nothing else of the step reads until it has joined (AdamW inside
     * the backward, optim.c): the ops called between late_begin() and late_end() start after all the work queued
     * before late_begin() and run beside the work queued after them; late_join() queues everything after it behind
     * them (free and sync join first by themselves; upload and download do not, so that the ops which read a host
     * value keep running beside the late work). Only ops without a matmul may run late (a GPU backend's BLAS
     * handle stays on the main queue). NULL, all three, on a backend whose ops have finished
     * when they return (the CPU's): the late ops then run where they are called, an order the results of which
     * must not differ. */
    void (*late_begin)(void);
    void (*late_end)(void);
    void (*late_join)(void);

    /* memory (bytes) */
    void *(*alloc)(size_t bytes, const char *what); /* zeroed; never NULL (dies naming what) */
    void (*free)(void *p);
    size_t (*bytes_in_use)(void);                               /* bytes this backend's alloc currently holds */
    /* bytes the device can still give this process (a GPU's free memory); NULL: no limit known (host memory) */
    size_t (*mem_free)(void);
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);       /* backend -> backend */
    void (*upload)(void *dst, const void *host_src, size_t bytes);   /* host -> backend */
    void (*download)(void *host_dst, const void *src, size_t bytes); /* backend -> host */

    /* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.
     * op(A) = A when !transA (A stored [M,K]) or A^T when transA (A stored [K,M]); same for B
     * (B stored [K,N] when !transB, [N,K] when transB). A linear layer y = x W^T with an HF weight W[out,in]
     * is matmul(y, x, W, N, out, in, false, true, 1, 0). beta = 1 accumulates. */
    void (*matmul)(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                   float alpha, float beta);

    /* Matmul precision, process-wide (model.dtype: bf16): while on, matmul rounds every element of A and B to
     * bfloat16 (round to nearest even) and accumulates their products in fp32 (exact products: tensor cores on a
     * GPU, an emulation on the CPU that is the reference for it); C, alpha and beta stay fp32. The CUDA backend
     * also runs attention on tensor cores then (bf16 q, k, v and probabilities, fp32 softmax statistics).
     * Default off (fp32). NULL: the backend has fp32 matmuls only. */
    void (*set_matmul_bf16)(bool on);
    /* Operand reuse in the bf16 mode. NULL (both) where there is nothing to reuse (the CPU backends). Between
     * matmul_hold(x, n) and matmul_release(x) the caller promises not to write x[0 .. n) (n elements), so a backend
     * that converts matmul operands to bf16 may convert x once and reuse the copy for every matmul whose A or B is
     * exactly x with n elements (the model holds a layer's normed input over its q / k / v or gate / up matmuls, a
     * gradient over its dX and dW matmuls, the LM head over its vocabulary chunks). Holds of the same x nest (a
     * count); at most 8 distinct x at a time. The backend owns the copy and frees it at the last release. Results
     * are bitwise those without holds. */
    void (*matmul_hold)(const float *x, size_t n);
    void (*matmul_release)(const float *x);
    /* Whether the bf16 mode is on (what set_matmul_bf16 set last). NULL: never. */
    bool (*matmul_bf16_on)(void);

    /* bf16 activation storage, the bf16 mode only. An activation that only ever feeds bf16 matmuls (a layer's
     * normed inputs, the MLP's hidden state) may be stored as bfloat16 (uint16_t bits, rounded to nearest even)
     * by the op that makes it: half the memory, no conversion pass before its matmuls, and the very values those
     * matmuls would have rounded it to, so results are bitwise those of fp32 storage. NULL (all four): the backend
     * has fp32 storage only (the same for swiglu_bwd16 and geglu_bwd16 below).
     * rmsnorm_fwd16, swiglu_fwd16, geglu_fwd16: rmsnorm_fwd, swiglu_fwd, geglu_fwd with out rounded to bf16
     * ([N,C] / [N,FF] bf16 elements). The gradients of the gate and up projections' outputs are such activations
     * too (they feed only those projections' dX and dW matmuls): swiglu_bwd16, geglu_bwd16 are swiglu_bwd,
     * geglu_bwd with dgate and dup rounded to bf16 ([N,FF] bf16 elements each). */
    void (*rmsnorm_fwd16)(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps);
    void (*swiglu_fwd16)(uint16_t *out, const float *gate, const float *up, size_t N, int FF);
    void (*geglu_fwd16)(uint16_t *out, const float *gate, const float *up, size_t N, int FF);
    void (*swiglu_bwd16)(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up,
                         size_t N, int FF);
    void (*geglu_bwd16)(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up,
                        size_t N, int FF);
    /* matmul (same shapes and semantics) whose A is bf16 storage (const uint16_t *) when a16, else fp32, and the
     * same for B with b16. Only while the bf16 mode is on. */
    void (*matmul16)(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K, bool transA,
                     bool transB, float alpha, float beta);
    /* D = op(A) op(B) + R (D, R [M,N] fp32, distinct, not overlapping; A, B as matmul16): a residual add in the
     * product's epilogue, so R is read once instead of copied into D first and read back (the residual stream's
     * o and down projections). The result is that of copying R into D and matmul16 with beta 1 (bitwise on the
     * CPU; a GPU's other kernel may sum in another fp32 order). NULL: the caller copies and accumulates. */
    void (*matmul16_res)(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M, int N,
                         int K, bool transA, bool transB);

    /* Autocast storage (model.bf16_storage: autocast), the bf16 mode only: projections whose outputs feed
     * elementwise ops (the MLP's gate and up) keep them in bf16, as torch's autocast does; unlike the storage above
     * this rounds values the fp32 path keeps, so results change (within bf16 rounding). NULL (all five): not
     * available.
     * matmul16_out16: matmul16 with alpha 1, beta 0 and C[M,N] written as bf16 (the fp32 sum rounded to nearest
     * even): C = bf16(op(A) op(B)).
     * swiglu_fwd_b16, geglu_fwd_b16: swiglu_fwd16, geglu_fwd16 reading bf16 gate and up ([N,FF] bf16 elements);
     * swiglu_bwd_b16, geglu_bwd_b16: swiglu_bwd16, geglu_bwd16 reading bf16 gate and up, and a bf16 dout (the
     * gradient of the bf16 hidden state, which the down projection's backward writes in bf16 as torch's autocast
     * does). Each is the fp32 op on the (exactly widened) bf16 inputs. */
    void (*matmul16_out16)(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                           bool transA, bool transB);
    void (*swiglu_fwd_b16)(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF);
    void (*geglu_fwd_b16)(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF);
    void (*swiglu_bwd_b16)(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                           const uint16_t *up, size_t N, int FF);
    void (*geglu_bwd_b16)(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                          const uint16_t *up, size_t N, int FF);
    /* swiglu_bwd_pack_b16, geglu_bwd_pack_b16 (optional, NULL: model.c runs the two above and the gate and up
     * projections' backward as two matmuls each): the same gradients written side by side, row n of dgu
     * [N, 2 FF] d/dgate's row then d/dup's, so that the projections' dX is one matmul over K = 2 FF (two of which
     * the second read and wrote the fp32 [N, C] result again) and their dW one. dgu overlaps none of the inputs. */
    void (*swiglu_bwd_pack_b16)(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up,
                                size_t N, int FF);
    void (*geglu_bwd_pack_b16)(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up,
                               size_t N, int FF);
    /* Autocast storage of attention (the same model.bf16_storage: autocast, the bf16 mode only; NULL, all four: not
     * available): the q, k, v projections' outputs (written by matmul16_out16), attention's output and the
     * gradients attention's backward writes are bf16, as torch's autocast and its flash-attention kernels keep them.
     * Each is the fp32 op on the exactly widened bf16 inputs, its bf16 outputs rounded to nearest even; semantics
     * and shapes otherwise those of the fp32 op.
     * rope_fwd_b16, rope_bwd_b16: rope_fwd, rope_bwd in place on bf16 x [N, H*HD] (HD even).
     * attn_fwd_b16: attn_fwd on bf16 q, k, v, writing bf16 out [N, NH*HD] and fp32 lse.
     * attn_bwd_b16: attn_bwd with bf16 q, k, v, the forward's bf16 out and a bf16 dout (the o projection's
     *               backward writes it in bf16, as torch's autocast keeps the gradient of the bf16 attention output;
     *               so D = rowsum(dout * out) sums the products of bf16 values, as flash attention's backward does),
     *               writing bf16 dq [N, NH*HD], dk, dv [N, NKV*HD] (they feed rope_bwd_b16 and the q, k, v
     *               projections' matmuls only); lse fp32. */
    void (*rope_fwd_b16)(uint16_t *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
    void (*rope_bwd_b16)(uint16_t *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
    /* rope_bwd_pack_b16 (optional, NULL: model.c runs rope_bwd_b16 in place and the q, k, v projections' backward
     * as three matmuls): rope_bwd of bf16 dq [N, NH*HD] and dk [N, NKV*HD] and dv [N, NKV*HD] as it is, into one
     * packed dqkv [N, (NH + 2 NKV) HD] (row n: dq's row, dk's, dv's; each value what rope_bwd_b16 in place leaves
     * in dq, dk), so that the projections' dX is one matmul over K = (NH + 2 NKV) HD instead of three, two of
     * which read and write an fp32 [N, C] result again, and their dW one matmul. dq, dk, dv are only read; dqkv
     * overlaps none of them. */
    void (*rope_bwd_pack_b16)(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv,
                              const int *pos, const float *cos, const float *sin, size_t N, int NH, int NKV, int HD);
    void (*attn_fwd_b16)(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                         const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts);
    void (*attn_bwd_b16)(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                         const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                         const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts);
    /* Prefix sharing's attention on autocast storage, in the layers' rows (NULL, or false returned: not available
     * here for these arguments, nothing done; model.c then gathers attention's layout and runs the two ops above).
     * Attention's layout (cu_seqlens over Natt = cu_seqlens[S] rows, cu_seqlens[0] = 0) is not materialised: its
     * row r is row xrow[r] of q, k, v, out, lse, dout, dq, dk, dv, tensors of Ntok rows (the layers' layout), and
     * the first skip[s] rows of sequence s are copies of the first skip[s] rows of sequence s - 1 (a pair's shared
     * prompt in its rejected sequence: data/pairs.h MicroBatch xrow, skip; xrow, skip backend int arrays).
     * attn_fwd_b16_rows: attn_fwd_b16 of that layout, each token's out and lse from its own row (a copy's are
     *                    neither formed nor written).
     * attn_bwd_b16_rows: attn_bwd_b16 of that layout with dout on each token's own row and zero on copies (whose
     *                    output no one read); each token's dq, dk, dv the fp32 sum of its rows' (the copies' dk, dv:
     *                    what the rejected response's queries send to the prompt's keys), rounded to bf16 once.
     *                    Every token row of dq, dk, dv is written. */
    /* attn_fwd_rows, attn_bwd_rows: the same on fp32 q, k, v, out, dout and gradients (exact storage, or the fp32
     *                    mode), each token's dk, dv the fp32 sum of its rows' (NULL, or false: gather, as above) */
    bool (*attn_fwd_rows)(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                          const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                          const AttnOpts *opts);
    bool (*attn_bwd_rows)(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                          const float *v, const float *out, const float *lse, size_t Ntok, const int *cu_seqlens,
                          int S, const int *xrow, const int *skip, int NH, int NKV, int HD, const AttnOpts *opts);
    bool (*attn_fwd_b16_rows)(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                              size_t Ntok, const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH,
                              int NKV, int HD, const AttnOpts *opts);
    bool (*attn_bwd_b16_rows)(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                              const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                              size_t Ntok, const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH,
                              int NKV, int HD, const AttnOpts *opts);
    /* Autocast storage of the LM head's logits (the same model.bf16_storage: autocast; NULL, both: not available):
     * the head's matmul writes bf16 logits (matmul16_out16), as torch's autocast does before the loss widens them
     * to fp32; the statistics and the gradient read them widened exactly. Shapes and semantics of xent_stats and
     * xent_bwd16.
     * xent_stats_b16: xent_stats on bf16 logits [N, V_loc].
     * xent_bwd_b16: in place, bf16 logits -> their bf16 d(logits) (xent_bwd on the widened logits, rounded to
     *               nearest even): the chunk needs no second buffer. */
    void (*xent_stats_b16)(float *maxv, float *sumexp, float *tgt, float *lsum, const uint16_t *logits,
                           const int *targets, size_t N, int V_loc, int V_off);
    void (*xent_bwd_b16)(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N,
                         int V_loc, int V_off);
    /* y[i] = bf16(x[i]) (round to nearest even) for n elements: the model's bf16 compute weights (model.h
     * model_refresh_weights16), made once per optimizer step for every matmul of the step. Works in either mode.
     * NULL: the backend has fp32 storage only. */
    void (*to_bf16)(uint16_t *y, const float *x, size_t n);

    /* y[i] += x[i] */
    void (*add)(float *y, const float *x, size_t n);
    /* x[i] *= s */
    void (*scale)(float *x, float s, size_t n);
    /* returns sum of x[i]^2, accumulated in double */
    double (*sumsq)(const float *x, size_t n);
    /* sumsq of `count` tensors at once: out[i] = sumsq(x[i], n[i]) bit for bit (x[i] backend memory, n[i] elements,
     * 0 allowed; out and the arrays x, n host memory). One round trip to a device backend instead of one per tensor:
     * the gradient norm over every parameter piece. NULL: backend_sumsq_many below loops over sumsq. */
    void (*sumsq_many)(double *out, const float *const *x, const size_t *n, int count);

    /* embedding of a vocabulary slice: out[n,:] = W[ids[n]-V_off,:] when V_off <= ids[n] < V_off+V_loc, else 0.
     * W is [V_loc, C]. writes out[N,C]. */
    void (*embed_fwd)(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc);
    /* dW[ids[n]-V_off,:] += dout[n,:] for ids in the slice. accumulates dW[V_loc,C]. */
    void (*embed_bwd)(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc);

    /* Row gather / scatter (the LM head works on the rows that predict a response token only; prefix sharing
     * copies the shared prompt's rows into attention's layout and back): rows[M] are row indices in [0, N)
     * (backend memory, like every int array), distinct for scatter_rows. gather_rows writes dst[M,C] with
     * dst[r,:] = src[rows[r],:] from src[N,C]; scatter_rows writes dst[rows[r],:] = src[r,:] into dst[N,C] and
     * leaves the other rows of dst untouched. Both copy bits: rows of bf16 storage of an even width w go through
     * as rows of w / 2 floats. */
    void (*gather_rows)(float *dst, const float *src, const int *rows, size_t M, size_t N, int C);
    void (*scatter_rows)(float *dst, const float *src, const int *rows, size_t M, size_t N, int C);
    /* Row sums by index (prefix sharing: a shared prompt token's gradient from its two copies in attention's
     * layout, and the LM head's row that predicts both responses' first token): for i < M,
     * dst[drows[i],:] += src[srows[i],:], dst[Nd,C], src[Ns,C], drows distinct in [0, Nd), srows in [0, Ns).
     * add_rows_b16: the same on bf16 storage, each sum formed in fp32 and rounded to bf16 (nearest even). */
    void (*add_rows)(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd,
                     size_t Ns, int C);
    void (*add_rows_b16)(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M, size_t Nd,
                         size_t Ns, int C);

    /* Linear biases (Qwen2's q, k and v projections). Rows of y and dy lie ld elements apart (ld >= D: a block of
     * D columns of a wider matrix, e.g. one of the q, k, v gradients RoPE's backward packs side by side).
     * bias_add: y[n, j] += b[j] for n < N, j < D. bias_add_b16: the same on bf16 storage, each sum formed in fp32
     * and rounded to bf16 (nearest even) once.
     * bias_grad: accumulates db[j] += sum_n dy[n, j], the column sums of dy[N, D] formed in double and rounded once
     * (an fp32 add into db). bias_grad_b16: of bf16 dy, widened exactly. b, db [D] fp32. */
    void (*bias_add)(float *y, const float *b, size_t N, int D, int ld);
    void (*bias_add_b16)(uint16_t *y, const float *b, size_t N, int D, int ld);
    void (*bias_grad)(float *db, const float *dy, size_t N, int D, int ld);
    void (*bias_grad_b16)(float *db, const uint16_t *dy, size_t N, int D, int ld);

    /* RMSNorm as HF Llama: rstd[n] = 1/sqrt(mean(x[n,:]^2) + eps), out = x * rstd * w.
     * writes out[N,C], rstd[N]. */
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps);
    /* accumulates dx[N,C] and dw[C] given dout[N,C] and the forward's x, w, rstd. */
    void (*rmsnorm_bwd)(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                        size_t N, int C);
    /* rmsnorm_bwd, and dx16[N,C] = bf16(dx) (nearest even) of the accumulated dx: in autocast storage the operand
     * of the next projection's backward (model.c), written as dx is, where a conversion pass would read dx again.
     * Bitwise rmsnorm_bwd then to_bf16. NULL where a backend has none. */
    void (*rmsnorm_bwd_out16)(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x, const float *w,
                              const float *rstd, size_t N, int C);
    /* RMSNorm on bf16 rows (autocast storage of Qwen3's q / k norms over each head): rmsnorm_fwd on x widened
     * exactly, out rounded to bf16 (nearest even), rstd fp32; rmsnorm_bwd_b16 WRITES dx[N,C] (bf16: rmsnorm_bwd's
     * d/dx from zero, rounded) and accumulates dw[C] (fp32) from bf16 dout and x. NULL where a backend has none
     * (the model then keeps such rows in fp32). */
    void (*rmsnorm_fwd_b16)(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C, float eps);
    void (*rmsnorm_bwd_b16)(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                            const float *rstd, size_t N, int C);

    /* Rotary embedding, HF "rotate_half" layout: for head h of row n and i < HD/2, with c = cos[pos[n]*HD/2 + i],
     * s = sin[...]: (x1, x2) = (x[i], x[i+HD/2]) -> (x1*c - x2*s, x2*c + x1*s). In place on x[N, H*HD].
     * pos[n] is the position of row n inside its own sequence. cos/sin tables are [max_pos, HD/2]. */
    void (*rope_fwd)(float *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
    /* the transpose (inverse rotation), in place on the gradient dx[N, H*HD]. */
    void (*rope_bwd)(float *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);

    /* Causal grouped-query attention over packed sequences, softmax(mask(f(scale q k^T))) v.
     * q[N, NH*HD], k, v [N, NKV*HD]; query head h reads kv head h / (NH/NKV).
     * opts (AttnOpts above; NULL: Llama's attention, scale 1/sqrt(HD), no cap, no window) sets the scale, the
     * soft-capping f(s) = softcap * tanh(s / softcap) of the scaled scores (Gemma 2) and a sliding window.
     * writes out[N, NH*HD] and lse[N*NH] (log-sum-exp of the (capped) scores of row n, head h at n*NH+h). */
    void (*attn_fwd)(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                     int S, int NH, int NKV, int HD, const AttnOpts *opts);
    /* writes dq[N,NH*HD], dk, dv [N,NKV*HD] from dout and the forward's q, k, v, out, lse (and the same opts). */
    void (*attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                     const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                     int NKV, int HD, const AttnOpts *opts);

    /* SwiGLU: out = silu(gate) * up, silu(x) = x / (1 + exp(-x)). writes out[N,FF]. */
    void (*swiglu_fwd)(float *out, const float *gate, const float *up, size_t N, int FF);
    /* writes dgate[N,FF], dup[N,FF]. */
    void (*swiglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                       int FF);

    /* GeGLU (Gemma's MLP): out = gelu_tanh(gate) * up with torch's tanh approximation gelu_tanh(x) =
     * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). writes out[N,FF]. */
    void (*geglu_fwd)(float *out, const float *gate, const float *up, size_t N, int FF);
    /* writes dgate[N,FF], dup[N,FF]. */
    void (*geglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF);

    /* Soft-capping (Gemma 2's final logits): x[i] = cap * tanh(x[i] / cap), in place on n elements. */
    void (*softcap_fwd)(float *x, size_t n, float cap);
    /* dx[i] *= 1 - tanh(x_pre[i] / cap)^2 with x_pre the input of softcap_fwd: in place on the gradient. */
    void (*softcap_bwd)(float *dx, const float *x_pre, size_t n, float cap);

    /* Log-softmax statistics of a vocabulary slice, the building block of (vocab-parallel) log-probs:
     * logits[N, V_loc] hold columns V_off .. V_off+V_loc-1 of the full vocabulary; targets[n] are global ids.
     * writes maxv[n] = max_j logits[n,j], sumexp[n] = sum_j exp(logits[n,j] - maxv[n]),
     * tgt[n] = logits[n, targets[n]-V_off] when the target lies in the slice, else 0, and lsum[n] = sum_j
     * logits[n,j] (the metrics' mean logit, logits/chosen: read in the same pass, so it costs no memory traffic;
     * an empty slice gives 0). All four [N] fp32, sums in double rounded once. */
    void (*xent_stats)(float *maxv, float *sumexp, float *tgt, float *lsum, const float *logits, const int *targets,
                       size_t N, int V_loc, int V_off);
    /* In place, logits -> d(loss)/d(logits): with lse[n] the full-vocabulary log-sum-exp and g[n] =
     * d(loss)/d(logp[n]) where logp[n] = logit[target] - lse[n]:
     * dlogits[n,j] = g[n] * ([j+V_off == targets[n]] - exp(logits[n,j] - lse[n])). */
    void (*xent_bwd)(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                     int V_off);
    /* xent_bwd with d(logits) rounded to bf16 storage into dlogits [N, V_loc] (bf16 elements) and logits left as
     * they are: the bf16 mode's LM-head gradient, which feeds only the head's dX and dW matmuls (backend.h's bf16
     * storage above; NULL with it). */
    void (*xent_bwd16)(uint16_t *dlogits, const float *logits, const float *lse, const float *g, const int *targets,
                       size_t N, int V_loc, int V_off);

    /* One AdamW step (torch semantics) on n elements with the gradient g[i] * gscale (an fp32 product: gradient
     * clipping's scale, applied as torch's clip_grad_norm_ does in place before the step, here without a pass of
     * its own; 1 leaves g as it is): p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), with bc1 = 1-b1^t, bc2 = 1-b2^t given by the caller.
     * g is read-only; p, m, v are updated in place. p16, when not NULL: p16[i] = bf16(p[i]) (round to nearest even)
     * of the updated p, n elements: the model's bf16 compute weights (model.h), made as the weights are written
     * instead of by a pass of their own. rows: NULL where g is dense (g[i], n elements); else g holds some rows of
     * the tensor and the rest have gradient zero (GradRows: the sparse embedding gradient, model.h), so the call
     * covers the whole tensor (n = its rows x rows->cols) and updates every element, as with a dense zero-filled g:
     * bitwise the same p, m, v, p16. */
    void (*adamw)(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m, float *v,
                  size_t n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2);
    /* adamw with gscale 1 that also writes sumsq(g) (accumulated in double; the CPU's bitwise its sumsq, a GPU's
     * within double rounding of it) to *sumsq (backend memory, one double; the caller downloads many at once): the
     * gradient norm formed as AdamW reads the gradients, when nothing clips them (optim_step_norm), instead of in a
     * pass of its own before the step. NULL: the caller runs sumsq_many first. */
    void (*adamw_sumsq)(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows, float *m,
                        float *v, size_t n, double lr, double b1, double b2, double eps, double wd, double bc1,
                        double bc2);
} Backend;

/* sumsq_many, or the loop over sumsq it stands for on a backend without it */
static inline void backend_sumsq_many(const Backend *be, double *out, const float *const *x, const size_t *n,
                                      int count) {
    if (be->sumsq_many) be->sumsq_many(out, x, n, count);
    else
        for (int i = 0; i < count; i++) out[i] = be->sumsq(x[i], n[i]);
}

/* The fp32 CPU reference backend (static storage; never freed). */
const Backend *backend_cpu(void);
/* The CPU kernels behind an emulated device memory, for tests (src/cpu/backend_strict.c): alloc hands out
 * addresses the host cannot touch (PROT_NONE) and keeps the data in a shadow block; every op checks that each
 * pointer argument lies, with its element count, inside a block it allocated (dies naming the op and the
 * argument), and upload / download check that their host side is not backend memory. host_addressable false. */
const Backend *backend_cpu_strict(void);

#endif
