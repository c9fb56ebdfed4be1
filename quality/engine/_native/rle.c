/* COCO run-length masks: decoding, polygon rasterization, pair intersections, and a
 * parser for detection-results files that never builds a Python object per result.
 *
 * Exactness: rasterization, merging, box and string coding are line-for-line ports of
 * pycocotools' maskApi.c (rleFrPoly, rleMerge, rleToBbox, rleToString, rleFrString), with
 * the same integer and double arithmetic, compiled without FP contraction (setup.py). The
 * IoU of a pair is pycocotools' rleIou: i / u with u = area(d) + area(g) - i, or area(d)
 * for a crowd reference, 0 when i == 0. A pair whose boxes do not overlap has i == 0, so
 * skipping rleIou's box pre-check changes nothing.
 */
#include "rle_core.h"

#include <pthread.h>
#include <unistd.h>

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

/* One value of rleFrString's coding at s[*p], before the delta from the run two back.
 * Returns 1, or 0 when the string ends inside the value or the value is longer than
 * RLE_MAX_CHARS characters (rleToString never writes one: a run is below 2^32, a delta
 * above -2^32; maskApi.c would shift past the width of a long). */
static inline int next_value(const unsigned char *s, int64_t len, int escaped, int64_t *p, long *out) {
    long x = 0;
    int k = 0, more = 1;
    while (more) {
        if (*p >= len || k >= RLE_MAX_CHARS) return 0;
        if (escaped && s[*p] == '\\' && ++*p >= len) return 0;
        signed char c = (signed char)(s[*p] - 48);
        x |= (long)(c & 0x1f) << (5 * k);
        more = c & 0x20;
        ++*p;
        k++;
        if (!more && (c & 0x10)) x |= (long)(~0UL << (5 * k)); /* sign-extend */
    }
    *out = x;
    return 1;
}

/* Decode into cnts (room for cap runs); returns the runs decoded, or -1 when the string holds
 * more than cap runs or a value next_value refuses. */
static int64_t string_decode(const unsigned char *s, int64_t len, int escaped, uint *cnts, int64_t cap) {
    int64_t m = 0, p = 0;
    while (p < len) {
        long x;
        if (m >= cap || !next_value(s, len, escaped, &p, &x)) return -1;
        if (m > 2) x += (long)cnts[m - 2];
        cnts[m++] = (uint)x;
    }
    return m;
}

/* The position of s[p] with escapes undone (only on the error path). */
static int64_t char_position(const unsigned char *s, int64_t p, int escaped) {
    if (!escaped) return p;
    int64_t pos = 0, q = 0;
    for (;;) {
        int64_t last = s[q] == '\\' ? q + 1 : q; /* the byte that holds this character */
        if (last >= p) return pos;
        q = last + 1;
        pos++;
    }
}

/* After a run's error at s[p..]: a bad character or a cut-off end anywhere outranks it, so
 * the rest of the string is looked at. */
static int rest_verdict(const unsigned char *s, int64_t p, int64_t len, int escaped, int64_t *detail) {
    int open = 0;
    for (; p < len; p++) {
        if (escaped && s[p] == '\\' && ++p >= len) { *detail = 0; return RLE_TRUNCATED; }
        unsigned char ch = s[p];
        if (ch < 48 || ch > 111) { *detail = char_position(s, p, escaped); return RLE_BAD_CHAR; }
        open = (ch - 48) & 0x20;
    }
    if (open) { *detail = 0; return RLE_TRUNCATED; }
    return RLE_OK;
}

/* The gate's rules for one compressed counts string (quality/engine/gate.py has the numpy
 * twin and formats the messages), in priority order; *detail says where:
 *   RLE_BAD_CHAR   a byte outside '0'..'o' (detail: its position, escapes undone)
 *   RLE_TRUNCATED  the string ends inside a value
 *   RLE_OVERFLOW   a value longer than RLE_MAX_CHARS characters, or a run from 2^32 up
 *   RLE_NEGATIVE   a run below 0                  (RLE_OVERFLOW/NEGATIVE: the run's index,
 *                                                  the first such run wins)
 *   RLE_SUM        the runs cover *detail pixels, not h * w
 * Without an error, box (rleToBbox: rle_core.h's RunBox), area (rleArea) and the runs' sum
 * come out of the same pass, keeping no runs. */
