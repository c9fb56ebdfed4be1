/* COCO run-length masks: decoding, polygon rasterization, pair intersections, and a
 * parser for detection-results files that never builds a Python object per result.
 *
 * Exactness: rasterization, merging, box and string coding are line-for-line ports of
 * pycocotools' maskApi.c (rleFrPoly, rleMerge, rleToBbox, rleToString, rleFrString), with
 * the same integer and double arithmetic, compiled without FP contraction (build.py). The
 * IoU of a pair is pycocotools' rleIou: i / u with u = area(d) + area(g) - i, or area(d)
 * for a crowd reference, 0 when i == 0. A pair whose boxes do not overlap has i == 0, so
 * skipping rleIou's box pre-check changes nothing.
 */
#include "native.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef uint32_t uint;

/* ------------------------------------------------------------------------------------ */
/* Growable arrays (scratch and outputs). */

typedef struct {
    char *p;
    size_t n, cap;
} Bytes;

static int bytes_reserve(Bytes *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int bytes_put(Bytes *b, const void *src, size_t len) {
    if (bytes_reserve(b, len) < 0) return -1;
    memcpy(b->p + b->n, src, len);
    b->n += len;
    return 0;
}

static void *grow(void *p, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = realloc(p, c * item);
    if (!q) return NULL;
    *cap = c;
    return q;
}

/* ------------------------------------------------------------------------------------ */
/* String coding (rleFrString / rleToString).
 *
 * A string is given as blob[start:stop]. With `escaped`, the bytes are a JSON string's
 * content as it lies in the results file (the parser accepts only the escapes \\ \" \/ in
 * counts, so a backslash means "take the next byte"); otherwise they are raw. */

/* Runs in one string, or -1 when it ends inside a value (pycocotools would read past the
 * terminator). */
static int64_t string_runs(const unsigned char *s, int64_t len, int escaped) {
    int64_t m = 0;
    int open = 0;
    for (int64_t p = 0; p < len; p++) {
        if (escaped && s[p] == '\\') {
            if (++p >= len) return -1;
        }
        signed char c = (signed char)(s[p] - 48);
        if (c & 0x20) open = 1;
        else { m++; open = 0; }
    }
    return open ? -1 : m;
}

/* Decode into cnts (room for cap runs); returns the runs decoded, or -1 when the string holds
 * more than cap runs or ends inside a value. */
static int64_t string_decode(const unsigned char *s, int64_t len, int escaped, uint *cnts, int64_t cap) {
    int64_t m = 0, p = 0;
    while (p < len) {
        if (m >= cap) return -1;
        long x = 0;
        int k = 0, more = 1;
        while (more) {
            if (p >= len) return -1;
            if (escaped && s[p] == '\\' && ++p >= len) return -1;
            signed char c = (signed char)(s[p] - 48);
            x |= (long)(c & 0x1f) << (5 * k);
            more = c & 0x20;
            p++;
            k++;
            if (!more && (c & 0x10)) x |= (long)(~0UL << (5 * k)); /* sign-extend */
        }
        if (m > 2) x += (long)cnts[m - 2];
        cnts[m++] = (uint)x;
    }
    return m;
}

static int string_encode(const uint *cnts, int64_t m, Bytes *out) {
    if (bytes_reserve(out, (size_t)m * 7 + 1) < 0) return -1;
    for (int64_t i = 0; i < m; i++) {
        long x = (long)cnts[i];
        if (i > 2) x -= (long)cnts[i - 2];
        int more = 1;
        while (more) {
            char c = x & 0x1f;
            x >>= 5;
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            c += 48;
            out->p[out->n++] = c;
        }
    }
    return 0;
}

/* rleToBbox for one mask; area as rleArea.
 *
 * maskApi.c finds the (x, y) of each run's end pixel with a division and a modulo by h; here
 * the position is advanced run by run (a division only for runs longer than a column), which
 * gives the same pixels for well-formed masks. Anything odd (a pixel index before 0 or past
 * 2^32) takes maskApi.c's own arithmetic. */
static void counts_box_area(const uint *cnts, int64_t m0, uint h, uint w, double *bb, int64_t *area) {
    int64_t a = 0;
    for (int64_t j = 1; j < m0; j += 2) a += cnts[j];
    *area = a;
    int64_t m = (m0 / 2) * 2;
    uint xs = w, ys = h, xe = 0, ye = 0, xp = 0;
    if (m == 0 || h == 0) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
        return;
    }
    uint64_t cc = 0;     /* pixels before the next run */
    uint64_t px = 0, py = 0; /* (column, row) of pixel cc */
    for (int64_t j = 0; j < m; j++) {
        uint len = cnts[j];
        cc += len;
        if (len < h) {
            py += len;
            if (py >= h) { py -= h; px++; }
        } else {
            px += len / h;
            py += len % h;
            if (py >= h) { py -= h; px++; }
        }
        uint x, y;
        if (cc > 0xFFFFFFFFull || (j % 2 && cc == 0)) { /* maskApi.c's uint arithmetic */
            uint t = (uint)cc - (uint)(j % 2);
            y = t % h;
            x = (t - y) / h;
        } else if (j % 2 == 0) {
            x = (uint)px;
            y = (uint)py;
        } else if (py > 0) { /* the run's last pixel: one before cc */
            x = (uint)px;
            y = (uint)py - 1;
        } else {
            x = (uint)px - 1;
            y = h - 1;
        }
        if (j % 2 == 0) xp = x;
        else if (xp < x) { ys = 0; ye = h - 1; }
        xs = xs < x ? xs : x;
        xe = xe > x ? xe : x;
        ys = ys < y ? ys : y;
        ye = ye > y ? ye : y;
    }
    bb[0] = xs;
    bb[2] = xe - xs + 1;
    bb[1] = ys;
    bb[3] = ye - ys + 1;
}

/* string_decode + counts_box_area in one pass, keeping no runs: box, area and covered of one
 * string; returns -1 when the string ends inside a value. The box follows counts_box_area
 * run by run; a background run's pixel only counts once the foreground run after it exists
 * (maskApi.c drops a trailing odd run). */
