/* parquet_rows.c — rows of a Parquet file as JSON objects: the public API of parquet.h.
 *
 * The schema (a depth-first list of groups and leaves) becomes a tree of JSON shapes (JNode): an object of fields,
 * an array of items, or a leaf value, each with the definition level at which it is present (not null) and, for an
 * array, the level at which it has items and its repetition level. A row is built leaf column by leaf column
 * (Dremel's record assembly): each of the leaf's level entries of the row walks its path of shapes from the top,
 * creating the objects and arrays it passes (or finding those an earlier column of the same row created: the
 * fields of a struct, the same list's items), until the entry's definition level says a value is null or a list
 * is empty there, or it reaches the leaf and stores the value. The entry's repetition level says which list it
 * adds an item to: idx[r] counts the items of the list at repetition level r in the current row. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "parquet_internal.h"
#include "records.h"

#define PQ_MAX_FOOTER_BYTES (256 << 20)
#define PQ_MAX_REP 64       /* nested lists in one path */

enum { J_OBJ, J_ARR, J_LEAF };
struct PqJNode {
    int kind;
    const char *name;     /* the member's name when the parent is an object (schema storage) */
    int d_present;        /* definition level from which the value is not null */
    /* J_ARR */
    int d_items;          /* definition level from which the list has items */
    int level;            /* its repetition level */
    PqJNode *item;
    cJSON *cache_arr, *cache_item; /* the last item visited and its index: items are visited in order */
    int64_t cache_idx;
    /* J_OBJ */
    PqJNode **fields;
    int nfields;
    /* J_LEAF */
    int cur;              /* index into pf->cur */
};

static void release(void *arg) { parquet_close(arg); }

void pq_die(ParquetFile *pf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_vdie(pf->where, fmt, ap);
}

bool parquet_is_parquet(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char m[4];
    bool yes = fread(m, 1, 4, f) == 4 && !memcmp(m, "PAR1", 4);
    fclose(f);
    return yes;
}

static PqJNode *new_node(ParquetFile *pf, int kind, const char *name, int d_present) {
    if (pf->nnodes == pf->cap_nodes) {
        pf->cap_nodes = pf->cap_nodes ? 2 * pf->cap_nodes : 32;
        pf->nodes = sd_realloc(pf->nodes, sizeof *pf->nodes * (size_t)pf->cap_nodes, "parquet shapes");
    }
    PqJNode *n = sd_calloc(1, sizeof *n, "parquet shape");
    pf->nodes[pf->nnodes++] = n;
    n->kind = kind;
    n->name = name;
    n->d_present = d_present;
    n->cache_idx = -1;
    return n;
}

static bool is_list(const PqSchemaElem *e) {
    return e->num_children > 0 && (e->converted == PQ_CT_LIST || e->logical == PQ_LT_LIST);
}

typedef struct {
    ParquetFile *pf;
    int si;               /* next schema element */
    int leaf;             /* next leaf's index */
    bool select;          /* building a selected field: leaves become cursors */
} Build;

static PqJNode *build(Build *B, int d0, int r0);

static void check_elem(Build *B, int si) {
    ParquetFile *pf = B->pf;
    if (si >= pf->meta.nschema) pq_die(pf, "the schema ends inside a group (num_children counts more elements)");
    const PqSchemaElem *e = &pf->meta.schema[si];
    if (!e->name) pq_die(pf, "schema element %d has no name", si);
    if (e->repetition < PQ_REQUIRED || e->repetition > PQ_REPEATED)
        pq_die(pf, "schema element '%s' has no valid repetition", e->name);
    if (e->num_children < 0 || e->num_children > pf->meta.nschema)
        pq_die(pf, "schema element '%s' claims %d children", e->name, e->num_children);
    if (e->num_children == 0 && (e->type < PQ_BOOLEAN || e->type > PQ_FIXED))
        pq_die(pf, "schema leaf '%s' has no valid type", e->name);
}

