#define _DEFAULT_SOURCE
/* backend_strict.c — the CPU kernels behind an emulated device memory (see backend.h, backend_cpu_strict).
 *
 * What a GPU backend needs from the rest of the program, checked on a machine without one:
 *   - alloc reserves an address range with no access rights (mmap PROT_NONE, never touched) and keeps the data in
 *     a separate shadow block; the "device pointer" it returns faults on any host load or store, so a host
 *     dereference of backend memory (or MPI handed backend memory) dies at once, and a SIGSEGV handler names the
 *     block before the previous handler (ASan's, MPI's or the default) takes over;
 *   - every op translates each pointer argument (floats and the int index arrays) into the shadow, after checking
 *     that it lies, with the element count the op will touch, inside one block this backend allocated; otherwise it
 *     dies naming the op, the argument and the block;
 *   - upload / download / copy / zero check their backend side the same way, and that the host side of upload and
 *     download is not backend memory.
 * The kernels are the CPU backend's, called on the shadow blocks (64-byte aligned like the CPU backend's), so the
 * numbers are the CPU backend's bit for bit. Allocation happens on one thread, as in the CPU backend.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "backend.h"
#include "util.h"

typedef struct {
    char *dev;          /* the address handed out: PROT_NONE, span bytes reserved */
    char *shadow;       /* where the data lives */
    size_t bytes, span;
    char what[56];
} Block;

static Block *g_blocks; /* sorted by dev */
static size_t g_n, g_cap, g_in_use;
static const Backend *g_cpu;
static struct sigaction g_old_segv;
static int g_segv_installed;

/* the block whose reserved span holds p, or NULL */
static Block *find_span(const void *p) {
    size_t lo = 0, hi = g_n;
    uintptr_t a = (uintptr_t)p;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        Block *b = &g_blocks[mid];
        if (a < (uintptr_t)b->dev) hi = mid;
        else if (a >= (uintptr_t)b->dev + b->span) lo = mid + 1;
        else return b;
    }
    return NULL;
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    Block *b = find_span(si->si_addr);
    if (b) {
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "simpo_dist: strict backend: the host touched backend memory at %p (block '%s', offset %zu "
                         "of %zu bytes); go through upload/download\n",
                         si->si_addr, b->what, (size_t)((char *)si->si_addr - b->dev), b->bytes);
        if (n > 0 && write(2, msg, (size_t)n) < 0) { /* nothing more to do */ }
    }
    /* hand the fault to whoever handled it before (ASan, MPI or the default): the access faults again on return */
    sigaction(sig, &g_old_segv, NULL);
}

static void install_segv(void) {
    if (g_segv_installed) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    g_segv_installed = 1;
}

static void *strict_alloc(size_t bytes, const char *what) {
    if (!g_cpu) g_cpu = backend_cpu();
    install_segv();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t need = bytes ? bytes : 1;
    if (need > SIZE_MAX - 2 * page) sd_die("memory", "cannot allocate %zu bytes for %s", bytes, what);
    size_t span = (need + page - 1) / page * page + page; /* a guard page keeps blocks from touching */
    void *dev = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *shadow = NULL;
    if (dev == MAP_FAILED || posix_memalign(&shadow, 64, need) != 0)
        sd_die("memory", "strict backend: cannot allocate %zu bytes for %s", bytes, what);
    memset(shadow, 0, need);
    if (g_n == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 64;
        g_blocks = sd_realloc(g_blocks, g_cap * sizeof *g_blocks, "strict backend registry");
    }
    size_t at = g_n;
    while (at > 0 && (uintptr_t)g_blocks[at - 1].dev > (uintptr_t)dev) at--;
    memmove(&g_blocks[at + 1], &g_blocks[at], (g_n - at) * sizeof *g_blocks);
    Block *b = &g_blocks[at];
    b->dev = dev;
    b->shadow = shadow;
    b->bytes = bytes;
    b->span = span;
    snprintf(b->what, sizeof b->what, "%s", what ? what : "?");
    g_n++;
    g_in_use += bytes;
    return dev;
}

static void strict_free(void *p) {
    if (!p) return;
    Block *b = find_span(p);
    if (!b || (char *)p != b->dev)
        sd_die("strict backend", "free(%p): not the start of a block this backend allocated%s%s%s", p,
               b ? " (inside '" : "", b ? b->what : "", b ? "')" : "");
    g_in_use -= b->bytes;
    munmap(b->dev, b->span);
    free(b->shadow);
    size_t i = (size_t)(b - g_blocks);
    memmove(&g_blocks[i], &g_blocks[i + 1], (g_n - i - 1) * sizeof *g_blocks);
    g_n--;
    if (g_n == 0) {
        free(g_blocks);
        g_blocks = NULL;
        g_cap = 0;
    }
}

static size_t strict_bytes_in_use(void) { return g_in_use; }