static inline __attribute__((always_inline)) int check_box_area(const unsigned char *s, int64_t len, const int escaped, uint64_t h,
                                                                uint64_t w, double *bb, int64_t *area_out, int64_t *detail,
                                                                const int want_box) {
    int64_t m = 0, p = 0, area = 0, sum = 0;
    uint prev1 = 0, prev2 = 0; /* runs m-1 and m-2, for the delta coding */
    RunBox box = run_box_start(h, w);
    while (p < len) {
        /* one value of rleFrString's coding, every character checked on the way; most values
         * are one character */
        if (escaped && s[p] == '\\' && ++p >= len) { *detail = 0; return RLE_TRUNCATED; }
        unsigned c = (unsigned)s[p] - 48u; /* '0'..'o' are 0..63 */
        if (c > 63) { *detail = char_position(s, p, escaped); return RLE_BAD_CHAR; }
        p++;
        long x = (long)(c & 0x1f);
        if (!(c & 0x20)) {
            if (c & 0x10) x |= (long)(~0UL << 5); /* sign-extend */
        } else {
            int k = 1, more = 1;
            while (more) {
                if (p >= len) { *detail = 0; return RLE_TRUNCATED; }
                if (k >= RLE_MAX_CHARS) {
                    int r = rest_verdict(s, p, len, escaped, detail);
                    if (r != RLE_OK) return r;
                    *detail = m;
                    return RLE_OVERFLOW;
                }
                if (escaped && s[p] == '\\' && ++p >= len) { *detail = 0; return RLE_TRUNCATED; }
                c = (unsigned)s[p] - 48u;
                if (c > 63) { *detail = char_position(s, p, escaped); return RLE_BAD_CHAR; }
                x |= (long)(c & 0x1f) << (5 * k);
                more = c & 0x20;
                p++;
                k++;
                if (!more && (c & 0x10)) x |= (long)(~0UL << (5 * k)); /* sign-extend */
            }
        }
        if (m > 2) x += (long)prev2;
        if (x < 0 || x > 0xFFFFFFFFL) {
            int r = rest_verdict(s, p, len, escaped, detail);
            if (r != RLE_OK) return r;
            *detail = m;
            return x < 0 ? RLE_NEGATIVE : RLE_OVERFLOW;
        }
        uint run = (uint)x;
        prev2 = prev1;
        prev1 = run;
        sum += run;
        area += (m % 2) ? run : 0;
        if (want_box) run_box_add(&box, m, run);
        m++;
    }
    if ((uint64_t)sum != h * w) { *detail = sum; return RLE_SUM; }
    *area_out = area;
    *detail = sum;
    if (want_box) run_box_end(&box, bb);
    return RLE_OK;
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

/* decode(blob, start, stop, escaped, run_off i64[N+1], counts u32[run_off[N]] out) -> None
 * The runs of every string (for the torch kernel); run_off from count_runs. */
static PyObject *py_decode(PyObject *self, PyObject *args) {
    Strings S;
    Py_buffer rob, cb;
    if (!PyArg_ParseTuple(args, "y*y*y*py*w*", &S.blob, &S.start, &S.stop, &S.escaped, &rob, &cb)) return NULL;
    PyObject *ret = NULL;
    Py_ssize_t mismatch = -1;
    if (strings_check(&S) < 0) goto done;
    Py_ssize_t n = S.n;
    if (nb_check(&rob, n + 1, 8, "run_off") < 0) goto done;
    const int64_t *ro = rob.buf;
    if (nb_check(&cb, ro[n], 4, "counts") < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++)
        if (ro[i] < 0 || ro[i + 1] < ro[i] || ro[i + 1] > ro[n]) {
            PyErr_SetString(PyExc_ValueError, "run_off out of range");
            goto done;
        }
    uint *counts = cb.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        if (string_decode(STR(S, i), STRLEN(S, i), S.escaped, counts + ro[i], ro[i + 1] - ro[i]) != ro[i + 1] - ro[i]) {
            mismatch = i;
            break;
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
    PyBuffer_Release(&rob);
    PyBuffer_Release(&cb);
    return ret;
}

/* box_area(blob, start, stop, escaped, heights, widths, area i64[N] out, box f64[N,4] out,
 *          status i64[N] out, detail i64[N] out) -> None
 * The gate's check of every string (check_box_area: status RLE_OK or an error, detail) and,
 * for the good ones, box and area. A height or width outside raster_size_ok is RLE_BAD_SIZE. */
/* The verdicts of strings [lo, hi) (see box_area). */
typedef struct {
    const Strings *S;
    const int64_t *hs, *ws;
    int64_t *area, *status, *detail;
    double *box;
    Py_ssize_t lo, hi;
    int want_box;
} VerdictWork;

static void verdict_range(const VerdictWork *W) {
    const Strings S = *W->S;
    const int want_box = W->want_box;
    for (Py_ssize_t i = W->lo; i < W->hi; i++) {
        W->area[i] = 0;
        if (want_box) W->box[4 * i] = W->box[4 * i + 1] = W->box[4 * i + 2] = W->box[4 * i + 3] = 0;
        if (W->hs[i] < 0 || W->ws[i] < 0 || !raster_size_ok((uint64_t)W->hs[i], (uint64_t)W->ws[i])) {
            W->status[i] = RLE_BAD_SIZE;
            W->detail[i] = 0;
            continue;
        }
        const unsigned char *str = STR(S, i);
        int64_t len = STRLEN(S, i);
        uint64_t h = (uint64_t)W->hs[i], w = (uint64_t)W->ws[i];
        int64_t *area = W->area + i, *detail = W->detail + i;
        double *box = want_box ? W->box + 4 * i : NULL;
        int st;
        /* one specialized loop per case (the common one: unescaped, with boxes) */
        if (want_box)
            st = S.escaped ? check_box_area(str, len, 1, h, w, box, area, detail, 1) : check_box_area(str, len, 0, h, w, box, area, detail, 1);
        else
            st = S.escaped ? check_box_area(str, len, 1, h, w, NULL, area, detail, 0) : check_box_area(str, len, 0, h, w, NULL, area, detail, 0);
        W->status[i] = st;
        if (st != RLE_OK) {
            *area = 0;
            if (want_box) box[0] = box[1] = box[2] = box[3] = 0;
        }
    }
}

static void *verdict_thread(void *arg) {
    verdict_range(arg);
    return NULL;
}

/* Strings are independent: with enough bytes to read (VERDICT_MIN_BYTES per thread), they are
 * split by bytes over up to VERDICT_MAX_THREADS threads (the results do not depend on the
 * split). */
#define VERDICT_MIN_BYTES (1 << 20)
#define VERDICT_MAX_THREADS 4

static void verdicts_split(VerdictWork *all) {
    const int64_t *a = all->S->start.buf, *b = all->S->stop.buf;
    Py_ssize_t n = all->hi;
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += b[i] - a[i];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t nt = total / VERDICT_MIN_BYTES;
    if (nt > VERDICT_MAX_THREADS) nt = VERDICT_MAX_THREADS;
    if (nt > cpus) nt = cpus;
    if (nt <= 1) {
        verdict_range(all);
        return;
    }
    VerdictWork parts[VERDICT_MAX_THREADS];
    pthread_t tid[VERDICT_MAX_THREADS];
    int started[VERDICT_MAX_THREADS] = {0};
    Py_ssize_t lo = 0, i = 0;
    int64_t acc = 0;
    for (int t = 0; t < nt; t++) {
        int64_t goal = total * (t + 1) / nt;
        while (i < n && (acc < goal || t == nt - 1)) acc += b[i] - a[i], i++;
        parts[t] = *all;
        parts[t].lo = lo;
        parts[t].hi = t == nt - 1 ? n : i;
        lo = parts[t].hi;
    }
    for (int t = 1; t < nt; t++) started[t] = pthread_create(&tid[t], NULL, verdict_thread, &parts[t]) == 0;
    verdict_range(&parts[0]);
    for (int t = 1; t < nt; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else verdict_range(&parts[t]); /* no thread: this one does it */
    }
}

static PyObject *strings_verdicts(PyObject *args, int want_box) {
    Strings S;
    Py_buffer hb, wb, ab, bb = {0}, stb, deb;
    int parsed = want_box ? PyArg_ParseTuple(args, "y*y*y*py*y*w*w*w*w*", &S.blob, &S.start, &S.stop, &S.escaped, &hb, &wb, &ab, &bb, &stb, &deb)
                          : PyArg_ParseTuple(args, "y*y*y*py*y*w*w*w*", &S.blob, &S.start, &S.stop, &S.escaped, &hb, &wb, &ab, &stb, &deb);
    if (!parsed) return NULL;
    PyObject *ret = NULL;
    if (strings_check(&S) < 0) goto done;
    Py_ssize_t n = S.n;
    if (nb_check(&hb, n, 8, "heights") < 0 || nb_check(&wb, n, 8, "widths") < 0 || nb_check(&ab, n, 8, "area") < 0 ||
        (want_box && nb_check(&bb, n * 4, 8, "box") < 0) || nb_check(&stb, n, 8, "status") < 0 || nb_check(&deb, n, 8, "detail") < 0)
        goto done;
    VerdictWork all = {&S, hb.buf, wb.buf, ab.buf, stb.buf, deb.buf, bb.buf, 0, n, want_box};
    Py_BEGIN_ALLOW_THREADS
    verdicts_split(&all);
    Py_END_ALLOW_THREADS
    ret = Py_None;
    Py_INCREF(ret);
done:
    strings_release(&S);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&ab);
    if (want_box) PyBuffer_Release(&bb);
    PyBuffer_Release(&stb);
    PyBuffer_Release(&deb);
    return ret;
}

static PyObject *py_box_area(PyObject *self, PyObject *args) { return strings_verdicts(args, 1); }

/* check_strings(blob, start, stop, escaped, heights, widths, area i64[N] out, status i64[N] out,
 *               detail i64[N] out) -> None: box_area's verdicts and areas, without boxes. */
static PyObject *py_check_strings(PyObject *self, PyObject *args) { return strings_verdicts(args, 0); }

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

/* Is o a number pycocotools would read (float or int, not bool) within MAX_COORDINATE?
 * Fills *d. */
static int as_double(PyObject *o, double *d) {
    if (PyFloat_Check(o)) *d = PyFloat_AS_DOUBLE(o);
    else if (PyLong_Check(o) && !PyBool_Check(o)) {
        *d = PyLong_AsDouble(o);
        if (*d == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    } else
        return 0;
    return fabs(*d) <= MAX_COORDINATE; /* false for NaN and infinities too */
}

/* rasterize(segmentations list, heights i64[N], widths i64[N]) -> list of (bytes | None)
 * Each polygon-list segmentation becomes the compressed string of
 * merge(frPyObjects(segm, h, w)) as COCO.annToRLE computes it. None where the item is not a
 * plain polygon list this kernel takes (RLE dicts, polygons of fewer than 3 points, numbers
 * that are not finite floats or ints within MAX_COORDINATE, a size outside raster_size_ok):
 * the caller sends those to the gate, which names the error. */
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
        int ok = np_ > 0 && hs[i] >= 0 && ws[i] >= 0 && raster_size_ok((uint64_t)hs[i], (uint64_t)ws[i]);
        int64_t macc = 0;
        for (Py_ssize_t q = 0; ok && q < np_; q++) {
            PyObject *poly = PyList_GET_ITEM(segm, q);
            if (!PyList_Check(poly)) { ok = 0; break; }
            Py_ssize_t len = PyList_GET_SIZE(poly);
            if (len < 6 || len % 2) { ok = 0; break; } /* the gate's rule: at least 3 points */
            if (!(xy = grow(xy, &cxy, (size_t)len, sizeof(double)))) goto nomem;
            for (Py_ssize_t e = 0; e < len; e++)
                if (!as_double(PyList_GET_ITEM(poly, e), &xy[e])) { ok = 0; break; }
            if (!ok) break;
            int64_t m = fr_poly(&S, xy, len / 2, (size_t)hs[i], (size_t)ws[i], q == 0 ? &acc : &one, q == 0 ? &cacc : &cone);
            if (m == -2) { ok = 0; break; } /* outside the rasterizer's bounds: declined */
            if (m < 0) goto nomem;
            if (q == 0) macc = m;
            else {
                int64_t mm = merge_union(acc, macc, one, m, &tmp, &ctmp);
                if (mm == -2) { ok = 0; break; }
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
            if (got_size++ || !read_size(c, h, w)) return 0;
        } else if (KEY_IS(ks, klen, "counts")) {
            if (got_counts++ || !read_counts(c, R->base, cs, ce)) return 0;
        } else
            return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, '}')) return 0;
        return got_size && got_counts;
    }
}