static int decode_box_area(const unsigned char *s, int64_t len, int escaped, uint h, uint w, double *bb, int64_t *area_out,
                           int64_t *covered) {
    int64_t m = 0, p = 0, area = 0, sum = 0;
    uint prev1 = 0, prev2 = 0; /* runs m-1 and m-2, for the delta coding */
    uint64_t cc = 0, px = 0, py = 0;
    uint xs = w, ys = h, xe = 0, ye = 0, xp = 0, bgx = 0, bgy = 0;
    int fg_seen = 0;
    while (p < len) {
        long x = 0;
        int k = 0, more = 1;
        while (more) {
            if (p >= len) return -1;
            if (escaped && s[p] == '\\' && ++p >= len) return -1;
            signed char c = (signed char)(s[p] - 48);
            x |= (long)(c & 0x1f) << (5 * k);
            more = c & 0x20;
            p++;
            k++;
            if (!more && (c & 0x10)) x |= (long)(~0UL << (5 * k));
        }
        if (m > 2) x += (long)prev2;
        uint run = (uint)x;
        prev2 = prev1;
        prev1 = run;
        sum += run;
        if (h == 0) { m++; continue; }
        cc += run;
        if (run < h) {
            py += run;
            if (py >= h) { py -= h; px++; }
        } else {
            px += run / h;
            py += run % h;
            if (py >= h) { py -= h; px++; }
        }
        uint bx, by;
        if (cc > 0xFFFFFFFFull || (m % 2 && cc == 0)) {
            uint t = (uint)cc - (uint)(m % 2);
            by = t % h;
            bx = (t - by) / h;
        } else if (m % 2 == 0) {
            bx = (uint)px;
            by = (uint)py;
        } else if (py > 0) {
            bx = (uint)px;
            by = (uint)py - 1;
        } else {
            bx = (uint)px - 1;
            by = h - 1;
        }
        if (m % 2 == 0) { /* pending until its foreground run arrives */
            bgx = bx;
            bgy = by;
        } else {
            area += run;
            fg_seen = 1;
            /* the background run's pixel first, then this run's, as maskApi.c's loop */
            xp = bgx;
            xs = xs < bgx ? xs : bgx;
            xe = xe > bgx ? xe : bgx;
            ys = ys < bgy ? ys : bgy;
            ye = ye > bgy ? ye : bgy;
            if (xp < bx) { ys = 0; ye = h - 1; }
            xs = xs < bx ? xs : bx;
            xe = xe > bx ? xe : bx;
            ys = ys < by ? ys : by;
            ye = ye > by ? ye : by;
        }
        m++;
    }
    *area_out = area;
    *covered = sum;
    if (!fg_seen || h == 0) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
    } else {
        bb[0] = xs;
        bb[2] = xe - xs + 1;
        bb[1] = ys;
        bb[3] = ye - ys + 1;
    }
    return 0;
}

/* Arguments shared by the string kernels: blob, start i64[N], stop i64[N]. */
typedef struct {
    Py_buffer blob, start, stop;
    Py_ssize_t n;
    int escaped;
} Strings;

static int strings_check(Strings *S) {
    S->n = S->start.len / 8;
    if (nb_check(&S->stop, S->n, 8, "stop") < 0) return -1;
    const int64_t *a = S->start.buf, *b = S->stop.buf;
    for (Py_ssize_t i = 0; i < S->n; i++)
        if (a[i] < 0 || b[i] < a[i] || b[i] > S->blob.len) {
            PyErr_Format(PyExc_ValueError, "string %zd out of the blob", i);
            return -1;
        }
    return 0;
}

static void strings_release(Strings *S) {
    PyBuffer_Release(&S->blob);
    PyBuffer_Release(&S->start);
    PyBuffer_Release(&S->stop);
}

#define STR(S, i) ((const unsigned char *)(S).blob.buf + ((const int64_t *)(S).start.buf)[i])
#define STRLEN(S, i) (((const int64_t *)(S).stop.buf)[i] - ((const int64_t *)(S).start.buf)[i])

/* count_runs(blob, start, stop, escaped, out_runs i64[N]) -> None; -1 marks a malformed string. */
static PyObject *py_count_runs(PyObject *self, PyObject *args) {
    Strings S;
    Py_buffer out;
    if (!PyArg_ParseTuple(args, "y*y*y*pw*", &S.blob, &S.start, &S.stop, &S.escaped, &out)) return NULL;
    PyObject *ret = NULL;
    if (strings_check(&S) < 0 || nb_check(&out, S.n, 8, "out_runs") < 0) goto done;
    int64_t *r = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < S.n; i++) r[i] = string_runs(STR(S, i), STRLEN(S, i), S.escaped);
    Py_END_ALLOW_THREADS
    ret = Py_None;
    Py_INCREF(ret);
done:
    strings_release(&S);
    PyBuffer_Release(&out);
    return ret;
}

/* decode(blob, start, stop, escaped, heights i64[N], widths i64[N], run_off i64[N+1],
 *        counts u32[run_off[N]] out, area i64[N] out, box f64[N,4] out, covered i64[N] out)
 * run_off from count_runs (malformed strings given as empty). covered[i] is the sum of the
 * runs (h*w for a well-formed mask). */
static PyObject *py_decode(PyObject *self, PyObject *args) {
    Strings S;
    Py_buffer hb, wb, rob, cb, ab, bb, covb;
    if (!PyArg_ParseTuple(args, "y*y*y*py*y*y*w*w*w*w*", &S.blob, &S.start, &S.stop, &S.escaped, &hb, &wb, &rob, &cb, &ab, &bb, &covb))
        return NULL;
    PyObject *ret = NULL;
    Py_ssize_t mismatch = -1;
    if (strings_check(&S) < 0) goto done;
    Py_ssize_t n = S.n;
    if (nb_check(&hb, n, 8, "heights") < 0 || nb_check(&wb, n, 8, "widths") < 0 || nb_check(&rob, n + 1, 8, "run_off") < 0 ||
        nb_check(&ab, n, 8, "area") < 0 || nb_check(&bb, n * 4, 8, "box") < 0 || nb_check(&covb, n, 8, "covered") < 0)
        goto done;
    const int64_t *ro = rob.buf, *hs = hb.buf, *ws = wb.buf;
    if (nb_check(&cb, ro[n], 4, "counts") < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++)
        if (ro[i + 1] < ro[i] || ro[i + 1] > ro[n]) {
            PyErr_SetString(PyExc_ValueError, "run_off out of range");
            goto done;
        }
    uint *counts = cb.buf;
    int64_t *area = ab.buf, *cov = covb.buf;
    double *box = bb.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint *c = counts + ro[i];
        int64_t m = ro[i + 1] - ro[i];
        if (string_decode(STR(S, i), STRLEN(S, i), S.escaped, c, m) != m) {
            mismatch = i;
            break;
        }
        int64_t sum = 0;
        for (int64_t j = 0; j < m; j++) sum += c[j];
        cov[i] = sum;
        counts_box_area(c, m, (uint)hs[i], (uint)ws[i], box + 4 * i, area + i);
    }
    Py_END_ALLOW_THREADS
    if (mismatch >= 0) {
        PyErr_Format(PyExc_ValueError, "run_off does not match string %zd", mismatch);
        goto done;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    strings_release(&S);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&rob);
    PyBuffer_Release(&cb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&covb);
    return ret;
}