/* The shadow address of backend pointer p, which the op will access for bytes bytes (elements of esz bytes). */
static void *xlate(const void *p, size_t bytes, size_t esz, const char *op, const char *arg) {
    if (!p) {
        if (bytes == 0) return NULL;
        sd_die("strict backend", "%s: argument '%s' is NULL (%zu bytes)", op, arg, bytes);
    }
    Block *b = find_span(p);
    if (!b)
        sd_die("strict backend", "%s: argument '%s' (%p) is not memory this backend allocated (host memory handed "
               "to an op?)", op, arg, p);
    size_t off = (size_t)((const char *)p - b->dev);
    if (off > b->bytes || bytes > b->bytes - off)
        sd_die("strict backend", "%s: argument '%s' needs %zu bytes at offset %zu of block '%s', which holds %zu", op,
               arg, bytes, off, b->what, b->bytes);
    if (esz > 1 && (uintptr_t)p % esz)
        sd_die("strict backend", "%s: argument '%s' (%p, block '%s') is not aligned to its %zu-byte elements", op, arg,
               p, b->what, esz);
    return b->shadow + off;
}
static size_t nbytes(size_t n, size_t esz, const char *op) { return sd_mul_size(n, esz, op); }
#define F(p, n, arg) ((float *)xlate((p), nbytes((n), sizeof(float), OP), sizeof(float), OP, (arg)))
#define I(p, n, arg) ((int *)xlate((p), nbytes((n), sizeof(int), OP), sizeof(int), OP, (arg)))
#define H(p, n, arg) ((uint16_t *)xlate((p), nbytes((n), sizeof(uint16_t), OP), sizeof(uint16_t), OP, (arg)))

/* the host side of a transfer must not be (or overlap) backend memory */
static void host_side(const void *h, size_t bytes, const char *op, const char *arg) {
    if (!bytes) return;
    uintptr_t a = (uintptr_t)h, e = a + bytes;
    for (size_t i = 0; i < g_n; i++) {
        const Block *b = &g_blocks[i];
        if (a < (uintptr_t)b->dev + b->span && e > (uintptr_t)b->dev)
            sd_die("strict backend", "%s: argument '%s' (%p) is backend memory (block '%s'), expected host memory",
                   op, arg, h, b->what);
    }
}

static void strict_zero(void *p, size_t bytes) {
    const char *OP = "zero";
    void *s = xlate(p, bytes, 1, OP, "p");
    if (bytes) memset(s, 0, bytes);
}
static void strict_copy(void *dst, const void *src, size_t bytes) {
    const char *OP = "copy";
    void *d = xlate(dst, bytes, 1, OP, "dst");
    const void *s = xlate(src, bytes, 1, OP, "src");
    if (bytes && d != s) memmove(d, s, bytes);
}
static void strict_upload(void *dst, const void *host_src, size_t bytes) {
    const char *OP = "upload";
    void *d = xlate(dst, bytes, 1, OP, "dst");
    host_side(host_src, bytes, OP, "host_src");
    if (bytes) memcpy(d, host_src, bytes);
}
static void strict_download(void *host_dst, const void *src, size_t bytes) {
    const char *OP = "download";
    host_side(host_dst, bytes, OP, "host_dst");
    const void *s = xlate(src, bytes, 1, OP, "src");
    if (bytes) memcpy(host_dst, s, bytes);
}

static void strict_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                          float alpha, float beta) {
    const char *OP = "matmul";
    if (M < 0 || N < 0 || K < 0) sd_die("strict backend", "matmul: negative size M %d N %d K %d", M, N, K);
    size_t m = (size_t)M, n = (size_t)N, k = (size_t)K;
    g_cpu->matmul(F(C, m * n, "C"), F(A, m * k, "A"), F(B, k * n, "B"), M, N, K, transA, transB, alpha, beta);
}
/* bf16 activation storage: A [m x k] and B [k x n] checked and translated, of 2-byte elements where a16 / b16 say so
 * (matmul16 and its variants); dies on a negative size */
static void strict_operands16(const char *OP, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                              const void **a, const void **b) {
    if (M < 0 || N < 0 || K < 0) sd_die("strict backend", "%s: negative size M %d N %d K %d", OP, M, N, K);
    size_t m = (size_t)M, n = (size_t)N, k = (size_t)K;
    *a = a16 ? (const void *)H(A, m * k, "A") : (const void *)F(A, m * k, "A");
    *b = b16 ? (const void *)H(B, k * n, "B") : (const void *)F(B, k * n, "B");
}
static void strict_matmul16(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                            bool transA, bool transB, float alpha, float beta) {
    const char *OP = "matmul16";
    const void *a, *b;
    strict_operands16(OP, A, a16, B, b16, M, N, K, &a, &b);
    size_t m = (size_t)M, n = (size_t)N;
    g_cpu->matmul16(F(C, m * n, "C"), a, a16, b, b16, M, N, K, transA, transB, alpha, beta);
}
static void strict_matmul16_res(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M,
                                int N, int K, bool transA, bool transB) {
    const char *OP = "matmul16_res";
    const void *a, *b;
    strict_operands16(OP, A, a16, B, b16, M, N, K, &a, &b);
    size_t m = (size_t)M, n = (size_t)N;
    float *d = F(D, m * n, "D");
    const float *r = F(R, m * n, "R");
    if (m * n > 0 && d < r + m * n && r < d + m * n) sd_die("strict backend", "matmul16_res: D and R overlap");
    g_cpu->matmul16_res(d, r, a, a16, b, b16, M, N, K, transA, transB);
}
static void strict_matmul16_out16(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                                  bool transA, bool transB) {
    const char *OP = "matmul16_out16";
    const void *a, *b;
    strict_operands16(OP, A, a16, B, b16, M, N, K, &a, &b);
    size_t m = (size_t)M, n = (size_t)N;
    g_cpu->matmul16_out16(H(C, m * n, "C"), a, a16, b, b16, M, N, K, transA, transB);
}
/* autocast storage's gated activations: gate, up (and out, dgate, dup) of 2-byte elements */
typedef void (*GluFwdB16)(uint16_t *, const uint16_t *, const uint16_t *, size_t, int);
typedef void (*GluBwdB16)(uint16_t *, uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *, size_t,
                          int);