/* One result object at the cursor, appended to R; 0 when the reader gives up. */
static int parse_result_element(Cur *c, Parsed *R) {
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
            if (got_score++ || !read_number(c, &score)) return 0;
        } else if (KEY_IS(ks, klen, "bbox")) {
            if (got_bbox++ || !read_box(c, bb)) return 0;
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
    return 1;
}

/* The array's elements from the cursor (at an element) to its ']' and the end of the data:
 * 1 read, 0 given up. With stop: 2 as soon as the cursor stands at stop at the start of an
 * element (stop is then where the rest of the array begins). */
static int parse_elements(Cur *c, Parsed *R, const unsigned char *stop) {
    for (;;) {
        if (stop) {
            ws(c);
            if (c->p == stop) return 2;
        }
        if (!parse_result_element(c, R)) return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, ']')) return 0;
        ws(c);
        return c->p == c->end;
    }
}

static int parse_results(Cur *c, Parsed *R, const unsigned char *stop) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 0; /* empty: the generic path handles it */
    return parse_elements(c, R, stop);
}

static void parsed_free(Parsed *R) {
    free(R->img.p); free(R->cat.p); free(R->score.p); free(R->bbox.p); free(R->hw.p); free(R->cstart.p); free(R->cstop.p);
}

/* The second half of a split read: the elements from a guessed element start to the end. */
typedef struct {
    Cur c;
    Parsed R;
    int ok;
} ResultsHalf;