/* box_area(blob, start, stop, escaped, heights, widths, area i64[N] out, box f64[N,4] out,
 *          covered i64[N] out) -> None
 * decode's box, area and covered without keeping the runs; covered is
 * -1 for a string that ends inside a value. */
static PyObject *py_box_area(PyObject *self, PyObject *args) {
    Strings S;
    Py_buffer hb, wb, ab, bb, covb;
    if (!PyArg_ParseTuple(args, "y*y*y*py*y*w*w*w*", &S.blob, &S.start, &S.stop, &S.escaped, &hb, &wb, &ab, &bb, &covb)) return NULL;
    PyObject *ret = NULL;
    if (strings_check(&S) < 0) goto done;
    Py_ssize_t n = S.n;
    if (nb_check(&hb, n, 8, "heights") < 0 || nb_check(&wb, n, 8, "widths") < 0 || nb_check(&ab, n, 8, "area") < 0 ||
        nb_check(&bb, n * 4, 8, "box") < 0 || nb_check(&covb, n, 8, "covered") < 0)
        goto done;
    const int64_t *hs = hb.buf, *ws = wb.buf;
    int64_t *area = ab.buf, *cov = covb.buf;
    double *box = bb.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (decode_box_area(STR(S, i), STRLEN(S, i), S.escaped, (uint)hs[i], (uint)ws[i], box + 4 * i, area + i, cov + i) < 0) {
            cov[i] = -1;
            area[i] = 0;
            box[4 * i] = box[4 * i + 1] = box[4 * i + 2] = box[4 * i + 3] = 0;
        }
    }
    Py_END_ALLOW_THREADS
    ret = Py_None;
    Py_INCREF(ret);
done:
    strings_release(&S);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&covb);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* Pair intersections. */

/* Pixels in both masks: walk the foreground intervals (odd runs) of both. */
static uint64_t intersection(const uint *a, int64_t na, const uint *b, int64_t nb) {
    if (na < 2 || nb < 2) return 0;
    uint64_t inter = 0;
    int64_t i = 1, j = 1;
    uint64_t as = a[0], bs = b[0];
    uint64_t ae = as + a[1], be = bs + b[1];
    for (;;) {
        if (ae <= bs) {
            if (i + 2 >= na) break;
            as = ae + a[i + 1];
            i += 2;
            ae = as + a[i];
        } else if (be <= as) {
            if (j + 2 >= nb) break;
            bs = be + b[j + 1];
            j += 2;
            be = bs + b[j];
        } else {
            inter += (ae < be ? ae : be) - (as > bs ? as : bs);
            if (ae <= be) {
                if (i + 2 >= na) break;
                as = ae + a[i + 1];
                i += 2;
                ae = as + a[i];
            } else {
                if (j + 2 >= nb) break;
                bs = be + b[j + 1];
                j += 2;
                be = bs + b[j];
            }
        }
    }
    return inter;
}

/* Decoded references, kept while consecutive pairs use them. Pairs come grouped by image, so
 * the cache is dropped (not grown) once it holds more than a bound of runs. */
typedef struct {
    int64_t *slot;     /* per reference: offset in arena, -1 when not decoded */
    int64_t *len;      /* runs */
    int64_t *touched;  /* references decoded since the last drop */
    int64_t ntouched;
    uint *arena;
    size_t used, cap;
} RefCache;

#define REF_CACHE_RUNS (1 << 20)

/* pair_ious(d_blob, d_start, d_stop, d_escaped, g_blob, g_start, g_stop, g_escaped,
 *           pd i64[P], pg i64[P], d_area i64[D], g_area i64[G], g_crowd u8[G], out f64[P])
 * rleIou of each pair, decoding the strings on the fly (each detection once per run of equal
 * pd, each reference once per image). Strings must be well formed (box_area's covered). */
static PyObject *py_pair_ious(PyObject *self, PyObject *args) {
    Strings D, G;
    Py_buffer pdb, pgb, dab, gab, crb, outb;
    if (!PyArg_ParseTuple(args, "y*y*y*py*y*y*py*y*y*y*y*w*", &D.blob, &D.start, &D.stop, &D.escaped, &G.blob, &G.start, &G.stop,
                          &G.escaped, &pdb, &pgb, &dab, &gab, &crb, &outb))
        return NULL;
    PyObject *ret = NULL;
    RefCache C = {0};
    uint *dbuf = NULL;
    size_t dcap = 0;
    int err = 0;
    if (strings_check(&D) < 0 || strings_check(&G) < 0) goto done;
    Py_ssize_t P = pdb.len / 8;
    if (nb_check(&pgb, P, 8, "pg") < 0 || nb_check(&dab, D.n, 8, "d_area") < 0 || nb_check(&gab, G.n, 8, "g_area") < 0 ||
        nb_check(&crb, G.n, 1, "g_crowd") < 0 || nb_check(&outb, P, 8, "out") < 0)
        goto done;
    const int64_t *pd = pdb.buf, *pg = pgb.buf, *da = dab.buf, *ga = gab.buf;
    const unsigned char *crowd = crb.buf;
    for (Py_ssize_t k = 0; k < P; k++)
        if (pd[k] < 0 || pd[k] >= D.n || pg[k] < 0 || pg[k] >= G.n) {
            PyErr_SetString(PyExc_ValueError, "pair index out of range");
            goto done;
        }
    C.slot = malloc(sizeof(int64_t) * (G.n + 1));
    C.len = malloc(sizeof(int64_t) * (G.n + 1));
    C.touched = malloc(sizeof(int64_t) * (G.n + 1));
    if (!C.slot || !C.len || !C.touched) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t g = 0; g < G.n; g++) C.slot[g] = -1;
    double *out = outb.buf;
    Py_BEGIN_ALLOW_THREADS
    int64_t cur_d = -1, nd = 0;
    for (Py_ssize_t k = 0; k < P && !err; k++) {
        int64_t d = pd[k], g = pg[k];
        if (d != cur_d) {
            int64_t len = STRLEN(D, d);
            if (!(dbuf = grow(dbuf, &dcap, (size_t)len + 1, sizeof(uint)))) { err = 1; break; }
            nd = string_decode(STR(D, d), len, D.escaped, dbuf, len + 1);
            if (nd < 0) { err = 2; break; }
            cur_d = d;
        }
        if (C.slot[g] < 0) {
            int64_t len = STRLEN(G, g);
            if (C.used + (size_t)len + 1 > REF_CACHE_RUNS && C.ntouched) { /* drop the cache */
                for (int64_t t = 0; t < C.ntouched; t++) C.slot[C.touched[t]] = -1;
                C.ntouched = 0;
                C.used = 0;
            }
            if (!(C.arena = grow(C.arena, &C.cap, C.used + (size_t)len + 1, sizeof(uint)))) { err = 1; break; }
            int64_t m = string_decode(STR(G, g), len, G.escaped, C.arena + C.used, len + 1);
            if (m < 0) { err = 2; break; }
            C.slot[g] = (int64_t)C.used;
            C.len[g] = m;
            C.touched[C.ntouched++] = g;
            C.used += (size_t)m;
        }
        uint64_t i = intersection(dbuf, nd, C.arena + C.slot[g], C.len[g]);
        if (i == 0) out[k] = 0.0;
        else if (crowd[g]) out[k] = (double)i / (double)(uint64_t)da[d];
        else out[k] = (double)i / (double)((uint64_t)da[d] + (uint64_t)ga[g] - i);
    }
    Py_END_ALLOW_THREADS
    if (err == 1) PyErr_NoMemory();
    else if (err == 2) PyErr_SetString(PyExc_ValueError, "malformed RLE string in a pair");
    else {
        ret = Py_None;
        Py_INCREF(ret);
    }