static void strict_glu_fwd_b16(const char *OP, GluFwdB16 fwd, uint16_t *out, const uint16_t *gate,
                               const uint16_t *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    fwd(H(out, n, "out"), H(gate, n, "gate"), H(up, n, "up"), N, FF);
}
static void strict_glu_bwd_b16(const char *OP, GluBwdB16 bwd, uint16_t *dg, uint16_t *du, const uint16_t *dout,
                               const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    bwd(H(dg, n, "dgate"), H(du, n, "dup"), H(dout, n, "dout"), H(gate, n, "gate"), H(up, n, "up"), N, FF);
}
typedef void (*GluBwdPackB16)(uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *, size_t, int);
static void strict_glu_bwd_pack_b16(const char *OP, GluBwdPackB16 bwd, uint16_t *dgu, const uint16_t *dout,
                                    const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    bwd(H(dgu, 2 * n, "dgu"), H(dout, n, "dout"), H(gate, n, "gate"), H(up, n, "up"), N, FF);
}
static void strict_swiglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up,
                                       size_t N, int FF) {
    strict_glu_bwd_pack_b16("swiglu_bwd_pack_b16", g_cpu->swiglu_bwd_pack_b16, dgu, dout, gate, up, N, FF);
}
static void strict_geglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up,
                                      size_t N, int FF) {
    strict_glu_bwd_pack_b16("geglu_bwd_pack_b16", g_cpu->geglu_bwd_pack_b16, dgu, dout, gate, up, N, FF);
}
static void strict_swiglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    strict_glu_fwd_b16("swiglu_fwd_b16", g_cpu->swiglu_fwd_b16, out, gate, up, N, FF);
}
static void strict_geglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    strict_glu_fwd_b16("geglu_fwd_b16", g_cpu->geglu_fwd_b16, out, gate, up, N, FF);
}
static void strict_swiglu_bwd_b16(uint16_t *dg, uint16_t *du, const uint16_t *dout, const uint16_t *gate,
                                  const uint16_t *up, size_t N, int FF) {
    strict_glu_bwd_b16("swiglu_bwd_b16", g_cpu->swiglu_bwd_b16, dg, du, dout, gate, up, N, FF);
}
static void strict_geglu_bwd_b16(uint16_t *dg, uint16_t *du, const uint16_t *dout, const uint16_t *gate,
                                 const uint16_t *up, size_t N, int FF) {
    strict_glu_bwd_b16("geglu_bwd_b16", g_cpu->geglu_bwd_b16, dg, du, dout, gate, up, N, FF);
}
static void strict_to_bf16(uint16_t *y, const float *x, size_t n) {
    const char *OP = "to_bf16";
    g_cpu->to_bf16(H(y, n, "y"), F(x, n, "x"), n);
}
/* the bf16-gradient backward of a gated activation (swiglu_bwd16, geglu_bwd16): dgate, dup 2-byte elements */
typedef void (*GluBwd16)(uint16_t *, uint16_t *, const float *, const float *, const float *, size_t, int);
static void strict_glu_bwd16(const char *OP, GluBwd16 bwd, uint16_t *dg, uint16_t *du, const float *dout,
                             const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    bwd(H(dg, n, "dgate"), H(du, n, "dup"), F(dout, n, "dout"), F(gate, n, "gate"), F(up, n, "up"), N, FF);
}
static void strict_swiglu_bwd16(uint16_t *dg, uint16_t *du, const float *dout, const float *gate, const float *up,
                                size_t N, int FF) {
    strict_glu_bwd16("swiglu_bwd16", g_cpu->swiglu_bwd16, dg, du, dout, gate, up, N, FF);
}
static void strict_geglu_bwd16(uint16_t *dg, uint16_t *du, const float *dout, const float *gate, const float *up,
                               size_t N, int FF) {
    strict_glu_bwd16("geglu_bwd16", g_cpu->geglu_bwd16, dg, du, dout, gate, up, N, FF);
}
static void strict_xent_bwd16(uint16_t *dl, const float *logits, const float *lse, const float *g, const int *targets,
                              size_t N, int V_loc, int V_off) {
    const char *OP = "xent_bwd16";
    size_t n = N * (size_t)(V_loc > 0 ? V_loc : 0);
    g_cpu->xent_bwd16(H(dl, n, "dlogits"), F(logits, n, "logits"), F(lse, N, "lse"), F(g, N, "g"),
                      I(targets, N, "targets"), N, V_loc, V_off);
}
static void strict_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C,
                                 float eps) {
    const char *OP = "rmsnorm_fwd16";
    size_t nc = N * (size_t)C;
    g_cpu->rmsnorm_fwd16(H(out, nc, "out"), F(rstd, N, "rstd"), F(x, nc, "x"), F(w, (size_t)C, "w"), N, C, eps);
}
static void strict_swiglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    const char *OP = "swiglu_fwd16";
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    g_cpu->swiglu_fwd16(H(out, n, "out"), F(gate, n, "gate"), F(up, n, "up"), N, FF);
}
static void strict_geglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    const char *OP = "geglu_fwd16";
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    g_cpu->geglu_fwd16(H(out, n, "out"), F(gate, n, "gate"), F(up, n, "up"), N, FF);
}
static void strict_add(float *y, const float *x, size_t n) {
    const char *OP = "add";
    g_cpu->add(F(y, n, "y"), F(x, n, "x"), n);
}
static void strict_scale(float *x, float s, size_t n) {
    const char *OP = "scale";
    g_cpu->scale(F(x, n, "x"), s, n);
}
static double strict_sumsq(const float *x, size_t n) {
    const char *OP = "sumsq";
    return g_cpu->sumsq(F(x, n, "x"), n);
}
static void strict_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    const char *OP = "gather_rows";
    g_cpu->gather_rows(F(dst, M * (size_t)C, "dst"), F(src, N * (size_t)C, "src"), I(rows, M, "rows"), M, N, C);
}
static void strict_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    const char *OP = "scatter_rows";
    g_cpu->scatter_rows(F(dst, N * (size_t)C, "dst"), F(src, M * (size_t)C, "src"), I(rows, M, "rows"), M, N, C);
}
static void strict_add_rows(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd,
                            size_t Ns, int C) {
    const char *OP = "add_rows";
    g_cpu->add_rows(F(dst, Nd * (size_t)C, "dst"), I(drows, M, "drows"), F(src, Ns * (size_t)C, "src"),
                    I(srows, M, "srows"), M, Nd, Ns, C);
}
static void strict_add_rows_b16(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M,
                                size_t Nd, size_t Ns, int C) {
    const char *OP = "add_rows_b16";
    g_cpu->add_rows_b16(H(dst, Nd * (size_t)C, "dst"), I(drows, M, "drows"), H(src, Ns * (size_t)C, "src"),
                        I(srows, M, "srows"), M, Nd, Ns, C);
}
/* bias ops: N rows of D elements, ld apart (the last row needs only its D); dies on D < 0 or ld < D */
static size_t bias_extent(const char *OP, size_t N, int D, int ld) {
    if (D < 0 || ld < D) sd_die("strict backend", "%s: D %d, ld %d (expected 0 <= D <= ld)", OP, D, ld);
    return N ? sd_mul_size(N - 1, (size_t)ld, OP) + (size_t)D : 0;
}
static void strict_bias_add(float *y, const float *b, size_t N, int D, int ld) {
    const char *OP = "bias_add";
    size_t ny = bias_extent(OP, N, D, ld);
    g_cpu->bias_add(F(y, ny, "y"), F(b, (size_t)D, "b"), N, D, ld);
}
static void strict_bias_add_b16(uint16_t *y, const float *b, size_t N, int D, int ld) {
    const char *OP = "bias_add_b16";
    size_t ny = bias_extent(OP, N, D, ld);
    g_cpu->bias_add_b16(H(y, ny, "y"), F(b, (size_t)D, "b"), N, D, ld);
}
static void strict_bias_grad(float *db, const float *dy, size_t N, int D, int ld) {
    const char *OP = "bias_grad";
    size_t ny = bias_extent(OP, N, D, ld);
    g_cpu->bias_grad(F(db, (size_t)D, "db"), F(dy, ny, "dy"), N, D, ld);
}
static void strict_bias_grad_b16(float *db, const uint16_t *dy, size_t N, int D, int ld) {
    const char *OP = "bias_grad_b16";
    size_t ny = bias_extent(OP, N, D, ld);
    g_cpu->bias_grad_b16(F(db, (size_t)D, "db"), H(dy, ny, "dy"), N, D, ld);
}
static void strict_embed_fwd(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc) {
    const char *OP = "embed_fwd";
    g_cpu->embed_fwd(F(out, N * (size_t)C, "out"), I(ids, N, "ids"), F(W, (size_t)V_loc * (size_t)C, "W"), N, C,
                     V_off, V_loc);
}
static void strict_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc) {
    const char *OP = "embed_bwd";
    g_cpu->embed_bwd(F(dW, (size_t)V_loc * (size_t)C, "dW"), F(dout, N * (size_t)C, "dout"), I(ids, N, "ids"), N, C,
                     V_off, V_loc);
}
static void strict_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    const char *OP = "rmsnorm_fwd";
    size_t nc = N * (size_t)C;
    g_cpu->rmsnorm_fwd(F(out, nc, "out"), F(rstd, N, "rstd"), F(x, nc, "x"), F(w, (size_t)C, "w"), N, C, eps);
}
static void strict_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                               const float *rstd, size_t N, int C) {
    const char *OP = "rmsnorm_bwd";
    size_t nc = N * (size_t)C;
    g_cpu->rmsnorm_bwd(F(dx, nc, "dx"), F(dw, (size_t)C, "dw"), F(dout, nc, "dout"), F(x, nc, "x"),
                       F(w, (size_t)C, "w"), F(rstd, N, "rstd"), N, C);
}
static void strict_rmsnorm_bwd_out16(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x,
                                     const float *w, const float *rstd, size_t N, int C) {
    const char *OP = "rmsnorm_bwd_out16";
    size_t nc = N * (size_t)C;
    g_cpu->rmsnorm_bwd_out16(F(dx, nc, "dx"), H(dx16, nc, "dx16"), F(dw, (size_t)C, "dw"), F(dout, nc, "dout"),
                             F(x, nc, "x"), F(w, (size_t)C, "w"), F(rstd, N, "rstd"), N, C);
}
static void strict_rmsnorm_fwd_b16(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C,
                                   float eps) {
    const char *OP = "rmsnorm_fwd_b16";
    size_t nc = N * (size_t)C;
    g_cpu->rmsnorm_fwd_b16(H(out, nc, "out"), F(rstd, N, "rstd"), H(x, nc, "x"), F(w, (size_t)C, "w"), N, C, eps);
}
static void strict_rmsnorm_bwd_b16(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                                   const float *rstd, size_t N, int C) {
    const char *OP = "rmsnorm_bwd_b16";
    size_t nc = N * (size_t)C;
    g_cpu->rmsnorm_bwd_b16(H(dx, nc, "dx"), F(dw, (size_t)C, "dw"), H(dout, nc, "dout"), H(x, nc, "x"),
                           F(w, (size_t)C, "w"), F(rstd, N, "rstd"), N, C);
}
/* rope: the tables must hold the rows of every position the batch uses (pos is read from the shadow) */
static void rope_tables(const char *OP, const int *pos, const float *cs, const float *sn, size_t N, int HD,
                        const int **ps, const float **css, const float **sns) {
    *ps = I(pos, N, "pos");
    size_t rows = 0;
    for (size_t n = 0; n < N; n++) {
        if ((*ps)[n] < 0) sd_die("strict backend", "%s: pos[%zu] = %d is negative", OP, n, (*ps)[n]);
        if ((size_t)(*ps)[n] + 1 > rows) rows = (size_t)(*ps)[n] + 1;
    }
    *css = F(cs, rows * (size_t)(HD / 2), "cos");
    *sns = F(sn, rows * (size_t)(HD / 2), "sin");
}
static void rope_args(const char *OP, float *x, const int *pos, const float *cs, const float *sn, size_t N, int H,
                      int HD, float **xs, const int **ps, const float **css, const float **sns) {
    *xs = F(x, N * (size_t)H * (size_t)HD, "x");
    rope_tables(OP, pos, cs, sn, N, HD, ps, css, sns);
}
static void strict_rope_fwd(float *x, const int *pos, const float *cs, const float *sn, size_t N, int H, int HD) {
    float *xs;
    const int *ps;
    const float *css, *sns;
    rope_args("rope_fwd", x, pos, cs, sn, N, H, HD, &xs, &ps, &css, &sns);
    g_cpu->rope_fwd(xs, ps, css, sns, N, H, HD);
}
static void strict_rope_bwd(float *dx, const int *pos, const float *cs, const float *sn, size_t N, int H, int HD) {
    float *xs;
    const int *ps;
    const float *css, *sns;
    rope_args("rope_bwd", dx, pos, cs, sn, N, H, HD, &xs, &ps, &css, &sns);
    g_cpu->rope_bwd(xs, ps, css, sns, N, H, HD);
}
/* autocast storage: rope on bf16 x */
typedef void (*RopeB16)(uint16_t *, const int *, const float *, const float *, size_t, int, int);
static void strict_rope_b16(const char *OP, RopeB16 rope, uint16_t *x, const int *pos, const float *cs,
                            const float *sn, size_t N, int H, int HD) {
    const int *ps;
    const float *css, *sns;
    rope_tables(OP, pos, cs, sn, N, HD, &ps, &css, &sns);
    rope(H(x, N * (size_t)H * (size_t)HD, "x"), ps, css, sns, N, H, HD);
}
static void strict_rope_fwd_b16(uint16_t *x, const int *pos, const float *cs, const float *sn, size_t N, int H,
                                int HD) {
    strict_rope_b16("rope_fwd_b16", g_cpu->rope_fwd_b16, x, pos, cs, sn, N, H, HD);
}
static void strict_rope_bwd_b16(uint16_t *dx, const int *pos, const float *cs, const float *sn, size_t N, int H,
                                int HD) {
    strict_rope_b16("rope_bwd_b16", g_cpu->rope_bwd_b16, dx, pos, cs, sn, N, H, HD);
}
static void strict_rope_bwd_pack_b16(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv,
                                     const int *pos, const float *cs, const float *sn, size_t N, int NH, int NKV,
                                     int HD) {
    const char *OP = "rope_bwd_pack_b16";
    const int *ps;
    const float *css, *sns;
    rope_tables(OP, pos, cs, sn, N, HD, &ps, &css, &sns);
    size_t qd = (size_t)(NH > 0 ? NH : 0) * (size_t)(HD > 0 ? HD : 0),
           kd = (size_t)(NKV > 0 ? NKV : 0) * (size_t)(HD > 0 ? HD : 0);
    g_cpu->rope_bwd_pack_b16(H(dqkv, N * (qd + 2 * kd), "dqkv"), H(dq, N * qd, "dq"), H(dk, N * kd, "dk"),
                             H(dv, N * kd, "dv"), ps, css, sns, N, NH, NKV, HD);
}
/* tokens of a packed batch: cu_seqlens (read from the shadow) must start at 0 and not decrease */
static size_t packed_tokens(const char *OP, const int *cu, int S) {
    if (S < 0) sd_die("strict backend", "%s: %d sequences", OP, S);
    if (cu[0] != 0) sd_die("strict backend", "%s: cu_seqlens[0] = %d, expected 0", OP, cu[0]);
    for (int s = 0; s < S; s++)
        if (cu[s + 1] < cu[s]) sd_die("strict backend", "%s: cu_seqlens decreases at %d", OP, s + 1);
    return (size_t)cu[S];
}
/* attention options are host memory (a small struct of scalars), checked for sense rather than translated */
static void attn_opts_check(const char *OP, const AttnOpts *opts) {
    if (!opts) return;
    host_side(opts, sizeof *opts, OP, "opts");
    if (!isfinite(opts->scale) || !isfinite(opts->softcap) || opts->softcap < 0.0f || opts->window < 0)
        sd_die("strict backend", "%s: options scale %g, softcap %g, window %d (expected finite, softcap >= 0, "
               "window >= 0)", OP, (double)opts->scale, (double)opts->softcap, opts->window);
}
/* what every attention op checks first: cu_seqlens (translated, returned), the tokens N it packs, the row widths
 * QD = NH HD and KD = NKV HD, the options */