/* The content of element si as a value (not as a list): an object of its children, or a leaf. Advances B->si. */
static PqJNode *build_content(Build *B, const char *name, int d, int r) {
    ParquetFile *pf = B->pf;
    int si = B->si++;
    const PqSchemaElem *e = &pf->meta.schema[si];
    if (e->num_children > 0) {
        PqJNode *o = new_node(pf, J_OBJ, name, d);
        o->fields = sd_calloc((size_t)e->num_children, sizeof *o->fields, "parquet shape");
        for (int k = 0; k < e->num_children; k++) {
            o->fields[k] = build(B, d, r);
            o->nfields++;
        }
        return o;
    }
    PqJNode *l = new_node(pf, J_LEAF, name, d);
    l->cur = -1;
    int leaf = B->leaf++;
    if (leaf >= pf->nleaves) pq_die(pf, "the schema has more leaves than it was counted to have");
    if (B->select) {
        PqCursor *c = &pf->cur[pf->ncur];
        memset(c, 0, sizeof *c);
        c->leaf = leaf;
        c->type = e->type;
        c->type_length = e->type_length;
        c->max_def = d;
        c->max_rep = r;
        c->name = e->name;
        c->is_unsigned = e->int_unsigned || (e->converted >= PQ_CT_UINT_8 && e->converted <= PQ_CT_UINT_64);
        l->cur = pf->ncur++;
        if (e->type == PQ_INT96 || e->type == PQ_FIXED)
            pq_die(pf, "column '%s' is %s, which simpo_dist does not read", e->name,
                   e->type == PQ_INT96 ? "INT96 (a legacy timestamp)" : "FIXED_LEN_BYTE_ARRAY");
        if (e->converted == PQ_CT_DECIMAL || e->logical == PQ_LT_DECIMAL)
            pq_die(pf, "column '%s' is a DECIMAL, which simpo_dist does not read", e->name);
    }
    return l;
}

/* Element B->si as a member of its parent (parent's definition level d0, repetition level r0). */
static PqJNode *build(Build *B, int d0, int r0) {
    ParquetFile *pf = B->pf;
    check_elem(B, B->si);
    const PqSchemaElem *e = &pf->meta.schema[B->si];
    int d = d0 + (e->repetition != PQ_REQUIRED), r = r0 + (e->repetition == PQ_REPEATED);
    if (r > PQ_MAX_REP || d > 2 * PQ_MAX_REP) pq_die(pf, "column '%s' nests more than %d lists", e->name, PQ_MAX_REP);
    if (e->repetition == PQ_REPEATED) { /* a repeated field outside a LIST group: the list of its values */
        PqJNode *a = new_node(pf, J_ARR, e->name, d0);
        a->d_items = d;
        a->level = r;
        a->item = build_content(B, NULL, d, r);
        return a;
    }
    if (is_list(e)) {
        PqJNode *a = new_node(pf, J_ARR, e->name, d);
        B->si++;
        check_elem(B, B->si);
        const PqSchemaElem *rep = &pf->meta.schema[B->si];
        if (e->num_children != 1 || rep->repetition != PQ_REPEATED)
            pq_die(pf, "list '%s' does not hold one repeated field", e->name);
        a->d_items = d + 1;
        a->level = r + 1;
        /* The 3-level layout (list > repeated group > element) unless the repeated field is the element itself:
         * a leaf, a group of several fields, or a group named "array" or "<list>_tuple" (parquet-format
         * LogicalTypes.md, the backward-compatibility rules). */
        char tuple[512];
        snprintf(tuple, sizeof tuple, "%s_tuple", e->name);
        bool three = rep->num_children == 1 && strcmp(rep->name, "array") && strcmp(rep->name, tuple);
        if (three) {
            B->si++;
            check_elem(B, B->si);
            if (pf->meta.schema[B->si].repetition == PQ_REPEATED)
                pq_die(pf, "list '%s' has a repeated element", e->name);
            a->item = build(B, d + 1, r + 1);
            a->item->name = NULL;
        } else a->item = build_content(B, NULL, d + 1, r + 1);
        return a;
    }
    return build_content(B, e->name, d, r);
}

/* Counts the schema's leaves (every row group has one column chunk per leaf, in this order). */
static int count_leaves(ParquetFile *pf) {
    int n = 0;
    for (int i = 1; i < pf->meta.nschema; i++) n += pf->meta.schema[i].num_children == 0;
    return n;
}