done:
    free(C.slot); free(C.len); free(C.touched); free(C.arena); free(dbuf);
    strings_release(&D);
    strings_release(&G);
    PyBuffer_Release(&pdb);
    PyBuffer_Release(&pgb);
    PyBuffer_Release(&dab);
    PyBuffer_Release(&gab);
    PyBuffer_Release(&crb);
    PyBuffer_Release(&outb);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* Polygon rasterization (rleFrPoly) and union (rleMerge). */

typedef struct {
    int *x, *y, *u, *v, *cnt, *yb;
    uint *a, *b;
    size_t cx, cy, cu, cv, ca, cb, ccnt, cyb;
} PolyScratch;

static int uint_compare(const void *a, const void *b) {
    uint c = *((const uint *)a), d = *((const uint *)b);
    return c > d ? 1 : c < d ? -1 : 0;
}

static int umax_i(int a, int b) { return a > b ? a : b; }

/* Ascending sort of uints: quicksort with insertion sort for short ranges (qsort's
 * callback per comparison dominated rasterization). Equal values are indistinguishable,
 * so any correct sort gives maskApi.c's result. Deep recursion falls back to qsort. */
static void sort_uint(uint *a, int64_t n, int depth) {
    while (n > 16) {
        if (depth-- == 0) { qsort(a, n, sizeof(uint), uint_compare); return; }
        uint x = a[0], y = a[n / 2], z = a[n - 1];
        uint pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i >= j) break;
            uint t = a[i]; a[i] = a[j]; a[j] = t;
            i++;
            j--;
        }
        /* a[0..j] <= pivot <= a[j+1..n-1]; recurse on the smaller side */
        if (j + 1 < n - j - 1) { sort_uint(a, j + 1, depth); a += j + 1; n -= j + 1; }
        else { sort_uint(a + j + 1, n - j - 1, depth); n = j + 1; }
    }
    for (int64_t i = 1; i < n; i++) {
        uint v = a[i];
        int64_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

/* Grow the scratch arrays x, y to n ints (0 on success). */
static int scratch_xy(PolyScratch *S, size_t n) {
    if (!(S->x = grow(S->x, &S->cx, n, sizeof(int)))) return -1;
    if (!(S->y = grow(S->y, &S->cy, n, sizeof(int)))) return -1;
    return 0;
}

/* rleFrPoly into out (grown as needed); returns the number of runs or -1 (no memory).
 * h and w are size_t as in maskApi.c, so that `xd > w-1` and `yd > h` compare alike. */
static int64_t fr_poly(PolyScratch *S, const double *xy, int64_t k, size_t h, size_t w, uint **out, size_t *out_cap) {
    int64_t j, m = 0;
    double scale = 5;
    int *x, *y, *u, *v;
    if (scratch_xy(S, (size_t)k + 1) < 0) return -1;
    x = S->x;
    y = S->y;
    for (j = 0; j < k; j++) x[j] = (int)(scale * xy[j * 2 + 0] + .5);
    x[k] = x[0];
    for (j = 0; j < k; j++) y[j] = (int)(scale * xy[j * 2 + 1] + .5);
    y[k] = y[0];
    for (j = 0; j < k; j++) m += umax_i(abs(x[j] - x[j + 1]), abs(y[j] - y[j + 1])) + 1;
    /* Note: for 0 <= ux < 2^30, xd = (ux + .5) / 5 - .5 is computed to within 2^-20 of the
     * real (ux - 2) / 5, whose fraction is a multiple of 0.2, so it is an integer (and the
     * point kept) only when (ux - 2) % 5 == 0; other columns skip the double arithmetic.
     *
     * Walk the densely upsampled boundary point by point (maskApi.c stores it in u/v and
     * then scans consecutive pairs; streaming the scan gives the same points in the same
     * order without the two arrays). Each y-boundary crossing becomes one (x, y). */
    int *bx = x, *by = y; /* the integer polygon; crossings go to u/v */
    if (!(S->u = grow(S->u, &S->cu, (size_t)m + 1, sizeof(int)))) return -1;
    if (!(S->v = grow(S->v, &S->cv, (size_t)m + 1, sizeof(int)))) return -1;
    u = S->u;
    v = S->v;
    int64_t nout = 0;
    int pu = 0, pv = 0, have_prev = 0;
    double xd, yd;
    /* One boundary point (cu, cv) after (pu, pv): maskApi.c's y-boundary test. */
#define EMIT(cu_, cv_, pv_)                                                      \
    do {                                                                         \
        xd = (double)((cu_) < pu ? (cu_) : (cu_) - 1);                           \
        xd = (xd + .5) / scale - .5;                                             \
        if (!(floor(xd) != xd || xd < 0 || xd > w - 1)) {                        \
            yd = (double)((cv_) < (pv_) ? (cv_) : (pv_));                        \
            yd = (yd + .5) / scale - .5;                                         \
            if (yd < 0) yd = 0;                                                  \
            else if (yd > h) yd = h;                                             \
            yd = ceil(yd);                                                       \
            u[nout] = (int)xd;                                                   \
            v[nout] = (int)yd;                                                   \
            nout++;                                                              \
        }                                                                        \
    } while (0)
    /* EMIT for a point whose ux = min(cu, pu) or cu - 1 is known to be 5q + 2 with |ux| and
     * |v| below 2^30: then xd = q exactly, and ceil(yd) with yd = (yv + .5) / 5 - .5 is the
     * integer ceil((yv - 2) / 5) (the real value is a multiple of 0.2, the double within
     * 2^-20 of it, as in the note above); the clamps compare the same way. */
#define EMIT_FAST(ux_, cv_, pv_)                                                 \
    do {                                                                         \
        int ux__ = (ux_);                                                        \
        if (ux__ >= 2 && (size_t)((ux__ - 2) / 5) <= w - 1) {                    \
            int yv__ = (cv_) < (pv_) ? (cv_) : (pv_), num__ = yv__ - 2;          \
            u[nout] = (ux__ - 2) / 5;                                            \
            v[nout] = num__ <= 0 ? 0 : (size_t)num__ > 5 * h ? (int)h : (num__ + 4) / 5; \
            nout++;                                                              \
        }                                                                        \
    } while (0)
    /* xd is an integer only for ux = 5q + 2 (see the note above): skip the rest cheaply */
#define MAY_EMIT(cu_) (have_prev && (cu_) != pu && !((ux_ = (cu_) < pu ? (cu_) : (cu_) - 1) >= 0 && ux_ < (1 << 30) && (ux_ - 2) % 5 != 0))
    int ux_;
    for (j = 0; j < k; j++) {
        int xs = bx[j], xe = bx[j + 1], ys = by[j], ye = by[j + 1], dx, dy, t, d;
        int flip;
        double s;
        dx = abs(xe - xs);
        dy = abs(ys - ye);
        flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if (flip) { t = xs; xs = xe; xe = t; t = ys; ys = ye; ye = t; }
        s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
        if (dx >= dy) {
            /* u moves one column per step, so after the first point the test passes only
             * every fifth step (ux = 5q + 2): visit those steps alone. v, a double
             * expression, is evaluated with maskApi.c's expression for the points visited
             * and their predecessors. Huge coordinates take every step. */
            t = flip ? dx : 0;
            int cu = t + xs;
            if (MAY_EMIT(cu)) {
                int cv = (int)(ys + s * t + .5);
                EMIT(cu, cv, pv);
            }
            pu = cu;
            have_prev = 1;
            int tl = flip ? 0 : dx; /* t of the segment's last point */
            if (dx > 0 && xs > -(1 << 29) && xs + dx < (1 << 29) && abs(ys) < (1 << 29) && abs(ye) < (1 << 29)) {
                int r = flip ? ((dx + xs - 2) % 5 + 5) % 5 : ((3 - xs) % 5 + 5) % 5;
                for (d = r == 0 ? 5 : r; d <= dx; d += 5) {
                    t = flip ? dx - d : d;
                    cu = t + xs;
                    int cv = (int)(ys + s * t + .5);
                    int pv_ = (int)(ys + s * (flip ? t + 1 : t - 1) + .5);
                    EMIT_FAST(flip ? cu : cu - 1, cv, pv_);
                }
            } else {
                for (d = 1; d <= dx; d++) {
                    t = flip ? dx - d : d;
                    cu = t + xs;
                    if (MAY_EMIT(cu)) {
                        int cv = (int)(ys + s * t + .5);
                        int pv_ = (int)(ys + s * (flip ? t + 1 : t - 1) + .5);
                        EMIT(cu, cv, pv_);
                    }
                    pu = cu;
                }
            }
            pu = tl + xs;
            pv = (int)(ys + s * tl + .5);
        } else if (abs(xs) < (1 << 29) && abs(xe) < (1 << 29) && abs(ys) < (1 << 29) && abs(ye) < (1 << 29)) {
            /* v moves one row per step and u rarely changes; u(d) = (int)(xs + s*t + .5) is
             * monotone in d (IEEE multiply, add and truncation are monotone), so the steps
             * where it changes, the only ones the test can keep, are found by a short linear
             * probe and then galloping, evaluating maskApi.c's expression at each probe. */
#define U_AT(d_) ((int)(xs + s * (flip ? dy - (d_) : (d_)) + .5))
            int dcur = 0, ucur = U_AT(0);
            t = flip ? dy : 0;
            if (MAY_EMIT(ucur)) EMIT(ucur, t + ys, pv);
            have_prev = 1;
            int ulast = U_AT(dy);
            while (ucur != ulast) {
                int lo = dcur, hi = -1; /* u(lo) == ucur; find the first d > lo with u != ucur */
                for (int p = 1; p <= 4 && lo + p <= dy; p++)
                    if (U_AT(lo + p) != ucur) { hi = lo + p; break; }
                if (hi < 0) {
                    int step = 8;
                    lo += 4;
                    for (;;) {
                        int probe = lo + step > dy ? dy : lo + step;
                        if (U_AT(probe) != ucur) { hi = probe; break; }
                        lo = probe;
                        step *= 2;
                    }
                    while (hi - lo > 1) { /* u(lo) == ucur, u(hi) != ucur */
                        int mid = lo + (hi - lo) / 2;
                        if (U_AT(mid) != ucur) hi = mid;
                        else lo = mid;
                    }
                }
                int cu = U_AT(hi);
                t = flip ? dy - hi : hi;
                int pv_ = (flip ? t + 1 : t - 1) + ys;
                int ux = cu < ucur ? cu : cu - 1;
                if ((ux - 2) % 5 == 0) EMIT_FAST(ux, t + ys, pv_);
                ucur = cu;
                dcur = hi;
            }
#undef U_AT
            pu = ulast;
            pv = (flip ? 0 : dy) + ys;
            have_prev = 1;
        } else {
            for (d = 0; d <= dy; d++) {
                t = flip ? dy - d : d;
                int cv = t + ys, cu = (int)(xs + s * t + .5);
                if (MAY_EMIT(cu)) EMIT(cu, cv, pv);
                pu = cu;
                pv = cv;
                have_prev = 1;
            }
        }
    }
#undef EMIT
#undef EMIT_FAST
#undef MAY_EMIT
    m = nout;
    x = u;
    y = v;
    /* rle encoding from the boundary points */
    k = m;
    if (!(S->a = grow(S->a, &S->ca, (size_t)k + 1, sizeof(uint)))) return -1;
    if (!(S->b = grow(S->b, &S->cb, (size_t)k + 1, sizeof(uint)))) return -1;
    uint *a = S->a, *b = S->b;
    /* maskApi.c sorts the values x*h + y (and h*w, the largest, last). A polygon's crossings
     * cover few columns, so sort by column with a counting sort and by row inside each
     * (lexicographic (x, y) order is the order of x*h + y, as 0 <= y <= h); the same sorted
     * values. Wide ranges or products past int take the comparison sort. */
    int xmin = 0, xmax = 0;
    for (j = 0; j < k; j++) {
        if (j == 0 || x[j] < xmin) xmin = x[j];
        if (j == 0 || x[j] > xmax) xmax = x[j];
    }
    int64_t range = (int64_t)xmax - xmin + 1;
    if (k > 16 && range <= 4 * k + 64 && ((int64_t)xmax + 1) * (int64_t)h < 2147483647LL) {
        if (!(S->cnt = grow(S->cnt, &S->ccnt, (size_t)range + 1, sizeof(int)))) return -1;
        if (!(S->yb = grow(S->yb, &S->cyb, (size_t)k + 1, sizeof(int)))) return -1;
        int *cnt = S->cnt, *yb = S->yb;
        memset(cnt, 0, sizeof(int) * (range + 1));
        for (j = 0; j < k; j++) cnt[x[j] - xmin + 1]++;
        for (int64_t c = 0; c < range; c++) cnt[c + 1] += cnt[c];
        for (j = 0; j < k; j++) yb[cnt[x[j] - xmin]++] = y[j]; /* cnt[c] ends as the start of c+1 */
        int64_t pos = 0;
        for (int64_t c = 0; c < range; c++) {
            int64_t end = cnt[c];
            for (int64_t i = pos + 1; i < end; i++) { /* rows inside one column: a few */
                int vv = yb[i];
                int64_t q = i;
                while (q > pos && yb[q - 1] > vv) { yb[q] = yb[q - 1]; q--; }
                yb[q] = vv;
            }
            int xc = (int)(xmin + c);
            for (int64_t i = pos; i < end; i++) a[i] = (uint)(xc * (int)(h) + yb[i]);
            pos = end;
        }
        a[k++] = (uint)(h * w);
    } else {
        for (j = 0; j < k; j++) a[j] = (uint)(x[j] * (int)(h) + y[j]);
        a[k++] = (uint)(h * w);
        sort_uint(a, k, 64);
    }
    uint p = 0;
    for (j = 0; j < k; j++) { uint t = a[j]; a[j] -= p; p = t; }
    j = m = 0;
    b[m++] = a[j++];
    while (j < k)
        if (a[j] > 0) b[m++] = a[j++];
        else { j++; if (j < k) b[m - 1] += a[j++]; }
    if (!(*out = grow(*out, out_cap, (size_t)m, sizeof(uint)))) return -1;
    memcpy(*out, b, m * sizeof(uint));
    return m;
}

/* rleMerge(intersect=0) of A (na runs) and B into out; returns runs or -1. */
static int64_t merge_union(const uint *A, int64_t na, const uint *B, int64_t nb, uint **out, size_t *out_cap) {
    if (!(*out = grow(*out, out_cap, (size_t)(na + nb + 1), sizeof(uint)))) return -1;
    uint *cnts = *out;
    uint c, ca, cb, cc, ct;
    int v, va, vb, vp;
    int64_t a = 1, b = 1, m = 0;
    ca = A[0];
    cb = B[0];
    v = va = vb = 0;
    cc = 0;
    ct = 1;
    while (ct > 0) {
        c = ca < cb ? ca : cb;
        cc += c;
        ct = 0;
        ca -= c;
        if (!ca && a < na) { ca = A[a++]; va = !va; }
        ct += ca;
        cb -= c;
        if (!cb && b < nb) { cb = B[b++]; vb = !vb; }
        ct += cb;
        vp = v;
        v = va || vb;
        if (v != vp || ct == 0) { cnts[m++] = cc; cc = 0; }
    }
    return m;
}

/* Is o a JSON-like number pycocotools would read (float or int, not bool)? Fills *d. */
static int as_double(PyObject *o, double *d) {
    if (PyFloat_Check(o)) { *d = PyFloat_AS_DOUBLE(o); return isfinite(*d); }
    if (PyLong_Check(o) && !PyBool_Check(o)) {
        *d = PyLong_AsDouble(o);
        if (*d == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
        return isfinite(*d);
    }
    return 0;
}

/* rasterize(segmentations list, heights i64[N], widths i64[N]) -> list of (bytes | None)
 * Each polygon-list segmentation becomes the compressed string of
 * merge(frPyObjects(segm, h, w)) as COCO.annToRLE computes it. None where the item is not a
 * plain polygon list this kernel takes (RLE dicts, box mode, anything malformed): the
 * caller converts those on its checked path. */
static PyObject *py_rasterize(PyObject *self, PyObject *args) {
    PyObject *segs;
    Py_buffer hb, wb;
    if (!PyArg_ParseTuple(args, "O!y*y*", &PyList_Type, &segs, &hb, &wb)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(segs);
    PyObject *result = NULL;
    PolyScratch S = {0};
    double *xy = NULL;
    size_t cxy = 0;
    uint *acc = NULL, *one = NULL, *tmp = NULL;
    size_t cacc = 0, cone = 0, ctmp = 0;
    Bytes str = {0};
    if (nb_check(&hb, n, 8, "heights") < 0 || nb_check(&wb, n, 8, "widths") < 0) goto fail;
    result = PyList_New(n);
    if (!result) goto fail;
    const int64_t *hs = hb.buf, *ws = wb.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *segm = PyList_GET_ITEM(segs, i), *item = NULL;
        Py_ssize_t np_ = PyList_Check(segm) ? PyList_GET_SIZE(segm) : 0;
        int ok = np_ > 0 && hs[i] >= 0 && ws[i] >= 0 && hs[i] <= 0xFFFFFFFFLL && ws[i] <= 0xFFFFFFFFLL;
        if (ok) {
            PyObject *first = PyList_GET_ITEM(segm, 0);
            ok = PyList_Check(first) && PyList_GET_SIZE(first) > 4; /* 4 numbers: box mode */
        }
        int64_t macc = 0;
        for (Py_ssize_t q = 0; ok && q < np_; q++) {
            PyObject *poly = PyList_GET_ITEM(segm, q);
            if (!PyList_Check(poly)) { ok = 0; break; }
            Py_ssize_t len = PyList_GET_SIZE(poly);
            if (len < 4 || len % 2) { ok = 0; break; }
            if (!(xy = grow(xy, &cxy, (size_t)len, sizeof(double)))) goto nomem;
            for (Py_ssize_t e = 0; e < len; e++)
                if (!as_double(PyList_GET_ITEM(poly, e), &xy[e])) { ok = 0; break; }
            if (!ok) break;
            int64_t m = fr_poly(&S, xy, len / 2, (size_t)hs[i], (size_t)ws[i], q == 0 ? &acc : &one, q == 0 ? &cacc : &cone);
            if (m < 0) goto nomem;
            if (q == 0) macc = m;
            else {
                int64_t mm = merge_union(acc, macc, one, m, &tmp, &ctmp);
                if (mm < 0) goto nomem;
                uint *t = acc; acc = tmp; tmp = t;
                size_t tc = cacc; cacc = ctmp; ctmp = tc;
                macc = mm;
            }
        }
        if (ok) {
            str.n = 0;
            if (string_encode(acc, macc, &str) < 0) goto nomem;
            item = PyBytes_FromStringAndSize(str.p, (Py_ssize_t)str.n);
            if (!item) goto fail;
        } else {
            item = Py_None;
            Py_INCREF(item);
        }
        PyList_SET_ITEM(result, i, item);
    }
    goto out;
nomem:
    PyErr_NoMemory();
fail:
    Py_CLEAR(result);
out:
    free(S.x); free(S.y); free(S.u); free(S.v); free(S.cnt); free(S.yb); free(S.a); free(S.b);
    free(xy); free(acc); free(one); free(tmp); free(str.p);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&wb);
    return result;
}

/* ------------------------------------------------------------------------------------ */
/* Results parser. */

/* A strict reader for the common shape of a COCO results file:
 *   [{"image_id": int, "category_id": int, "score": number,
 *     "segmentation": {"size": [int, int], "counts": "..."}, "bbox": [4 numbers], ...}, ...]
 * Other members are skipped (validated as JSON). Anything else, or anything unusual
 * (polygon segmentations, uncompressed RLE, non-ASCII bytes, duplicate keys, integers
 * written as floats, huge numbers, missing fields), makes it give up and return None: the
 * caller then parses with orjson and reports errors with their location. It never accepts
 * a file orjson would reject. */

typedef struct {
    const unsigned char *p, *end;
} Cur;

static void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++;
}