static const int *attn_args(const char *OP, const int *cu_seqlens, int S, int NH, int NKV, int HD,
                            const AttnOpts *opts, size_t *N, size_t *QD, size_t *KD) {
    const int *cu = I(cu_seqlens, (size_t)(S < 0 ? 0 : S) + 1, "cu_seqlens");
    *N = packed_tokens(OP, cu, S), *QD = (size_t)NH * (size_t)HD, *KD = (size_t)NKV * (size_t)HD;
    attn_opts_check(OP, opts);
    return cu;
}
static void strict_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                            const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    const char *OP = "attn_fwd";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    g_cpu->attn_fwd(F(out, N * QD, "out"), F(lse, N * (size_t)NH, "lse"), F(q, N * QD, "q"), F(k, N * KD, "k"),
                    F(v, N * KD, "v"), cu, S, NH, NKV, HD, opts);
}
static void strict_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                            const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                            int NKV, int HD, const AttnOpts *opts) {
    const char *OP = "attn_bwd";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    g_cpu->attn_bwd(F(dq, N * QD, "dq"), F(dk, N * KD, "dk"), F(dv, N * KD, "dv"), F(dout, N * QD, "dout"),
                    F(q, N * QD, "q"), F(k, N * KD, "k"), F(v, N * KD, "v"), F(out, N * QD, "out"),
                    F(lse, N * (size_t)NH, "lse"), cu, S, NH, NKV, HD, opts);
}
/* autocast storage: q, k, v and out of 2-byte elements */
static void strict_attn_fwd_b16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    const char *OP = "attn_fwd_b16";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    g_cpu->attn_fwd_b16(H(out, N * QD, "out"), F(lse, N * (size_t)NH, "lse"), H(q, N * QD, "q"), H(k, N * KD, "k"),
                        H(v, N * KD, "v"), cu, S, NH, NKV, HD, opts);
}
static void strict_attn_bwd_b16(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                                const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                                const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    const char *OP = "attn_bwd_b16";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    g_cpu->attn_bwd_b16(H(dq, N * QD, "dq"), H(dk, N * KD, "dk"), H(dv, N * KD, "dv"), H(dout, N * QD, "dout"),
                        H(q, N * QD, "q"), H(k, N * KD, "k"), H(v, N * KD, "v"), H(out, N * QD, "out"),
                        F(lse, N * (size_t)NH, "lse"), cu, S, NH, NKV, HD, opts);
}
/* prefix sharing's attention in the layers' rows: q, k, v, out, lse, dout and the gradients of Ntok rows; xrow of
 * Natt = cu_seqlens[S], skip of S */
