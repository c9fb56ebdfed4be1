/* marketplace.listings._native._catalogue_scan: one search's pass over the catalogue index.
 *
 * The catalogue index (marketplace/listings/catalogue_index.py) keeps one numpy column per
 * field of every public listing. A search's filters are terms over those columns; this pass
 * evaluates every term of every row, keeps per row one byte saying which terms failed, and
 * counts the disjunctive facets from those bytes: a facet with a filter of its own counts
 * the rows passing every other filter, the others count the rows passing all of them.
 * The numpy evaluation in catalogue_index.py is the reference and the path without this
 * library; tests compare the two.
 *
 * A row's byte: 0xFF for a dead slot, bit 7 when a filter without a facet of its own fails
 * (such a row is in no facet's count), bit b (0..4) when the filter of facet b fails.
 * Counting a facet directly costs its matching rows; when most live rows match, the pass
 * counts the live rows outside instead and says so (the caller subtracts them from the
 * live rows' counts), so a search with few filters costs no per-row counting at all. A
 * facet offered one bitmap of the slots per value is counted from them when its group
 * holds many rows: per value, the popcount of the group's bitmap AND the value's, which
 * costs the slots / 64 words per value whatever the rows (see count_bits).
 *
 * Columns arrive through the buffer protocol and are checked here (element size, kind,
 * length): a wrong array raises instead of being read out of bounds. Codes are checked
 * against their table's size on every read. With threads=2 (the caller asks above a size
 * where it pays), both passes run on two threads over halves of the rows; the GIL is
 * released during the passes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifndef SCAN_SOURCE_SHA256
#error "SCAN_SOURCE_SHA256 is undefined: build with pip install (setup.py)"
#endif

#define SCAN_ABI 3
#define BLOCK 4096
#define MAX_TERMS 64
#define MAX_FACETS 8
#define MAX_THREADS 2
#define DEAD 0xFF
#define BASE_BIT 7

enum { MIN_STATUS = 0, EQ_I16 = 1, EQ_BOOL = 2, RANGE_I64 = 3, MIN_F64 = 4, LUT = 5 };

typedef struct {
    int kind, bit;
    /* The column in its narrow form (RANGE_I64: int32, LUT: uint16 codes): half the bytes to read. */
    int narrow;
    Py_ssize_t width; /* bytes per row of col */
    const void *col, *aux;
    Py_ssize_t aux_len;
    /* LUT: per code, 0 or the term's failing bit, and one more entry (the failing bit) that
     * every code beyond the table reads: one load and an OR per row. */
    const uint8_t *outcome;
    double value;
    long long lo, hi;
} Term;

typedef struct {
    const void *col; /* the facet's codes, one per slot: int32, or uint16 when narrow */
    int narrow;
    uint32_t *lanes; /* this thread's counts, four interleaved copies (see count_rows) */
    Py_ssize_t size;
    int bit; /* -1: counted under every filter */
    /* Optional: one bitmap of the slots per value of the facet (values x words, a slot's bit
     * is bit slot % 64 of word slot / 64), and the per-value counts they give. */
    const uint64_t *bitmaps;
    Py_ssize_t nvalues;
    int by_values; /* this search counts the facet from its bitmaps (bits_thread), not per row */
} Facet;

/* Facets counted over the same rows: the live rows whose byte, without the facets' own bit,
 * is 0 (direct) or is not (complemented). */
typedef struct {
    uint8_t mask; /* the bits that must all be clear */
    int complemented;
    int facets[MAX_FACETS], nfacets;
} Group;

typedef struct {
    Py_ssize_t lo, hi;
    const uint8_t *alive;
    uint8_t *codes;
    const Term *terms;
    int nterms;
    Facet facets[MAX_FACETS];
    int nfacets;
    const void *matrix; /* the facets' codes, one row per slot (uint16 or uint32) */
    int wide; /* uint32 codes */
    const Group *groups;
    int ngroups;
    /* the words of the bitmaps this part counts (bits_thread), and its per-value counts */
    Py_ssize_t slots, w_lo, w_hi;
    uint64_t *value_counts[MAX_FACETS];
    /* pass 1's tallies */
    int64_t matches, dead, single[BASE_BIT];
    unsigned own_bits; /* the facet bits some term uses */
    int bad_code;
} Part;