static int lit(Cur *c, char ch) {
    ws(c);
    if (c->p < c->end && *c->p == (unsigned char)ch) { c->p++; return 1; }
    return 0;
}

static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

/* A JSON number token; *is_int when it has no fraction/exponent. Returns 0 when invalid. */
static int number_token(Cur *c, const unsigned char **s, size_t *len, int *is_int) {
    ws(c);
    const unsigned char *p = c->p, *e = c->end;
    *s = p;
    *is_int = 1;
    if (p < e && *p == '-') p++;
    if (p >= e || !is_digit(*p)) return 0;
    if (*p == '0') p++;
    else while (p < e && is_digit(*p)) p++;
    if (p < e && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= e || !is_digit(*p)) return 0;
        while (p < e && is_digit(*p)) p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !is_digit(*p)) return 0;
        while (p < e && is_digit(*p)) p++;
    }
    *len = (size_t)(p - *s);
    c->p = p;
    return 1;
}

static int read_int(Cur *c, int64_t *out) {
    const unsigned char *s;
    size_t len;
    int is_int;
    if (!number_token(c, &s, &len, &is_int) || !is_int || len > 18) return 0;
    int neg = *s == '-';
    int64_t v = 0;
    for (size_t i = neg; i < len; i++) v = v * 10 + (s[i] - '0');
    *out = neg ? -v : v;
    return 1;
}