static bool strict_attn_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Nt,
                                 const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV,
                                 int HD, const AttnOpts *opts) {
    const char *OP = "attn_fwd_rows";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    return g_cpu->attn_fwd_rows(F(out, Nt * QD, "out"), F(lse, Nt * (size_t)NH, "lse"), F(q, Nt * QD, "q"),
                                F(k, Nt * KD, "k"), F(v, Nt * KD, "v"), Nt, cu, S, I(xrow, N, "xrow"),
                                I(skip, (size_t)(S < 0 ? 0 : S), "skip"), NH, NKV, HD, opts);
}
static bool strict_attn_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                 const float *v, const float *out, const float *lse, size_t Nt,
                                 const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV,
                                 int HD, const AttnOpts *opts) {
    const char *OP = "attn_bwd_rows";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    return g_cpu->attn_bwd_rows(F(dq, Nt * QD, "dq"), F(dk, Nt * KD, "dk"), F(dv, Nt * KD, "dv"),
                                F(dout, Nt * QD, "dout"), F(q, Nt * QD, "q"), F(k, Nt * KD, "k"), F(v, Nt * KD, "v"),
                                F(out, Nt * QD, "out"), F(lse, Nt * (size_t)NH, "lse"), Nt, cu, S,
                                I(xrow, N, "xrow"), I(skip, (size_t)(S < 0 ? 0 : S), "skip"), NH, NKV, HD, opts);
}
static bool strict_attn_fwd_b16_rows(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k,
                                     const uint16_t *v, size_t Nt, const int *cu_seqlens, int S, const int *xrow,
                                     const int *skip, int NH, int NKV, int HD, const AttnOpts *opts) {
    const char *OP = "attn_fwd_b16_rows";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    return g_cpu->attn_fwd_b16_rows(H(out, Nt * QD, "out"), F(lse, Nt * (size_t)NH, "lse"), H(q, Nt * QD, "q"),
                                    H(k, Nt * KD, "k"), H(v, Nt * KD, "v"), Nt, cu, S, I(xrow, N, "xrow"),
                                    I(skip, (size_t)(S < 0 ? 0 : S), "skip"), NH, NKV, HD, opts);
}
static bool strict_attn_bwd_b16_rows(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout,
                                     const uint16_t *q, const uint16_t *k, const uint16_t *v, const uint16_t *out,
                                     const float *lse, size_t Nt, const int *cu_seqlens, int S, const int *xrow,
                                     const int *skip, int NH, int NKV, int HD, const AttnOpts *opts) {
    const char *OP = "attn_bwd_b16_rows";
    size_t N, QD, KD;
    const int *cu = attn_args(OP, cu_seqlens, S, NH, NKV, HD, opts, &N, &QD, &KD);
    return g_cpu->attn_bwd_b16_rows(H(dq, Nt * QD, "dq"), H(dk, Nt * KD, "dk"), H(dv, Nt * KD, "dv"),
                                    H(dout, Nt * QD, "dout"), H(q, Nt * QD, "q"), H(k, Nt * KD, "k"),
                                    H(v, Nt * KD, "v"), H(out, Nt * QD, "out"), F(lse, Nt * (size_t)NH, "lse"), Nt,
                                    cu, S, I(xrow, N, "xrow"), I(skip, (size_t)(S < 0 ? 0 : S), "skip"), NH, NKV, HD,
                                    opts);
}
static void strict_swiglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    const char *OP = "swiglu_fwd";
    size_t n = N * (size_t)FF;
    g_cpu->swiglu_fwd(F(out, n, "out"), F(gate, n, "gate"), F(up, n, "up"), N, FF);
}
static void strict_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                              size_t N, int FF) {
    const char *OP = "swiglu_bwd";
    size_t n = N * (size_t)FF;
    g_cpu->swiglu_bwd(F(dgate, n, "dgate"), F(dup, n, "dup"), F(dout, n, "dout"), F(gate, n, "gate"), F(up, n, "up"),
                      N, FF);
}
static void strict_xent_stats(float *maxv, float *sumexp, float *tgt, float *lsum, const float *logits,
                              const int *targets, size_t N, int V_loc, int V_off) {
    const char *OP = "xent_stats";
    g_cpu->xent_stats(F(maxv, N, "maxv"), F(sumexp, N, "sumexp"), F(tgt, N, "tgt"), F(lsum, N, "lsum"),
                      F(logits, N * (size_t)V_loc, "logits"), I(targets, N, "targets"), N, V_loc, V_off);
}
static void strict_xent_bwd(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                            int V_off) {
    const char *OP = "xent_bwd";
    g_cpu->xent_bwd(F(logits, N * (size_t)V_loc, "logits"), F(lse, N, "lse"), F(g, N, "g"),
                    I(targets, N, "targets"), N, V_loc, V_off);
}
static void strict_xent_stats_b16(float *maxv, float *sumexp, float *tgt, float *lsum, const uint16_t *logits,
                                  const int *targets, size_t N, int V_loc, int V_off) {
    const char *OP = "xent_stats_b16";
    g_cpu->xent_stats_b16(F(maxv, N, "maxv"), F(sumexp, N, "sumexp"), F(tgt, N, "tgt"), F(lsum, N, "lsum"),
                          H(logits, N * (size_t)V_loc, "logits"), I(targets, N, "targets"), N, V_loc, V_off);
}
static void strict_xent_bwd_b16(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N,
                                int V_loc, int V_off) {
    const char *OP = "xent_bwd_b16";
    g_cpu->xent_bwd_b16(H(logits, N * (size_t)V_loc, "logits"), F(lse, N, "lse"), F(g, N, "g"),
                        I(targets, N, "targets"), N, V_loc, V_off);
}
/* rows: g holds rows->held rows and the map a row index per row of the tensor */
static const GradRows *strict_rows(const GradRows *rows, size_t n, GradRows *out, const char *OP) {
    if (!rows) return NULL;
    *out = *rows;
    out->map = I(rows->map, n / rows->cols, "rows->map");
    return out;
}
static void strict_adamw(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m,
                         float *v, size_t n, double lr, double b1, double b2, double eps, double wd, double bc1,
                         double bc2) {
    const char *OP = "adamw";
    GradRows r;
    const size_t ng = rows ? rows->held * rows->cols : n;
    g_cpu->adamw(F(p, n, "p"), p16 ? H(p16, n, "p16") : NULL, F(g, ng, "g"), strict_rows(rows, n, &r, OP), gscale,
                 F(m, n, "m"), F(v, n, "v"), n, lr, b1, b2, eps, wd, bc1, bc2);
}
static void strict_adamw_sumsq(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows,
                               float *m, float *v, size_t n, double lr, double b1, double b2, double eps, double wd,
                               double bc1, double bc2) {
    const char *OP = "adamw_sumsq";
    GradRows r;
    const size_t ng = rows ? rows->held * rows->cols : n;
    g_cpu->adamw_sumsq((double *)xlate(sumsq, sizeof(double), sizeof(double), OP, "sumsq"), F(p, n, "p"),
                       p16 ? H(p16, n, "p16") : NULL, F(g, ng, "g"), strict_rows(rows, n, &r, OP), F(m, n, "m"),
                       F(v, n, "v"), n, lr, b1, b2, eps, wd, bc1, bc2);
}