/* The per-term loops are written for the vectorizer (restrict, one column each); on x86-64
 * they are compiled twice, for AVX2 and for the baseline, and the loader picks the one the
 * processor runs (GCC's function multiversioning). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif
/* popcnt where the processor has it (the baseline x86-64 has not: a table per byte there). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define POPCOUNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define POPCOUNT_CLONES
#endif

VECTOR_CLONES
static void start_block(const uint8_t *restrict alive, uint8_t *restrict c, Py_ssize_t len) {
    for (Py_ssize_t i = 0; i < len; i++) c[i] = alive[i] ? 0 : DEAD;
}

/* One term over rows [0, len) of its (offset) columns. */
VECTOR_CLONES
static void evaluate_term(const Term *T, uint8_t *restrict c, Py_ssize_t len) {
    {
        const uint8_t fail = (uint8_t)(1u << T->bit);
        switch (T->kind) {
        case MIN_STATUS: {
            const double *restrict x = T->col;
            const int16_t *restrict s = T->aux;
            const double v = T->value;
            const int16_t least = (int16_t)T->lo;
            for (Py_ssize_t i = 0; i < len; i++) c[i] |= x[i] >= v ? 0 : fail;
            for (Py_ssize_t i = 0; i < len; i++) c[i] |= s[i] >= least ? 0 : fail;
            break;
        }
        case EQ_I16: {
            const int16_t *restrict x = T->col;
            const int16_t want = (int16_t)T->lo;
            for (Py_ssize_t i = 0; i < len; i++) c[i] |= x[i] == want ? 0 : fail;
            break;
        }
        case EQ_BOOL: {
            const uint8_t *restrict x = T->col;
            const uint8_t want = T->lo ? 1 : 0;
            for (Py_ssize_t i = 0; i < len; i++) c[i] |= (x[i] != 0) == want ? 0 : fail;
            break;
        }
        case RANGE_I64: {
            if (T->narrow) { /* the bounds clamped to int32 (every value is one): the same rows pass */
                const int32_t *restrict x = T->col;
                const int empty = T->lo > T->hi || T->lo > INT32_MAX || T->hi < INT32_MIN;
                const int32_t lo = empty ? 1 : (int32_t)(T->lo < INT32_MIN ? INT32_MIN : T->lo);
                const int32_t hi = empty ? 0 : (int32_t)(T->hi > INT32_MAX ? INT32_MAX : T->hi);
                for (Py_ssize_t i = 0; i < len; i++) c[i] |= (x[i] >= lo) & (x[i] <= hi) ? 0 : fail;
                break;
            }
            const int64_t *restrict x = T->col;
            const int64_t lo = T->lo, hi = T->hi;
            for (Py_ssize_t i = 0; i < len; i++) c[i] |= (x[i] >= lo) & (x[i] <= hi) ? 0 : fail;
            break;
        }
        case MIN_F64: {
            const double *restrict x = T->col;
            const double v = T->value;
            for (Py_ssize_t i = 0; i < len; i++) c[i] |= x[i] >= v ? 0 : fail;
            break;
        }
        case LUT: {
            const uint8_t *restrict outcome = T->outcome;
            const uint32_t n = (uint32_t)T->aux_len;
            /* Scalar: AVX2's gathers are slow on processors with the gather data sampling fix. */
            if (T->narrow) {
                const uint16_t *restrict x = T->col;
                for (Py_ssize_t i = 0; i < len; i++) {
                    uint32_t k = x[i];
                    c[i] |= outcome[k < n ? k : n];
                }
                break;
            }
            const int32_t *restrict x = T->col;
            for (Py_ssize_t i = 0; i < len; i++) {
                uint32_t k = (uint32_t)x[i];
                c[i] |= outcome[k < n ? k : n];
            }
            break;
        }
        }
    }
}

VECTOR_CLONES
static uint32_t count_equal(const uint8_t *restrict c, Py_ssize_t len, uint8_t value) {
    uint32_t n = 0;
    for (Py_ssize_t i = 0; i < len; i++) n += c[i] == value;
    return n;
}

/* Whether every row of c[0..64) failed a filter without a facet of its own (or is dead):
 * such rows are in no direct count and in every complemented one, whatever else fails. */
#define RUN 64
static int all_failed(const uint8_t *c) {
    uint64_t all = ~0ull;
    for (int j = 0; j < RUN; j += 8) {
        uint64_t w;
        memcpy(&w, c + j, 8);
        all &= w;
    }
    return (all & 0x8080808080808080ull) == 0x8080808080808080ull;
}

static void evaluate(Part *p) {
    for (Py_ssize_t start = p->lo; start < p->hi; start += BLOCK) {
        Py_ssize_t len = start + BLOCK < p->hi ? BLOCK : p->hi - start;
        uint8_t *c = p->codes + start;
        start_block(p->alive + start, c, len);
        for (int t = 0; t < p->nterms; t++) {
            /* Runs of 64 rows that already failed are not read again (the terms come
             * narrowest and without a facet first: the later, wider columns are skipped most). */
            Py_ssize_t i = 0;
            while (i < len) {
                while (t > 0 && i + RUN <= len && all_failed(c + i)) i += RUN;
                Py_ssize_t end = i;
                while (end < len && !(t > 0 && end + RUN <= len && all_failed(c + end))) end = end + RUN < len ? end + RUN : len;
                if (end == i) continue;
                Term local = p->terms[t];
                Py_ssize_t at = start + i;
                local.col = (const char *)local.col + at * local.width;
                if (local.kind == MIN_STATUS) local.aux = (const int16_t *)local.aux + at;
                evaluate_term(&local, c + i, end - i);
                i = end;
            }
        }
        p->matches += count_equal(c, len, 0);
        p->dead += count_equal(c, len, DEAD);
        for (int b = 0; b < BASE_BIT; b++)
            if (p->own_bits & (1u << b)) p->single[b] += count_equal(c, len, (uint8_t)(1u << b));
    }
}