static int read_double(Cur *c, double *out) {
    const unsigned char *s;
    size_t len;
    int is_int;
    char buf[64];
    if (!number_token(c, &s, &len, &is_int) || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *endp;
    *out = strtod(buf, &endp);  /* correctly rounded, as orjson */
    return endp == buf + len && isfinite(*out);
}

/* Skip a string of printable ASCII (non-ASCII bytes and surrogate escapes are left to
 * orjson, which checks them). */
static int skip_string(Cur *c) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const unsigned char *p = c->p + 1, *e = c->end;
    while (p < e) {
        unsigned char ch = *p;
        if (ch == '"') {
            c->p = p + 1;
            return 1;
        }
        if (ch < 0x20 || ch >= 0x80) return 0;
        if (ch == '\\') {
            if (p + 1 >= e) return 0;
            unsigned char x = p[1];
            if (x == '\\' || x == '"' || x == '/' || x == 'b' || x == 'f' || x == 'n' || x == 'r' || x == 't') {
                p += 2;
                continue;
            }
            if (x != 'u' || p + 6 > e) return 0;
            for (int k = 2; k < 6; k++)
                if (!((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'f') || (p[k] >= 'A' && p[k] <= 'F'))) return 0;
            if ((p[2] == 'd' || p[2] == 'D') && p[3] >= '8') return 0; /* surrogates: orjson's rules */
            p += 6;
            continue;
        }
        p++;
    }
    return 0;
}