/* The JNode path of each selected leaf, from the top-level field down. */
static void collect_paths(ParquetFile *pf, PqJNode *n, PqJNode **stack, int depth) {
    if (depth >= 2 * PQ_MAX_REP + 8) pq_die(pf, "the schema nests too deep");
    stack[depth] = n;
    if (n->kind == J_LEAF) {
        if (n->cur < 0) return;
        pf->paths[n->cur] = sd_alloc(sizeof(PqJNode *) * (size_t)(depth + 1), "parquet path");
        memcpy(pf->paths[n->cur], stack, sizeof(PqJNode *) * (size_t)(depth + 1));
        pf->path_len[n->cur] = depth + 1;
    } else if (n->kind == J_ARR) collect_paths(pf, n->item, stack, depth + 1);
    else
        for (int k = 0; k < n->nfields; k++) collect_paths(pf, n->fields[k], stack, depth + 1);
}

ParquetFile *parquet_open(const char *path, const char *const *fields, int nfields) {
    ParquetFile *pf = sd_calloc(1, sizeof *pf, "parquet file");
    pf->fd = -1;
    pf->rg = -1;
    pf->path = sd_strdup(path);
    snprintf(pf->where, sizeof pf->where, "%s", path);
    sd_cleanup_push(release, pf);
    pf->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (pf->fd < 0) pq_die(pf, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(pf->fd, &st) != 0) pq_die(pf, "cannot stat: %s", strerror(errno));
    pf->size = st.st_size;
    uint8_t tail[8], head[4];
    if (pf->size < 12) pq_die(pf, "too short to be a Parquet file (%lld bytes)", (long long)pf->size);
    if (pread(pf->fd, head, 4, 0) != 4 || pread(pf->fd, tail, 8, pf->size - 8) != 8)
        pq_die(pf, "read error: %s", strerror(errno ? errno : EIO));
    if (memcmp(head, "PAR1", 4)) pq_die(pf, "not a Parquet file (it does not start with PAR1)");
    if (!memcmp(tail + 4, "PARE", 4)) pq_die(pf, "an encrypted Parquet file, which simpo_dist does not read");
    if (memcmp(tail + 4, "PAR1", 4))
        pq_die(pf, "the Parquet file does not end with PAR1 (truncated, or still being written?)");
    uint32_t flen = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    if ((int64_t)flen > pf->size - 12 || flen > PQ_MAX_FOOTER_BYTES)
        pq_die(pf, "its footer claims %u bytes of a %lld-byte file", flen, (long long)pf->size);
    pf->footer_start = pf->size - 8 - flen;
    pf->footer = sd_alloc(flen + 1, "parquet footer");
    if (pread(pf->fd, pf->footer, flen, pf->footer_start) != (ssize_t)flen)
        pq_die(pf, "read error in the footer: %s", strerror(errno ? errno : EIO));
    pq_parse_footer(pf, pf->footer, flen);

    PqMeta *m = &pf->meta;
    pf->nleaves = count_leaves(pf);
    for (int g = 0; g < m->nrg; g++) {
        if (m->rgs[g].ncols != pf->nleaves)
            pq_die(pf, "row group %d has %d column chunks, the schema %d leaves", g, m->rgs[g].ncols, pf->nleaves);
        if (m->rgs[g].num_rows < 0) pq_die(pf, "row group %d claims %lld rows", g, (long long)m->rgs[g].num_rows);
    }
    /* the top-level fields, selected or not (an unselected one is walked for its leaves' numbering) */
    pf->cur = sd_calloc((size_t)pf->nleaves + 1, sizeof *pf->cur, "parquet columns");
    pf->root = new_node(pf, J_OBJ, NULL, 0);
    const PqSchemaElem *root = &m->schema[0];
    if (root->num_children < 0 || root->num_children > m->nschema)
        pq_die(pf, "the schema's root claims %d fields", root->num_children);
    pf->root->fields = sd_calloc((size_t)root->num_children + 1, sizeof *pf->root->fields, "parquet shape");
    Build B = {pf, 1, 0, false};
    for (int k = 0; k < root->num_children; k++) {
        check_elem(&B, B.si);
        const char *name = m->schema[B.si].name;
        B.select = nfields == 0;
        for (int j = 0; j < nfields && !B.select; j++) B.select = !strcmp(fields[j], name);
        for (int j = 0; j < pf->root->nfields && B.select; j++)
            if (!strcmp(pf->root->fields[j]->name, name)) pq_die(pf, "the schema has two fields named '%s'", name);
        PqJNode *f = build(&B, 0, 0);
        if (B.select) pf->root->fields[pf->root->nfields++] = f;
    }
    if (B.si != m->nschema) pq_die(pf, "the schema has %d elements beyond its root's fields", m->nschema - B.si);
    /* each selected leaf's column chunks must be its path's */
    pf->paths = sd_calloc((size_t)pf->ncur + 1, sizeof *pf->paths, "parquet paths");
    pf->path_len = sd_calloc((size_t)pf->ncur + 1, sizeof *pf->path_len, "parquet paths");
    PqJNode *stack[2 * PQ_MAX_REP + 8];
    for (int k = 0; k < pf->root->nfields; k++) collect_paths(pf, pf->root->fields[k], stack, 0);
    int64_t rows = 0;
    for (int g = 0; g < m->nrg; g++) {
        rows += m->rgs[g].num_rows;
        for (int c = 0; c < pf->ncur; c++) {
            const PqColumnMeta *cm = &m->rgs[g].cols[pf->cur[c].leaf];
            if (!cm->npath || strcmp(cm->path[0], pf->paths[c][0]->name))
                pq_die(pf, "row group %d: column chunk %d is not of field '%s'", g, pf->cur[c].leaf,
                       pf->paths[c][0]->name);
        }
    }
    /* a codec the build lacks: said at once, not at the first page of that column */
    for (int g = 0; g < m->nrg; g++)
        for (int c = 0; c < pf->ncur; c++) {
            const PqColumnMeta *cm = &m->rgs[g].cols[pf->cur[c].leaf];
            if (!pq_codec_supported(cm->codec)) {
                snprintf(pf->where, sizeof pf->where, "%s: column '%s'", pf->path, pf->paths[c][0]->name);
                pq_die_codec(pf, cm->codec);
            }
        }
    if (rows != m->num_rows)
        pq_die(pf, "its row groups hold %lld rows, the footer says %lld", (long long)rows, (long long)m->num_rows);
    /* dotted names for errors: the leaf's path_in_schema in the first row group */
    for (int c = 0; c < pf->ncur && m->nrg; c++) {
        const PqColumnMeta *cm = &m->rgs[0].cols[pf->cur[c].leaf];
        size_t len = 1;
        for (int k = 0; k < cm->npath; k++) len += strlen(cm->path[k]) + 1;
        char *s = sd_alloc(len, "parquet name");
        s[0] = 0;
        for (int k = 0; k < cm->npath; k++) {
            if (k) strcat(s, ".");
            strcat(s, cm->path[k]);
        }
        pf->cur[c].name = s;
        pf->cur[c].owns_name = true;
    }
    sd_cleanup_pop();
    return pf;
}