/* The set bits' positions of each byte value, for gather: eight offsets per eight rows are
 * stored whatever the members, and the count advances by the members (no branch per member:
 * half the rows may be members, and a branch on each would be mispredicted half the time). */
static uint8_t bit_positions[256][8], bit_count[256]; /* a table: the baseline x86-64 has no popcount instruction */

static void bit_positions_init(void) {
    for (int m = 0; m < 256; m++) {
        int k = 0;
        for (int b = 0; b < 8; b++)
            if (m & (1 << b)) bit_positions[m][k++] = (uint8_t)b;
        bit_count[m] = (uint8_t)k;
    }
}

static inline Py_ssize_t gather8(unsigned member, Py_ssize_t at, int32_t *restrict rows, Py_ssize_t k) {
    const uint8_t *pos = bit_positions[member & 0xFF];
    for (int b = 0; b < 8; b++) rows[k + b] = (int32_t)(at + pos[b]);
    return k + bit_count[member & 0xFF];
}

/* The rows of a block in a group, as offsets: sixteen bytes at a time (SSE2, every x86-64)
 * or eight (bit arithmetic on a word elsewhere). ``rows`` has room for eight more than the
 * block (gather8 stores eight at a time). */
static Py_ssize_t gather(const uint8_t *restrict c, Py_ssize_t len, const Group *g, int32_t *restrict rows) {
    Py_ssize_t k = 0, i = 0;
#if defined(__SSE2__)
    const __m128i mask = _mm_set1_epi8((char)g->mask), zero = _mm_setzero_si128(), dead = _mm_set1_epi8((char)DEAD);
    for (; i + 16 <= len; i += 16) {
        __m128i w = _mm_loadu_si128((const __m128i *)(c + i));
        unsigned clear = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(w, mask), zero));
        unsigned member = g->complemented ? ~(clear | (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(w, dead))) & 0xFFFFu : clear;
        k = gather8(member, i, rows, k);
        k = gather8(member >> 8, i + 8, rows, k);
    }
#else
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull, low = 0x7F7F7F7F7F7F7F7Full;
    const uint64_t mask = ones * g->mask;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, c + i, 8);
        uint64_t t = w & mask;
        uint64_t set = (((t & low) + low) | t) & high; /* high bit of each byte with a bit of mask set */
        uint64_t member;
        if (!g->complemented) {
            member = ~set & high;
        } else {
            uint64_t u = ~w; /* a dead slot (0xFF) is in no count */
            member = set & ((((u & low) + low) | u) & high);
        }
        k = gather8((unsigned)(((member >> 7) * 0x0102040810204080ull) >> 56), i, rows, k); /* byte b's high bit as bit b */
    }
#endif
    for (; i < len; i++) {
        int in = (c[i] & g->mask) == 0;
        rows[k] = (int32_t)i;
        k += g->complemented ? !in && c[i] != DEAD : in;
    }
    return k;
}

/* Counts of a group's facets over the gathered rows, in four interleaved copies: consecutive
 * rows with the same code (a facet has few) do not wait on each other. A group of several
 * facets reads the row-major code matrix (a row's codes share a cache line: one miss per
 * counted row, not one per facet); a group of one reads the facet's own column (denser).
 * The rows' cache lines are fetched a few rows ahead: the counted rows are scattered. */
#define AHEAD 16
#define COUNT_ROWS(NAME, CODE)                                                                                                  \
    static unsigned NAME(const CODE *restrict matrix, int width, const int32_t *restrict rows, Py_ssize_t k, Facet *facets,    \
                         const Group *g) {                                                                                      \
        /* The group's facets in locals: a count's store could otherwise alias them, and they */                              \
        /* would be read again for every row. */                                                                               \
        const int nf = g->nfacets;                                                                                             \
        int at[MAX_FACETS];                                                                                                    \
        uint32_t size[MAX_FACETS];                                                                                             \
        uint32_t *lanes[MAX_FACETS];                                                                                           \
        for (int q = 0; q < nf; q++) {                                                                                         \
            at[q] = g->facets[q];                                                                                              \
            size[q] = (uint32_t)facets[at[q]].size;                                                                            \
            lanes[q] = facets[at[q]].lanes;                                                                                    \
        }                                                                                                                      \
        unsigned bad = 0;                                                                                                      \
        for (Py_ssize_t j = 0; j < k; j++) {                                                                                   \
            if (j + AHEAD < k) __builtin_prefetch(matrix + (size_t)rows[j + AHEAD] * (size_t)width);                          \
            const CODE *row = matrix + (size_t)rows[j] * (size_t)width;                                                        \
            size_t lane = (size_t)(j & 3);                                                                                     \
            for (int q = 0; q < nf; q++) {                                                                                     \
                uint32_t code = row[at[q]];                                                                                    \
                bad |= code >= size[q];                                                                                        \
                lanes[q][lane * size[q] + (code < size[q] ? code : 0)]++;                                                      \
            }                                                                                                                  \
        }                                                                                                                      \
        return bad;                                                                                                            \
    }