static void *results_half(void *arg) {
    ResultsHalf *H = arg;
    H->ok = parse_elements(&H->c, &H->R, NULL);
    return NULL;
}

/* Below this many bytes one thread reads the whole file. */
#define RESULTS_SPLIT_MIN_BYTES (4 << 20)

/* parse_results on two cores: a second thread reads from a guessed element start near the
 * middle (a '{' after '}' and ','), while this one reads from the beginning. When this one
 * reaches the guess at the start of an element, the guess was an element start and the rest
 * of the array is exactly what the second thread read (the reader keeps no state from one
 * element to the next but the counts), so the two are joined; otherwise (the guess lay inside
 * a value) this thread reads on to the end and the other's work is dropped. Either way the
 * result is the one-thread read's. */
static int parse_results_split(const unsigned char *buf, size_t len, Parsed *R) {
    Cur c = {buf, buf + len};
    const unsigned char *guess = NULL, *end = buf + len;
    if (len >= RESULTS_SPLIT_MIN_BYTES && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
        const unsigned char *p = buf + len / 2;
        while (!guess && (p = memchr(p, '}', (size_t)(end - p))) != NULL) {
            Cur q = {p + 1, end};
            p++;
            if (lit(&q, ',')) {
                ws(&q);
                if (q.p < end && *q.p == '{') guess = q.p;
            }
        }
    }
    if (!guess) return parse_results(&c, R, NULL);
    ResultsHalf H = {{guess, end}, {0}, 0};
    H.R.base = R->base;
    pthread_t tid;
    if (pthread_create(&tid, NULL, results_half, &H) != 0) return parse_results(&c, R, NULL);
    int ok = parse_results(&c, R, guess);
    pthread_join(tid, NULL);
    if (ok == 2) {
        ok = H.ok;
        if (ok) {
            Bytes *to[] = {&R->img, &R->cat, &R->score, &R->bbox, &R->hw, &R->cstart, &R->cstop};
            Bytes *from[] = {&H.R.img, &H.R.cat, &H.R.score, &H.R.bbox, &H.R.hw, &H.R.cstart, &H.R.cstop};
            for (int k = 0; k < 7 && ok; k++)
                if (from[k]->n && bytes_put(to[k], from[k]->p, from[k]->n) < 0) ok = 0;
            R->n += H.R.n;
            R->n_bbox += H.R.n_bbox;
            R->n_seg += H.R.n_seg;
        }
    }
    parsed_free(&H.R);
    return ok;
}