int64_t parquet_num_rows(const ParquetFile *pf) { return pf->meta.num_rows; }

void parquet_field_names(const ParquetFile *pf, char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    /* the root's children: walk the depth-first list, skipping each child's subtree */
    const PqMeta *m = &pf->meta;
    int si = 1, pending = 1; /* elements still to visit in the current subtree */
    size_t len = 0;
    for (int k = 0; k < m->schema[0].num_children && si < m->nschema; k++) {
        const char *name = m->schema[si].name ? m->schema[si].name : "?";
        int w = snprintf(buf + len, n - len, "%s%s", k ? ", " : "", name);
        if (w < 0 || (size_t)w >= n - len) return;
        len += (size_t)w;
        for (pending = 1; pending > 0 && si < m->nschema; si++) pending += m->schema[si].num_children - 1;
    }
}

bool parquet_has_field(const ParquetFile *pf, const char *name) {
    for (int k = 0; k < pf->root->nfields; k++)
        if (!strcmp(pf->root->fields[k]->name, name)) return true;
    return false;
}

/* A leaf value as JSON. */
static cJSON *leaf_value(ParquetFile *pf, const PqCursor *c, const PqValue *v) {
    switch (c->type) {
    case PQ_BOOLEAN: return cJSON_CreateBool(v->i != 0);
    case PQ_INT32: return cJSON_CreateNumber(c->is_unsigned ? (double)(uint32_t)v->i : (double)v->i);
    case PQ_INT64: return cJSON_CreateNumber(c->is_unsigned ? (double)(uint64_t)v->i : (double)v->i);
    case PQ_FLOAT: case PQ_DOUBLE: return cJSON_CreateNumber(v->d);
    case PQ_BYTE_ARRAY: {
        if (memchr(v->s.p, 0, v->s.n)) pq_die(pf, "a string holds a NUL byte (row %lld)", (long long)pf->row);
        if ((size_t)v->s.n + 1 > pf->str_cap) {
            pf->str_cap = (size_t)v->s.n + 1;
            pf->str_buf = sd_realloc(pf->str_buf, pf->str_cap, "parquet string");
        }
        memcpy(pf->str_buf, v->s.p, v->s.n);
        pf->str_buf[v->s.n] = 0;
        return cJSON_CreateString(pf->str_buf);
    }
    default: pq_die(pf, "values of physical type %d are not read", c->type);
    }
}