COUNT_ROWS(count_rows16, uint16_t)
COUNT_ROWS(count_rows32, uint32_t)

#define COUNT_COLUMN(NAME, CODE)                                                                                                \
    static unsigned NAME(const CODE *restrict col, const int32_t *restrict rows, Py_ssize_t k, uint32_t *restrict lanes, uint32_t size) { \
        unsigned bad = 0;                                                                                                      \
        for (Py_ssize_t j = 0; j < k; j++) {                                                                                   \
            if (j + AHEAD < k) __builtin_prefetch(col + rows[j + AHEAD]);                                                      \
            uint32_t code = (uint32_t)col[rows[j]];                                                                            \
            bad |= code >= size;                                                                                               \
            lanes[(size_t)(j & 3) * size + (code < size ? code : 0)]++;                                                        \
        }                                                                                                                      \
        return bad;                                                                                                            \
    }
COUNT_COLUMN(count_column32, int32_t)
COUNT_COLUMN(count_column16, uint16_t)

static void count_facets(Part *p) {
    int32_t rows[BLOCK + 8];
    for (Py_ssize_t start = p->lo; start < p->hi; start += BLOCK) {
        Py_ssize_t len = start + BLOCK < p->hi ? BLOCK : p->hi - start;
        for (int g = 0; g < p->ngroups; g++) {
            const Group *G = &p->groups[g];
            Py_ssize_t k = gather(p->codes + start, len, G, rows);
            if (!k) continue;
            for (int q = 0; q < G->nfacets; q++) p->bad_code |= !p->facets[G->facets[q]].size; /* nothing to count into */
            if (p->bad_code) return;
            if (G->nfacets == 1) {
                Facet *F = &p->facets[G->facets[0]];
                if (F->narrow)
                    p->bad_code |= (int)count_column16((const uint16_t *)F->col + start, rows, k, F->lanes, (uint32_t)F->size);
                else
                    p->bad_code |= (int)count_column32((const int32_t *)F->col + start, rows, k, F->lanes, (uint32_t)F->size);
            } else if (p->wide)
                p->bad_code |= (int)count_rows32((const uint32_t *)p->matrix + (size_t)start * (size_t)p->nfacets, p->nfacets, rows, k, p->facets, G);
            else
                p->bad_code |= (int)count_rows16((const uint16_t *)p->matrix + (size_t)start * (size_t)p->nfacets, p->nfacets, rows, k, p->facets, G);
        }
    }
}

/* Bitmap counting: a facet counted by its values' bitmaps costs one AND and popcount per 64
 * slots per value, whatever the number of rows in its group; counting per row costs a code
 * read and an increment per row. A dense group (hundreds of thousands of rows) is counted
 * from bitmaps, a sparse one per row (see the choice in scan). */
#define BITS_CHUNK 256
/* A facet is counted from its bitmaps when they hold at most this many words per row its
 * group would count (at 1M listings a counted row cost about what four words did). */
#define WORDS_PER_ROW 4 /* words of a group's bitmap built at a time (16,384 slots) */

POPCOUNT_CLONES
static uint64_t and_popcount(const uint64_t *restrict a, const uint64_t *restrict b, Py_ssize_t len) {
    uint64_t n = 0;
    for (Py_ssize_t i = 0; i < len; i++) n += (uint64_t)__builtin_popcountll(a[i] & b[i]);
    return n;
}

/* The group's bitmap for words [w, w + len) of the slots: a slot's bit is set when its byte,
 * under ``mask``, is 0 (the mask holds bit 7, so a dead slot is never set). */
static void group_bits(const uint8_t *restrict c, Py_ssize_t n, Py_ssize_t w, Py_ssize_t len, uint8_t mask, uint64_t *restrict out) {
    for (Py_ssize_t j = 0; j < len; j++) {
        Py_ssize_t r0 = (w + j) * 64;
        uint64_t bits = 0;
        if (r0 + 64 <= n) {
#if defined(__SSE2__)
            const __m128i m = _mm_set1_epi8((char)mask), zero = _mm_setzero_si128();
            for (int q = 0; q < 4; q++) {
                __m128i x = _mm_loadu_si128((const __m128i *)(c + r0 + 16 * q));
                bits |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(x, m), zero)) << (16 * q);
            }
#else
            for (int b = 0; b < 64; b++) bits |= (uint64_t)((c[r0 + b] & mask) == 0) << b;
#endif
        } else {
            for (Py_ssize_t b = 0; r0 + b < n; b++) bits |= (uint64_t)((c[r0 + b] & mask) == 0) << b;
        }
        out[j] = bits;
    }
}

static void count_bits(Part *p) {
    uint64_t group[BITS_CHUNK];
    Py_ssize_t n = p->slots, words = (n + 63) / 64;
    for (Py_ssize_t w = p->w_lo; w < p->w_hi; w += BITS_CHUNK) {
        Py_ssize_t len = w + BITS_CHUNK < p->w_hi ? BITS_CHUNK : p->w_hi - w;
        int built = -2; /* the bit of the group now in ``group`` (-1: every filter) */
        for (int f = 0; f < p->nfacets; f++) {
            const Facet *F = &p->facets[f];
            if (!F->by_values) continue;
            if (built != F->bit) {
                group_bits(p->codes, n, w, len, F->bit >= 0 ? (uint8_t)(0xFFu & ~(1u << F->bit)) : 0xFF, group);
                built = F->bit;
            }
            for (Py_ssize_t v = 0; v < F->nvalues; v++) p->value_counts[f][v] += and_popcount(group, F->bitmaps + (size_t)v * (size_t)words + (size_t)w, len);
        }
    }
}