/* parse_results(data: bytes) -> None | dict with n, first_bbox, n_bbox, n_seg and the bytes of
 * image_id i64[n], category_id i64[n], score f64[n], bbox f64[n,4] (NaN when absent),
 * size i64[n,2] (-1 when no segmentation), counts_start / counts_stop i64[n]: where each
 * counts string's JSON content lies in data (decode it with escaped=True). */
static PyObject *py_parse_results(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    Parsed R = {0};
    R.base = (const unsigned char *)data.buf;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = parse_results_split((const unsigned char *)data.buf, (size_t)data.len, &R);
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
    parsed_free(&R);
    PyBuffer_Release(&data);
    return ret;
}

PyMethodDef rle_methods[] = {
    {"count_runs", py_count_runs, METH_VARARGS, "Runs per compressed RLE string (-1: malformed)."},
    {"decode", py_decode, METH_VARARGS, "Decode compressed RLE strings into their runs."},
    {"box_area", py_box_area, METH_VARARGS, "The gate's verdict, box and area of compressed RLE strings."},
    {"check_strings", py_check_strings, METH_VARARGS, "The gate's verdict and area of compressed RLE strings."},
    {"pair_ious", py_pair_ious, METH_VARARGS, "rleIou of (detection, reference) pairs."},
    {"rasterize", py_rasterize, METH_VARARGS, "COCO.annToRLE of polygon segmentations, as compressed strings."},
    {"parse_results", py_parse_results, METH_VARARGS, "Parse a COCO results file without Python objects per result."},
    {NULL, NULL, 0, NULL},
};