/* Item idx of array arr (shape a), walking from the item visited last (entries visit a list's items in order);
 * *can_add: whether idx is one past its last item, so that a new item may go there. */
static cJSON *item_get(PqJNode *a, cJSON *arr, int64_t idx, bool *can_add) {
    cJSON *x;
    if (idx == 0) x = arr->child;
    else if (a->cache_arr == arr && a->cache_idx == idx - 1 && a->cache_item) x = a->cache_item->next;
    else if (a->cache_arr == arr && a->cache_idx == idx && a->cache_item) x = a->cache_item;
    else {
        x = idx <= INT32_MAX ? cJSON_GetArrayItem(arr, (int)idx) : NULL;
        *can_add = !x && cJSON_GetArraySize(arr) == idx;
        return x;
    }
    *can_add = !x;
    return x;
}

/* One level entry (r, d; the value v when d is the maximum) of selected leaf c in the current row. */
static void place(ParquetFile *pf, int c, int r, int d, const PqValue *v, int64_t *idx) {
    PqCursor *cu = &pf->cur[c];
    if (++pf->values > RECORDS_MAX_ROW_VALUES)
        pq_die(pf, "row %lld holds more than %d values (the limit of one record)", (long long)pf->row,
               RECORDS_MAX_ROW_VALUES);
    if (r == 0)
        for (int k = 0; k <= cu->max_rep; k++) idx[k] = 0;
    else {
        idx[r]++;
        for (int k = r + 1; k <= cu->max_rep; k++) idx[k] = 0;
    }
    cJSON *parent = pf->row_obj;
    PqJNode *parr = NULL; /* the array shape when parent is an array */
    for (int j = 0; j < pf->path_len[c]; j++) {
        PqJNode *n = pf->paths[c][j];
        int64_t i = parr ? idx[parr->level] : 0;
        bool can_add = true;
        cJSON *x = parr ? item_get(parr, parent, i, &can_add) : cJSON_GetObjectItemCaseSensitive(parent, n->name);
        bool null_here = d < n->d_present, leaf = n->kind == J_LEAF;
        if (!x) {
            if (!can_add) pq_die(pf, "row %lld: column '%s' skips a list item", (long long)pf->row, cu->name);
            x = null_here ? cJSON_CreateNull() : leaf ? leaf_value(pf, cu, v)
                : n->kind == J_ARR ? cJSON_CreateArray() : cJSON_CreateObject();
            if (!x) sd_die("memory", "out of memory building a row of %s", pf->path);
            if (parr) cJSON_AddItemToArray(parent, x);
            else cJSON_AddItemToObject(parent, n->name, x);
        } else if (null_here ? !cJSON_IsNull(x)
                             : leaf || (n->kind == J_ARR ? !cJSON_IsArray(x) : !cJSON_IsObject(x)))
            pq_die(pf, "row %lld: column '%s' disagrees with another column on the row's shape", (long long)pf->row,
                   cu->name);
        if (parr) {
            parr->cache_arr = parent;
            parr->cache_idx = i;
            parr->cache_item = x;
        }
        if (null_here || leaf) return;
        parent = x;
        if (n->kind == J_ARR) {
            if (d < n->d_items) return; /* an empty list */
            parr = n;
        } else parr = NULL;
    }
}