static void *bits_thread(void *arg) {
    count_bits(arg);
    return NULL;
}

static void *evaluate_thread(void *arg) {
    evaluate(arg);
    return NULL;
}

static void *count_thread(void *arg) {
    count_facets(arg);
    return NULL;
}

/* Run ``fn`` over every part: the first on this thread, the others on their own (or on this
 * one, after it, when a thread cannot be started). */
static void run_parts(Part *parts, int n, void *(*fn)(void *)) {
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < n; t++) started[t] = pthread_create(&tid[t], NULL, fn, &parts[t]) == 0;
    fn(&parts[0]);
    for (int t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            fn(&parts[t]);
    }
}

/* A C-contiguous buffer of ``n`` elements of ``size`` bytes whose struct format is one of
 * ``kinds`` or, where ``narrow`` is given, of ``narrow_size`` bytes and one of
 * ``narrow_kinds`` (then *narrow is set). */
static int column_of(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t size, const char *kinds, Py_ssize_t narrow_size,
                     const char *narrow_kinds, int *narrow, Py_ssize_t n, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    int single = f[0] != '\0' && f[1] == '\0';
    int wide_ok = single && view->itemsize == size && strchr(kinds, f[0]);
    int narrow_ok = single && narrow && view->itemsize == narrow_size && strchr(narrow_kinds, f[0]);
    if (!(wide_ok || narrow_ok) || (n >= 0 && view->len != n * view->itemsize)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd elements of %zd bytes (%s), got format %s, %zd bytes", what, n, size, kinds,
                     view->format ? view->format : "B", view->len);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    if (narrow) *narrow = !wide_ok;
    return 0;
}

static int column(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t size, const char *kinds, Py_ssize_t n, const char *what) {
    return column_of(obj, view, writable, size, kinds, 0, NULL, NULL, n, what);
}

/* scan(alive, terms, facet_codes, facets, codes, threads) -> (matches, modes)
 *
 * alive: bool[n]; codes: uint8[n], written (the row bytes above).
 * terms: (kind, bit, column, aux, value, lo, hi) each; bit 7 or a facet's bit 0..4:
 *   MIN_STATUS  float64 column >= value and int16 aux >= lo
 *   EQ_I16      int16 column == lo
 *   EQ_BOOL     bool column == lo
 *   RANGE_I64   lo <= int64 (or int32) column <= hi
 *   MIN_F64     float64 column >= value
 *   LUT         bool aux[int32 (or uint16) column] (a code beyond aux fails)
 * facet_codes: uint16 or uint32 [n][number of facets], each slot's code of each facet.
 * facets: (int32 or uint16 codes column, int64 counts[size] written, bit or -1) each, and
 *   optionally (uint64 bitmaps[values][words], int64 value_counts[values] written): one
 *   bitmap of the slots per value of the facet.
 * modes: per facet, 0 when its counts are its rows', 1 when they are those of the live rows
 *   outside (the caller subtracts), 2 when its value counts were written from the bitmaps
 *   instead (its counts are then not written). */