/* A counts string, left where it lies in the file: [*start, *stop) is its JSON content.
 * Printable ASCII; the only escapes accepted are \\ \" \/ (a backslash then the byte itself),
 * which the string kernels undo with their `escaped` flag. */
static int read_counts(Cur *c, const unsigned char *base, int64_t *start, int64_t *stop) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const unsigned char *p = c->p + 1, *e = c->end;
    *start = (int64_t)(p - base);
    for (;;) {
        const unsigned char *q = memchr(p, '"', (size_t)(e - p));
        if (!q) return 0;
        int bad = 0, bs = 0;
        for (const unsigned char *r = p; r < q; r++) {
            bad |= (*r < 0x20) | (*r >= 0x80);
            bs |= *r == '\\';
        }
        if (bad) return 0;
        if (!bs) {
            *stop = (int64_t)(q - base);
            c->p = q + 1;
            return 1;
        }
        /* escapes: walk them; a quote after a backslash is content, keep looking */
        const unsigned char *r = p;
        while (r < q) {
            if (*r == '\\') {
                if (r + 1 >= e) return 0;
                unsigned char x = r[1];
                if (x != '\\' && x != '"' && x != '/') return 0;
                r += 2;
            } else
                r++;
        }
        if (r == q) {
            *stop = (int64_t)(q - base);
            c->p = q + 1;
            return 1;
        }
        p = q + 1; /* the quote was escaped (r jumped over it) */
    }
}

/* Compare the next key (no escapes) with a name; *klen bytes of key at *ks. */
static int read_key(Cur *c, const unsigned char **ks, size_t *klen) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const unsigned char *p = c->p + 1;
    const unsigned char *q = p;
    while (q < c->end && *q != '"') {
        if (*q == '\\' || *q < 0x20 || *q >= 0x80) return 0;
        q++;
    }
    if (q >= c->end) return 0;
    *ks = p;
    *klen = (size_t)(q - p);
    c->p = q + 1;
    return lit(c, ':');
}

#define KEY_IS(ks, klen, name) ((klen) == sizeof(name) - 1 && memcmp((ks), (name), sizeof(name) - 1) == 0)

static int skip_value(Cur *c, int depth) {
    if (depth > 64) return 0;
    ws(c);
    if (c->p >= c->end) return 0;
    unsigned char ch = *c->p;
    if (ch == '"') return skip_string(c);
    if (ch == '{') {
        c->p++;
        if (lit(c, '}')) return 1;
        for (;;) {
            if (!skip_string(c) || !lit(c, ':') || !skip_value(c, depth + 1)) return 0;
            if (lit(c, ',')) continue;
            return lit(c, '}');
        }
    }
    if (ch == '[') {
        c->p++;
        if (lit(c, ']')) return 1;
        for (;;) {
            if (!skip_value(c, depth + 1)) return 0;
            if (lit(c, ',')) continue;
            return lit(c, ']');
        }
    }
    if (ch == 't') { if (c->end - c->p >= 4 && !memcmp(c->p, "true", 4)) { c->p += 4; return 1; } return 0; }
    if (ch == 'f') { if (c->end - c->p >= 5 && !memcmp(c->p, "false", 5)) { c->p += 5; return 1; } return 0; }
    if (ch == 'n') { if (c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) { c->p += 4; return 1; } return 0; }
    const unsigned char *s;
    size_t len;
    int is_int;
    return number_token(c, &s, &len, &is_int);
}