static void strict_geglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    const char *OP = "geglu_fwd";
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    g_cpu->geglu_fwd(F(out, n, "out"), F(gate, n, "gate"), F(up, n, "up"), N, FF);
}
static void strict_geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                             size_t N, int FF) {
    const char *OP = "geglu_bwd";
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    g_cpu->geglu_bwd(F(dgate, n, "dgate"), F(dup, n, "dup"), F(dout, n, "dout"), F(gate, n, "gate"), F(up, n, "up"),
                     N, FF);
}
static void strict_softcap_fwd(float *x, size_t n, float cap) {
    const char *OP = "softcap_fwd";
    g_cpu->softcap_fwd(F(x, n, "x"), n, cap);
}
static void strict_softcap_bwd(float *dx, const float *x_pre, size_t n, float cap) {
    const char *OP = "softcap_bwd";
    g_cpu->softcap_bwd(F(dx, n, "dx"), F(x_pre, n, "x_pre"), n, cap);
}

/* the precision mode holds no pointers: the CPU kernels' switch as it is */
static void strict_set_matmul_bf16(bool on) { backend_cpu()->set_matmul_bf16(on); }
static bool strict_matmul_bf16_on(void) { return backend_cpu()->matmul_bf16_on(); }

static const Backend g_strict = {
    .name = "cpu_strict",
    .host_addressable = false,
    .alloc = strict_alloc,
    .free = strict_free,
    .bytes_in_use = strict_bytes_in_use,
    .zero = strict_zero,
    .copy = strict_copy,
    .upload = strict_upload,
    .download = strict_download,
    .matmul = strict_matmul,
    .set_matmul_bf16 = strict_set_matmul_bf16,
    .matmul_bf16_on = strict_matmul_bf16_on,
    .matmul16 = strict_matmul16,
    .matmul16_out16 = strict_matmul16_out16,
    .matmul16_res = strict_matmul16_res,
    .swiglu_fwd_b16 = strict_swiglu_fwd_b16,
    .geglu_fwd_b16 = strict_geglu_fwd_b16,
    .swiglu_bwd_b16 = strict_swiglu_bwd_b16,
    .geglu_bwd_b16 = strict_geglu_bwd_b16,
    .swiglu_bwd_pack_b16 = strict_swiglu_bwd_pack_b16,
    .geglu_bwd_pack_b16 = strict_geglu_bwd_pack_b16,
    .rope_fwd_b16 = strict_rope_fwd_b16,
    .rope_bwd_b16 = strict_rope_bwd_b16,
    .rope_bwd_pack_b16 = strict_rope_bwd_pack_b16,
    .attn_fwd_b16 = strict_attn_fwd_b16,
    .attn_bwd_b16 = strict_attn_bwd_b16,
    .attn_fwd_rows = strict_attn_fwd_rows,
    .attn_bwd_rows = strict_attn_bwd_rows,
    .attn_fwd_b16_rows = strict_attn_fwd_b16_rows,
    .attn_bwd_b16_rows = strict_attn_bwd_b16_rows,
    .xent_stats_b16 = strict_xent_stats_b16,
    .xent_bwd_b16 = strict_xent_bwd_b16,
    .to_bf16 = strict_to_bf16,
    .rmsnorm_fwd16 = strict_rmsnorm_fwd16,
    .swiglu_fwd16 = strict_swiglu_fwd16,
    .geglu_fwd16 = strict_geglu_fwd16,
    .swiglu_bwd16 = strict_swiglu_bwd16,
    .geglu_bwd16 = strict_geglu_bwd16,
    .xent_bwd16 = strict_xent_bwd16,
    .add = strict_add,
    .scale = strict_scale,
    .sumsq = strict_sumsq,
    .gather_rows = strict_gather_rows,
    .scatter_rows = strict_scatter_rows,
    .add_rows = strict_add_rows,
    .add_rows_b16 = strict_add_rows_b16,
    .bias_add = strict_bias_add,
    .bias_add_b16 = strict_bias_add_b16,
    .bias_grad = strict_bias_grad,
    .bias_grad_b16 = strict_bias_grad_b16,
    .embed_fwd = strict_embed_fwd,
    .embed_bwd = strict_embed_bwd,
    .rmsnorm_fwd = strict_rmsnorm_fwd,
    .rmsnorm_bwd = strict_rmsnorm_bwd,
    .rmsnorm_bwd_out16 = strict_rmsnorm_bwd_out16,
    .rmsnorm_fwd_b16 = strict_rmsnorm_fwd_b16,
    .rmsnorm_bwd_b16 = strict_rmsnorm_bwd_b16,
    .rope_fwd = strict_rope_fwd,
    .rope_bwd = strict_rope_bwd,
    .attn_fwd = strict_attn_fwd,
    .attn_bwd = strict_attn_bwd,
    .swiglu_fwd = strict_swiglu_fwd,
    .geglu_fwd = strict_geglu_fwd,
    .geglu_bwd = strict_geglu_bwd,
    .softcap_fwd = strict_softcap_fwd,
    .softcap_bwd = strict_softcap_bwd,
    .swiglu_bwd = strict_swiglu_bwd,
    .xent_stats = strict_xent_stats,
    .xent_bwd = strict_xent_bwd,
    .adamw = strict_adamw,
    .adamw_sumsq = strict_adamw_sumsq,
};

const Backend *backend_cpu_strict(void) {
    if (!g_cpu) g_cpu = backend_cpu();
    return &g_strict;
}