static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *alive_obj, *terms_obj, *matrix_obj, *facets_obj, *codes_obj;
    int threads;
    if (!PyArg_ParseTuple(args, "OOOOOi", &alive_obj, &terms_obj, &matrix_obj, &facets_obj, &codes_obj, &threads)) return NULL;
    PyObject *result = NULL;
    Py_buffer alive = {0}, codes = {0}, matrix = {0};
    Py_buffer views[2 * MAX_TERMS + 4 * MAX_FACETS];
    int nviews = 0;
    Term terms[MAX_TERMS];
    Part parts[MAX_THREADS];
    uint32_t *lanes[MAX_THREADS][MAX_FACETS] = {{0}};
    uint8_t *outcomes[MAX_TERMS] = {0};
    int64_t *counts_out[MAX_FACETS] = {0}, *values_out[MAX_FACETS] = {0};
    memset(parts, 0, sizeof parts);
    PyObject *tseq = NULL, *fseq = NULL;

    if (column(alive_obj, &alive, 0, 1, "?B", -1, "alive") < 0) return NULL;
    Py_ssize_t n = alive.len;
    if (column(codes_obj, &codes, 1, 1, "B", n, "codes") < 0) goto done;
    tseq = PySequence_Fast(terms_obj, "terms: a sequence");
    fseq = PySequence_Fast(facets_obj, "facets: a sequence");
    if (!tseq || !fseq) goto done;
    Py_ssize_t nterms = PySequence_Fast_GET_SIZE(tseq), nfacets = PySequence_Fast_GET_SIZE(fseq);
    if (nterms > MAX_TERMS || nfacets > MAX_FACETS) {
        PyErr_SetString(PyExc_ValueError, "too many terms or facets");
        goto done;
    }
    if (PyObject_GetBuffer(matrix_obj, &matrix, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    int wide = matrix.itemsize == 4;
    {
        const char *mf = matrix.format ? matrix.format : "B";
        if (*mf == '@' || *mf == '=' || *mf == '<') mf++;
        if (!((matrix.itemsize == 2 && !strcmp(mf, "H")) || (wide && (!strcmp(mf, "I") || !strcmp(mf, "i")))) ||
            matrix.len != n * (Py_ssize_t)nfacets * matrix.itemsize) {
            PyErr_Format(PyExc_ValueError, "facet codes: expected %zd x %zd uint16 or uint32, got format %s, %zd bytes", n, nfacets,
                         matrix.format ? matrix.format : "B", matrix.len);
            goto done;
        }
    }
    for (Py_ssize_t t = 0; t < nterms; t++) {
        Term *T = &terms[t];
        PyObject *col, *aux;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(tseq, t), "iiOOdLL", &T->kind, &T->bit, &col, &aux, &T->value, &T->lo, &T->hi)) goto done;
        if (T->bit < 0 || T->bit > BASE_BIT || (T->bit > 4 && T->bit != BASE_BIT)) {
            PyErr_SetString(PyExc_ValueError, "a term's bit is 0..4 (a facet's filter) or 7");
            goto done;
        }
        Py_buffer *cv = &views[nviews];
        static const struct {
            Py_ssize_t size;
            const char *kinds;
            Py_ssize_t narrow_size;
            const char *narrow_kinds;
        } col_of[] = {{8, "d", 0, NULL}, {2, "h", 0, NULL}, {1, "?B", 0, NULL}, {8, "lq", 4, "i"}, {8, "d", 0, NULL}, {4, "i", 2, "H"}};
        if (T->kind < MIN_STATUS || T->kind > LUT) {
            PyErr_Format(PyExc_ValueError, "unknown term kind %d", T->kind);
            goto done;
        }
        T->narrow = 0;
        if (column_of(col, cv, 0, col_of[T->kind].size, col_of[T->kind].kinds, col_of[T->kind].narrow_size, col_of[T->kind].narrow_kinds,
                      col_of[T->kind].narrow_kinds ? &T->narrow : NULL, n, "term column") < 0)
            goto done;
        nviews++;
        T->width = cv->itemsize;
        T->col = cv->buf;
        T->aux = NULL;
        T->outcome = NULL;
        if (T->kind == MIN_STATUS || T->kind == LUT) {
            Py_buffer *av = &views[nviews];
            if (T->kind == MIN_STATUS ? column(aux, av, 0, 2, "h", n, "term status") < 0 : column(aux, av, 0, 1, "?B", -1, "term table") < 0)
                goto done;
            nviews++;
            T->aux = av->buf;
            T->aux_len = av->len;
            if (T->kind == LUT && av->len < 1) {
                PyErr_SetString(PyExc_ValueError, "a term's table is empty");
                goto done;
            }
            if (T->kind == LUT) {
                uint8_t *outcome = outcomes[t] = malloc((size_t)av->len + 1);
                if (!outcome) {
                    PyErr_NoMemory();
                    goto done;
                }
                const uint8_t *lut = av->buf, fail = (uint8_t)(1u << T->bit);
                for (Py_ssize_t k = 0; k < av->len; k++) outcome[k] = lut[k] ? 0 : fail;
                outcome[av->len] = fail;
                T->outcome = outcome;
            }
        }
    }
    /* Filters without a facet of their own first, narrowest columns first: rows they fail
     * are not read by the later terms (evaluate). Insertion sort, stable. */
    for (Py_ssize_t t = 1; t < nterms; t++) {
        static const int width[] = {10, 2, 1, 8, 8, 4};
        Term x = terms[t];
        int key = (x.bit != BASE_BIT) * 16 + width[x.kind];
        Py_ssize_t u = t;
        while (u > 0 && (terms[u - 1].bit != BASE_BIT) * 16 + width[terms[u - 1].kind] > key) {
            terms[u] = terms[u - 1];
            u--;
        }
        terms[u] = x;
    }
    unsigned own_bits = 0;
    for (Py_ssize_t t = 0; t < nterms; t++)
        if (terms[t].bit != BASE_BIT) own_bits |= 1u << terms[t].bit;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    int nparts = n >= threads ? threads : 1;
    for (int t = 0; t < nparts; t++) {
        Part *p = &parts[t];
        p->lo = n * t / nparts;
        p->hi = n * (t + 1) / nparts;
        p->alive = alive.buf;
        p->codes = codes.buf;
        p->terms = terms;
        p->nterms = (int)nterms;
        p->nfacets = (int)nfacets;
        p->own_bits = own_bits;
        p->matrix = matrix.buf;
        p->wide = wide;
        p->slots = n;
    }
    Py_ssize_t words = (n + 63) / 64;
    for (Py_ssize_t f = 0; f < nfacets; f++) {
        PyObject *col, *counts, *bitmaps = Py_None, *value_counts = Py_None;
        int bit;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fseq, f), "OOi|OO", &col, &counts, &bit, &bitmaps, &value_counts)) goto done;
        if ((bitmaps == Py_None) != (value_counts == Py_None)) {
            PyErr_SetString(PyExc_ValueError, "a facet's bitmaps come with its value counts");
            goto done;
        }
        if (bit < -1 || bit > 4) {
            PyErr_SetString(PyExc_ValueError, "a facet's bit is -1 or 0..4");
            goto done;
        }
        Py_buffer *cv = &views[nviews];
        int narrow = 0;
        if (column_of(col, cv, 0, 4, "i", 2, "H", &narrow, n, "facet column") < 0) goto done;
        nviews++;
        Py_buffer *kv = &views[nviews];
        if (column(counts, kv, 1, 8, "lq", -1, "facet counts") < 0) goto done;
        nviews++;
        Py_ssize_t size = kv->len / 8;
        if (size > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "facet counts: too many codes");
            goto done;
        }
        memset(kv->buf, 0, (size_t)kv->len);
        counts_out[f] = kv->buf;
        for (int t = 0; t < nparts; t++) {
            Facet *F = &parts[t].facets[f];
            F->col = cv->buf;
            F->narrow = narrow;
            F->size = size;
            F->bit = bit;
            F->lanes = lanes[t][f] = calloc(4 * (size_t)(size ? size : 1), sizeof(uint32_t));
            if (!F->lanes) {
                PyErr_NoMemory();
                goto done;
            }
        }
        if (bitmaps != Py_None) {
            Py_buffer *vv = &views[nviews];
            if (column(value_counts, vv, 1, 8, "lq", -1, "facet value counts") < 0) goto done;
            nviews++;
            Py_ssize_t nvalues = vv->len / 8;
            Py_buffer *bv = &views[nviews];
            if (column(bitmaps, bv, 0, 8, "LQ", nvalues * words, "facet bitmaps (values x words)") < 0) goto done;
            nviews++;
            memset(vv->buf, 0, (size_t)vv->len);
            values_out[f] = vv->buf;
            for (int t = 0; t < nparts; t++) {
                parts[t].facets[f].bitmaps = bv->buf;
                parts[t].facets[f].nvalues = nvalues;
                parts[t].value_counts[f] = calloc((size_t)(nvalues ? nvalues : 1), sizeof(uint64_t));
                if (!parts[t].value_counts[f]) {
                    PyErr_NoMemory();
                    goto done;
                }
            }
        }
    }

    int complemented[MAX_FACETS] = {0}, by_values[MAX_FACETS] = {0}, any_by_values = 0;
    Group groups[MAX_FACETS];
    int ngroups = 0, bad = 0;
    int64_t matches = 0;
    Py_BEGIN_ALLOW_THREADS;
    run_parts(parts, nparts, evaluate_thread);
    int64_t dead = 0, single[BASE_BIT] = {0};
    for (int t = 0; t < nparts; t++) {
        matches += parts[t].matches;
        dead += parts[t].dead;
        for (int b = 0; b < BASE_BIT; b++) single[b] += parts[t].single[b];
    }
    int64_t live = n - dead;
    for (Py_ssize_t f = 0; f < nfacets; f++) {
        int bit = parts[0].facets[f].bit;
        int64_t inside = matches + (bit >= 0 ? single[bit] : 0);
        complemented[f] = 2 * inside > live;
        int64_t rows = complemented[f] ? live - inside : inside;
        if (parts[0].facets[f].bitmaps && parts[0].facets[f].nvalues * words <= WORDS_PER_ROW * rows) {
            by_values[f] = any_by_values = 1;
            for (int t = 0; t < nparts; t++) parts[t].facets[f].by_values = 1;
            continue;
        }
        uint8_t mask = bit >= 0 ? (uint8_t)(0xFFu & ~(1u << bit)) : 0xFF;
        int g = 0;
        while (g < ngroups && !(groups[g].mask == mask && groups[g].complemented == complemented[f])) g++;
        if (g == ngroups) groups[ngroups++] = (Group){.mask = mask, .complemented = complemented[f], .nfacets = 0};
        groups[g].facets[groups[g].nfacets++] = (int)f;
    }
    for (int t = 0; t < nparts; t++) {
        parts[t].groups = groups;
        parts[t].ngroups = ngroups;
    }
    run_parts(parts, nparts, count_thread);
    if (any_by_values) {
        for (int t = 0; t < nparts; t++) {
            parts[t].w_lo = words * t / nparts;
            parts[t].w_hi = words * (t + 1) / nparts;
        }
        run_parts(parts, nparts, bits_thread);
        for (int t = 0; t < nparts; t++)
            for (Py_ssize_t f = 0; f < nfacets; f++)
                if (by_values[f])
                    for (Py_ssize_t v = 0; v < parts[t].facets[f].nvalues; v++) values_out[f][v] += (int64_t)parts[t].value_counts[f][v];
    }
    for (int t = 0; t < nparts; t++) {
        bad |= parts[t].bad_code;
        for (Py_ssize_t f = 0; f < nfacets; f++) {
            const Facet *F = &parts[t].facets[f];
            for (Py_ssize_t k = 0; k < F->size; k++)
                counts_out[f][k] += (int64_t)F->lanes[k] + F->lanes[F->size + k] + F->lanes[2 * F->size + k] + F->lanes[3 * F->size + k];
        }
    }
    Py_END_ALLOW_THREADS;
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "a facet column holds a code beyond its counts");
        goto done;
    }
    PyObject *flags = PyTuple_New(nfacets);
    if (!flags) goto done;
    for (Py_ssize_t f = 0; f < nfacets; f++) PyTuple_SET_ITEM(flags, f, PyLong_FromLong(by_values[f] ? 2 : complemented[f]));
    result = Py_BuildValue("LN", (long long)matches, flags);