typedef struct {
    Bytes img, cat, score, bbox, hw, cstart, cstop;
    int64_t n, n_bbox, n_seg;
    int first_bbox;
    const unsigned char *base;
} Parsed;

static int parse_segmentation(Cur *c, Parsed *R, int64_t *h, int64_t *w, int64_t *cs, int64_t *ce) {
    if (!lit(c, '{')) return 0;
    int got_size = 0, got_counts = 0;
    if (lit(c, '}')) return 0;
    for (;;) {
        const unsigned char *ks;
        size_t klen;
        if (!read_key(c, &ks, &klen)) return 0;
        if (KEY_IS(ks, klen, "size")) {
            if (got_size++ || !lit(c, '[') || !read_int(c, h) || !lit(c, ',') || !read_int(c, w) || !lit(c, ']')) return 0;
        } else if (KEY_IS(ks, klen, "counts")) {
            if (got_counts++ || !read_counts(c, R->base, cs, ce)) return 0;
        } else
            return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, '}')) return 0;
        return got_size && got_counts;
    }
}

static int parse_results(Cur *c, Parsed *R) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 0; /* empty: the generic path handles it */
    for (;;) {
        if (!lit(c, '{')) return 0;
        int64_t img = 0, cat = 0, h = 0, w = 0, cs = 0, ce = 0;
        double score = 0, bb[4] = {NAN, NAN, NAN, NAN};
        int got_img = 0, got_cat = 0, got_score = 0, got_bbox = 0, got_seg = 0;
        if (lit(c, '}')) return 0;
        for (;;) {
            const unsigned char *ks;
            size_t klen;
            if (!read_key(c, &ks, &klen)) return 0;
            if (KEY_IS(ks, klen, "image_id")) {
                if (got_img++ || !read_int(c, &img)) return 0;
            } else if (KEY_IS(ks, klen, "category_id")) {
                if (got_cat++ || !read_int(c, &cat)) return 0;
            } else if (KEY_IS(ks, klen, "score")) {
                if (got_score++ || !read_double(c, &score)) return 0;
            } else if (KEY_IS(ks, klen, "bbox")) {
                if (got_bbox++ || !lit(c, '[')) return 0;
                for (int k = 0; k < 4; k++)
                    if ((k && !lit(c, ',')) || !read_double(c, &bb[k])) return 0;
                if (!lit(c, ']')) return 0;
            } else if (KEY_IS(ks, klen, "segmentation")) {
                if (got_seg++ || !parse_segmentation(c, R, &h, &w, &cs, &ce)) return 0;
            } else if (!skip_value(c, 0))
                return 0;
            if (lit(c, ',')) continue;
            if (!lit(c, '}')) return 0;
            break;
        }
        if (!got_img || !got_cat || !got_score || !(got_seg || got_bbox)) return 0;
        if (R->n == 0) R->first_bbox = got_bbox;
        R->n_bbox += got_bbox;
        R->n_seg += got_seg;
        int64_t hw[2] = {got_seg ? h : -1, got_seg ? w : -1};
        if (bytes_put(&R->img, &img, 8) < 0 || bytes_put(&R->cat, &cat, 8) < 0 || bytes_put(&R->score, &score, 8) < 0 ||
            bytes_put(&R->bbox, bb, 32) < 0 || bytes_put(&R->hw, hw, 16) < 0 || bytes_put(&R->cstart, &cs, 8) < 0 ||
            bytes_put(&R->cstop, &ce, 8) < 0)
            return 0;
        R->n++;
        if (lit(c, ',')) continue;
        if (!lit(c, ']')) return 0;
        ws(c);
        return c->p == c->end;
    }
}

static PyObject *bytes_obj(Bytes *b) { return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->n); }

/* parse_results(data: bytes) -> None | dict with n, first_bbox, n_bbox, n_seg and the bytes of
 * image_id i64[n], category_id i64[n], score f64[n], bbox f64[n,4] (NaN when absent),
 * size i64[n,2] (-1 when no segmentation), counts_start / counts_stop i64[n]: where each
 * counts string's JSON content lies in data (decode it with escaped=True). */
static PyObject *py_parse_results(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    Parsed R = {0};
    R.base = (const unsigned char *)data.buf;
    Cur c = {(const unsigned char *)data.buf, (const unsigned char *)data.buf + data.len};
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = parse_results(&c, &R);
    Py_END_ALLOW_THREADS
    PyObject *ret = NULL;
    if (!ok) {
        ret = Py_None;
        Py_INCREF(ret);
    } else {
        ret = Py_BuildValue("{s:L,s:i,s:L,s:L,s:N,s:N,s:N,s:N,s:N,s:N,s:N}", "n", (long long)R.n, "first_bbox", R.first_bbox,
                            "n_bbox", (long long)R.n_bbox, "n_seg", (long long)R.n_seg, "image_id", bytes_obj(&R.img),
                            "category_id", bytes_obj(&R.cat), "score", bytes_obj(&R.score), "bbox", bytes_obj(&R.bbox),
                            "size", bytes_obj(&R.hw), "counts_start", bytes_obj(&R.cstart), "counts_stop", bytes_obj(&R.cstop));
    }
    free(R.img.p); free(R.cat.p); free(R.score.p); free(R.bbox.p); free(R.hw.p); free(R.cstart.p); free(R.cstop.p);
    PyBuffer_Release(&data);
    return ret;
}

PyMethodDef rle_methods[] = {
    {"count_runs", py_count_runs, METH_VARARGS, "Runs per compressed RLE string (-1: malformed)."},
    {"decode", py_decode, METH_VARARGS, "Decode compressed RLE strings: counts, area, box, covered pixels."},
    {"box_area", py_box_area, METH_VARARGS, "Box, area and covered pixels of compressed RLE strings."},
    {"pair_ious", py_pair_ious, METH_VARARGS, "rleIou of (detection, reference) pairs."},
    {"rasterize", py_rasterize, METH_VARARGS, "COCO.annToRLE of polygon segmentations, as compressed strings."},
    {"parse_results", py_parse_results, METH_VARARGS, "Parse a COCO results file without Python objects per result."},
    {NULL, NULL, 0, NULL},
};