const cJSON *parquet_next_row(ParquetFile *pf, int64_t *row_out) {
    cJSON_Delete(pf->row_obj);
    pf->row_obj = NULL;
    PqMeta *m = &pf->meta;
    while (pf->rg < 0 || pf->rg_row >= m->rgs[pf->rg].num_rows) {
        if (pf->rg >= 0) /* every column's chunk must end with its row group */
            for (int c = 0; c < pf->ncur; c++)
                if (pq_cursor_more(pf, &pf->cur[c]))
                    pq_die(pf, "column '%s' has more values than row group %d's %lld rows", pf->cur[c].name, pf->rg,
                           (long long)m->rgs[pf->rg].num_rows);
        if (pf->rg + 1 >= m->nrg) return NULL;
        pf->rg++;
        pf->rg_row = 0;
        for (int c = 0; c < pf->ncur; c++) pq_cursor_start(pf, &pf->cur[c], &m->rgs[pf->rg]);
    }
    pf->row++;
    pf->rg_row++;
    pf->values = 0;
    pf->row_obj = cJSON_CreateObject();
    if (!pf->row_obj) sd_die("memory", "out of memory building a row of %s", pf->path);
    /* the members come in schema order: the leaves are in schema order. Forget the last row's items (a new
     * row's arrays may lie where the old ones did). */
    for (int k = 0; k < pf->nnodes; k++) pf->nodes[k]->cache_arr = NULL;
    int64_t idx[PQ_MAX_REP + 1];
    for (int c = 0; c < pf->ncur; c++) {
        PqCursor *cu = &pf->cur[c];
        if (!pq_cursor_more(pf, cu))
            pq_die(pf, "column '%s' ends at row %lld of row group %d's %lld", cu->name, (long long)pf->rg_row,
                   pf->rg, (long long)m->rgs[pf->rg].num_rows);
        for (int first = 1;; first = 0) {
            int r = cu->rep ? cu->rep[cu->i] : 0, d = cu->def ? cu->def[cu->i] : cu->max_def;
            if (!first && r == 0) break;
            if (first && r != 0) pq_die(pf, "column '%s': row %lld starts inside a list", cu->name, (long long)pf->row);
            const PqValue *v = NULL;
            if (d == cu->max_def) {
                if (cu->vi >= cu->nval) pq_die(pf, "column '%s' has fewer values than its levels say", cu->name);
                v = &cu->val[cu->vi++];
            }
            cu->i++;
            place(pf, c, r, d, v, idx);
            if (!pq_cursor_more(pf, cu)) break;
        }
    }
    if (row_out) *row_out = pf->row;
    return pf->row_obj;
}

void parquet_close(ParquetFile *pf) {
    if (!pf) return;
    if (pf->fd >= 0) close(pf->fd);
    for (int c = 0; c < pf->ncur; c++) {
        pq_cursor_release(&pf->cur[c]);
        if (pf->cur[c].owns_name) free((char *)pf->cur[c].name);
    }
    free(pf->cur);
    for (int c = 0; c < pf->ncur && pf->paths; c++) free(pf->paths[c]);
    free(pf->paths);
    free(pf->path_len);
    for (int i = 0; i < pf->nnodes; i++) {
        free(pf->nodes[i]->fields);
        free(pf->nodes[i]);
    }
    free(pf->nodes);
    cJSON_Delete(pf->row_obj);
    free(pf->hdr_buf);
    free(pf->str_buf);
    free(pf->footer);
    pq_meta_free(&pf->meta);
    free(pf->path);
    free(pf);
}