done:
    for (int t = 0; t < MAX_THREADS; t++)
        for (int f = 0; f < MAX_FACETS; f++) {
            free(lanes[t][f]);
            free(parts[t].value_counts[f]);
        }
    for (int t = 0; t < MAX_TERMS; t++) free(outcomes[t]);
    for (int v = 0; v < nviews; v++) PyBuffer_Release(&views[v]);
    if (matrix.obj) PyBuffer_Release(&matrix);
    if (codes.obj) PyBuffer_Release(&codes);
    if (alive.obj) PyBuffer_Release(&alive);
    Py_XDECREF(tseq);
    Py_XDECREF(fseq);
    return result;
}

/* ordered_matches(codes, place, perm, out) -> count
 *
 * The slots whose code is 0 (every filter passes), in the ordering's order: each match's
 * place (the inverse of ``perm``) is marked in a bitmap, and the marked places are read back
 * in order through ``perm``. Costs the rows plus n/64 words: no sort. */
static PyObject *ordered_matches(PyObject *self, PyObject *args) {
    PyObject *codes_obj, *place_obj, *perm_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &codes_obj, &place_obj, &perm_obj, &out_obj)) return NULL;
    Py_buffer codes = {0}, place = {0}, perm = {0}, out = {0};
    PyObject *result = NULL;
    if (column(codes_obj, &codes, 0, 1, "B", -1, "codes") < 0) return NULL;
    Py_ssize_t n = codes.len;
    if (column(place_obj, &place, 0, 8, "lq", n, "place") < 0 || column(perm_obj, &perm, 0, 8, "lq", n, "perm") < 0 ||
        column(out_obj, &out, 1, 8, "lq", -1, "out") < 0)
        goto done;
    size_t words = (size_t)(n + 63) / 64;
    uint64_t *marks = calloc(words ? words : 1, sizeof(uint64_t));
    if (!marks) {
        PyErr_NoMemory();
        goto done;
    }
    const uint8_t *c = codes.buf;
    const int64_t *pl = place.buf, *pe = perm.buf;
    int64_t *o = out.buf;
    Py_ssize_t room = out.len / 8, k = 0;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS;
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16) { /* sixteen bytes at a time: the matches are few */
        unsigned hits = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(c + i)), zero));
        while (hits) {
            uint64_t p = (uint64_t)pl[i + __builtin_ctz(hits)];
            hits &= hits - 1;
            if (p < (uint64_t)n)
                marks[p >> 6] |= 1ull << (p & 63);
            else
                bad = 1;
        }
    }
#endif
    for (; i < n; i++) {
        if (c[i]) continue;
        uint64_t p = (uint64_t)pl[i];
        if (p < (uint64_t)n)
            marks[p >> 6] |= 1ull << (p & 63);
        else
            bad = 1;
    }
    for (size_t w = 0; w < words && !bad; w++) {
        uint64_t m = marks[w];
        while (m) {
            uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(m);
            m &= m - 1;
            int64_t slot = pe[p];
            if (k >= room || slot < 0 || slot >= n) {
                bad = 1;
                break;
            }
            o[k++] = slot;
        }
    }
    Py_END_ALLOW_THREADS;
    free(marks);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "place, perm and out do not fit the matches (not inverse permutations, or out too short)");
        goto done;
    }
    result = PyLong_FromSsize_t(k);
done:
    if (out.obj) PyBuffer_Release(&out);
    if (perm.obj) PyBuffer_Release(&perm);
    if (place.obj) PyBuffer_Release(&place);
    if (codes.obj) PyBuffer_Release(&codes);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "One search's filters and disjunctive facet counts over the catalogue columns."},
    {"ordered_matches", ordered_matches, METH_VARARGS, "The matching slots in an ordering's order (no sort)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_catalogue_scan", "The catalogue index's compiled search pass.", -1, methods,
};

PyMODINIT_FUNC PyInit__catalogue_scan(void) {
    bit_positions_init();
    PyObject *mod = PyModule_Create(&module);
    if (mod && (PyModule_AddIntConstant(mod, "ABI", SCAN_ABI) < 0 ||
                PyModule_AddStringConstant(mod, "SOURCE_SHA256", SCAN_SOURCE_SHA256) < 0 ||
                PyModule_AddIntConstant(mod, "BASE_BIT", BASE_BIT) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
