/* Shared by rle.c and coco_gt.c: growable buffers, rleToString, rleFrPoly/rleMerge ports and
 * the strict JSON cursor of the compiled readers (see rle.c for the exactness notes). */
#ifndef QUALITY_RLE_CORE_H
#define QUALITY_RLE_CORE_H
#include "native.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef uint32_t uint;

/* The gate's verdicts on a compressed counts string (quality/engine/gate.py, STRING_*). */
enum { RLE_OK = 0, RLE_BAD_CHAR = 1, RLE_TRUNCATED = 2, RLE_OVERFLOW = 3, RLE_NEGATIVE = 4, RLE_SUM = 5, RLE_BAD_SIZE = 6 };
/* The longest value rleToString writes: 7 characters of 5 bits hold any run (below 2^32)
 * and any delta between two runs. */
#define RLE_MAX_CHARS 7

/* ------------------------------------------------------------------------------------ */
/* Growable arrays (scratch and outputs). */

typedef struct {
    char *p;
    size_t n, cap;
} Bytes;

static inline int bytes_reserve(Bytes *b, size_t extra) {
    if (extra > SIZE_MAX / 4 - b->n) return -1;
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int bytes_put(Bytes *b, const void *src, size_t len) {
    if (bytes_reserve(b, len) < 0) return -1;
    memcpy(b->p + b->n, src, len);
    b->n += len;
    return 0;
}

/* Grow p to at least need items of item bytes; NULL (p untouched) when out of memory or
 * when the size in bytes would not fit size_t. */
static inline void *grow(void *p, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return p;
    if (need > (SIZE_MAX / 2) / item) return NULL;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = realloc(p, c * item);
    if (!q) return NULL;
    *cap = c;
    return q;
}

/* rleToString of cnts[0:m], appended to out. */
static inline int string_encode(const uint *cnts, int64_t m, Bytes *out) {
    if (m < 0 || (uint64_t)m > (SIZE_MAX / 4 - 1) / 7 || bytes_reserve(out, (size_t)m * 7 + 1) < 0) return -1;
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

/* ------------------------------------------------------------------------------------ */
/* Polygon rasterization (rleFrPoly) and union (rleMerge). */

typedef struct {
    int *x, *y, *u, *v, *cnt, *yb;
    uint *a, *b;
    size_t cx, cy, cu, cv, ca, cb, ccnt, cyb;
} PolyScratch;

static inline int uint_compare(const void *a, const void *b) {
    uint c = *((const uint *)a), d = *((const uint *)b);
    return c > d ? 1 : c < d ? -1 : 0;
}

static inline int umax_i(int a, int b) { return a > b ? a : b; }

/* (int)d as x86's cvttsd2si computes it, which is what maskApi.c's (int) casts give in
 * pycocotools' wheels: INT_MIN for NaN and for values outside int (in C those casts are
 * undefined). maskApi.c reaches it with NaN for a zero-length edge (two equal consecutive
 * points, e.g. a polygon whose last point repeats its first): s = 0 / 0. */
static inline int x86_int(double d) { return d > -2147483649.0 && d < 2147483648.0 ? (int)d : INT32_MIN; }

/* Ascending sort of uints: quicksort with insertion sort for short ranges (qsort's
 * callback per comparison dominated rasterization). Equal values are indistinguishable,
 * so any correct sort gives maskApi.c's result. Deep recursion falls back to qsort. */
static inline void sort_uint(uint *a, int64_t n, int depth) {
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
static inline int scratch_xy(PolyScratch *S, size_t n) {
    if (!(S->x = grow(S->x, &S->cx, n, sizeof(int)))) return -1;
    if (!(S->y = grow(S->y, &S->cy, n, sizeof(int)))) return -1;
    return 0;
}

/* The rasterizer's own arithmetic bounds (the gate, quality/engine/gate.py, enforces tighter
 * ones): h * w fits the int products x * h + y and pycocotools' 32-bit counts, and every
 * coordinate is finite and within MAX_COORDINATE, so 5 * x + 1 fits an int. */
#define RASTER_MAX_PIXELS 2147483647ULL

static inline int raster_size_ok(uint64_t h, uint64_t w) {
    return h > 0 && w > 0 && h <= RASTER_MAX_PIXELS && w <= RASTER_MAX_PIXELS && h * w <= RASTER_MAX_PIXELS;
}

/* rleFrPoly into out (grown as needed); returns the number of runs, -1 (no memory) or -2
 * (input outside the bounds above: nothing is rasterized).
 * h and w are size_t as in maskApi.c, so that `xd > w-1` and `yd > h` compare alike. */
static inline int64_t fr_poly(PolyScratch *S, const double *xy, int64_t k, size_t h, size_t w, uint **out, size_t *out_cap) {
    int64_t j, m = 0;
    double scale = 5;
    int *x, *y, *u, *v;
    if (k < 1 || !raster_size_ok(h, w) || (uint64_t)k > (SIZE_MAX / 16)) return -2;
    for (j = 0; j < 2 * k; j++)
        if (!(fabs(xy[j]) <= MAX_COORDINATE)) return -2; /* NaN fails too */
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
    /* maskApi.c keeps all m boundary points; only those on a pixel column inside the image
     * are kept here, and an edge's columns are distinct (u is monotone along it), so an
     * edge keeps at most w + 1 points (+1 for its first point): at most ucap. The arrays
     * grow as points are kept (a polygon reaching far outside the image costs steps, not
     * memory); every store checks the room. */
    int64_t ucap = m;
    if ((uint64_t)k <= (uint64_t)INT64_MAX / ((uint64_t)w + 2) && k * (int64_t)(w + 2) < ucap) ucap = k * (int64_t)(w + 2);
    int64_t uroom = ucap < 4 * k + 64 ? ucap : 4 * k + 64;
    if (!(S->u = grow(S->u, &S->cu, (size_t)uroom + 1, sizeof(int)))) return -1;
    if (!(S->v = grow(S->v, &S->cv, (size_t)uroom + 1, sizeof(int)))) return -1;
    u = S->u;
    v = S->v;
    uroom = (int64_t)(S->cu < S->cv ? S->cu : S->cv) - 1;
    int64_t nout = 0;
    /* room for one more kept point, or return: -1 no memory, -2 past ucap (never, by the
     * count above) */
#define ROOM()                                                                   \
    do {                                                                         \
        if (nout >= uroom) {                                                     \
            if (nout >= ucap) return -2;                                         \
            int64_t want_ = uroom * 2 < ucap ? uroom * 2 : ucap;                 \
            if (!(S->u = grow(S->u, &S->cu, (size_t)want_ + 1, sizeof(int))) ||  \
                !(S->v = grow(S->v, &S->cv, (size_t)want_ + 1, sizeof(int))))    \
                return -1;                                                       \
            u = S->u;                                                            \
            v = S->v;                                                            \
            uroom = (int64_t)(S->cu < S->cv ? S->cu : S->cv) - 1;                \
        }                                                                        \
    } while (0)
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
            ROOM();                                                              \
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
            ROOM();                                                              \
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
                int cv = x86_int(ys + s * t + .5); /* s is NaN when dx == dy == 0 */
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
            pv = x86_int(ys + s * tl + .5);
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
#undef ROOM
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

/* pycocotools' rleToBbox (2.0.8 on), run by run, for the gate's string check (rle.c's
 * check_box_area, while it decodes) and for runs the engine wrote itself (runs_box_area):
 * each non-empty foreground run spans its first pixel (where the runs before it end) to its
 * last, one crossing a column boundary takes every row, so zero-length runs move no side of
 * the box. maskApi.c finds those pixels with a division and a modulo by h; here the position
 * is advanced run by run (a division only for runs longer than a column), which gives the
 * same pixels. h and w are within raster_size_ok: 32-bit arithmetic, as maskApi.c's (and
 * cheaper divisions). Inlined into each loop, the walker's fields stay in registers. */
typedef struct {
    uint hh;
    uint64_t px, py; /* the pixel where the runs so far end (column, row) */
    uint xs, ys, xe, ye;
    int fg_seen;
} RunBox;

static inline __attribute__((always_inline)) RunBox run_box_start(uint64_t h, uint64_t w) {
    RunBox b = {(uint)h, 0, 0, (uint)w, (uint)h, 0, 0, 0};
    return b;
}

/* Run m (even: background, odd: foreground) of the mask. */
static inline __attribute__((always_inline)) void run_box_add(RunBox *b, int64_t m, uint run) {
    const uint hh = b->hh, sx = (uint)b->px, sy = (uint)b->py;
    if (run < hh) {
        b->py += run;
    } else {
        b->px += run / hh;
        b->py += run % hh;
    }
    if (b->py >= hh) {
        b->py -= hh;
        b->px++;
    }
    if (!(m % 2)) return;
    b->fg_seen = 1; /* two runs or more: a box, even of no pixel (xs = w, xe = 0 as uint) */
    if (!run) return;
    const uint ex = b->py > 0 ? (uint)b->px : (uint)b->px - 1, ey = b->py > 0 ? (uint)b->py - 1 : hh - 1;
    b->xs = b->xs < sx ? b->xs : sx;
    b->xe = b->xe > ex ? b->xe : ex;
    if (sx < ex) {
        b->ys = 0;
        b->ye = hh - 1;
    } else {
        b->ys = b->ys < sy ? b->ys : sy;
        b->ye = b->ye > ey ? b->ye : ey;
    }
}

/* The box [x, y, width, height] of the runs added. */
static inline __attribute__((always_inline)) void run_box_end(const RunBox *b, double *bb) {
    if (!b->fg_seen) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
    } else {
        bb[0] = (double)b->xs;
        bb[2] = (double)(uint)(b->xe - b->xs + 1);
        bb[1] = (double)b->ys;
        bb[3] = (double)(uint)(b->ye - b->ys + 1);
    }
}

/* The box and area (rleArea) of the runs cnts[0:m] of an h x w mask (within
 * raster_size_ok, the runs summing to h * w): for runs the engine wrote itself, which need
 * no check. */
static inline void runs_box_area(const uint *cnts, int64_t m_runs, uint64_t h, uint64_t w, double *bb, int64_t *area_out) {
    int64_t area = 0;
    RunBox b = run_box_start(h, w);
    for (int64_t m = 0; m < m_runs; m++) {
        run_box_add(&b, m, cnts[m]);
        area += (m % 2) ? cnts[m] : 0;
    }
    *area_out = area;
    run_box_end(&b, bb);
}

/* rleMerge(intersect=0) of A (na runs) and B into out; returns runs, -1 (no memory) or -2
 * when A and B do not cover the same number of pixels (maskApi.c's loop would then never
 * end). */
static inline int64_t merge_union(const uint *A, int64_t na, const uint *B, int64_t nb, uint **out, size_t *out_cap) {
    if (na < 1 || nb < 1) return -2;
    uint64_t ta = 0, tb = 0;
    for (int64_t i = 0; i < na; i++) ta += A[i];
    for (int64_t i = 0; i < nb; i++) tb += B[i];
    if (ta != tb) return -2;
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


/* ------------------------------------------------------------------------------------ */
/* Strict JSON cursor (the compiled readers). Everything it accepts orjson accepts, with
 * the same values; anything unusual makes the caller give up. */

typedef struct {
    const unsigned char *p, *end;
} Cur;

static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++;
}

static inline int lit(Cur *c, char ch) {
    ws(c);
    if (c->p < c->end && *c->p == (unsigned char)ch) { c->p++; return 1; }
    return 0;
}

static inline int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

static inline int is_hex(unsigned char x) { return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F'); }

/* The literal w (true, false, null) of n bytes at the cursor. */
static inline int word(Cur *c, const char *w, size_t n) {
    ws(c);
    if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* A JSON number token; *is_int when it has no fraction/exponent. Returns 0 when invalid. */
static inline int number_token(Cur *c, const unsigned char **s, size_t *len, int *is_int) {
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

static inline int read_int(Cur *c, int64_t *out) {
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

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number as orjson + numpy read it: an integer token (at most 18 characters, so it fits
 * int64) exactly and then converted to double (correctly rounded, as float(int)); others
 * correctly rounded too (like orjson): a decimal without exponent whose digits make an
 * integer below 2^53 with at most 22 of them after the point is that integer divided by a
 * power of ten, both exact doubles, so the one IEEE division rounds correctly (Clinger's
 * fast path); anything else goes to strtod. Non-finite values are declined. */
static inline int read_number(Cur *c, double *out) {
    const unsigned char *s;
    size_t len;
    int is_int;
    if (!number_token(c, &s, &len, &is_int)) return 0;
    int neg = *s == '-';
    if (is_int) {
        if (len > 18) return 0;
        int64_t v = 0;
        for (size_t i = neg; i < len; i++) v = v * 10 + (s[i] - '0');
        *out = (double)(neg ? -v : v); /* "-0" is the int 0: 0.0, not -0.0 */
        return 1;
    }
    if (len <= 21) { /* at most 19 digits: the mantissa fits uint64 */
        uint64_t mant = 0;
        int frac = -1; /* digits after the point, -1 before it */
        size_t i = neg;
        for (; i < len; i++) {
            unsigned char ch = s[i];
            if (ch == '.') { frac = 0; continue; }
            if (ch == 'e' || ch == 'E') break;
            mant = mant * 10 + (ch - '0');
            if (frac >= 0) frac++;
        }
        if (i == len && frac >= 0 && frac <= 22 && mant < (1ULL << 53)) {
            double v = (double)mant / POW10[frac];
            *out = neg ? -v : v; /* "-0.0" is -0.0, as orjson */
            return 1;
        }
    }
    char buf[64];
    if (len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *endp;
    *out = strtod(buf, &endp);
    return endp == buf + len && isfinite(*out);
}


/* The length of the well-formed UTF-8 sequence (RFC 3629) that starts at p (a byte of 0x80
 * or more) and ends before e; 0 for what orjson and Python's decoder refuse: an overlong
 * form, an encoded surrogate (U+D800-DFFF), a code point above U+10FFFF, a continuation
 * byte alone, a sequence cut short (by the end of the string or of the file). */
static inline int utf8_sequence(const unsigned char *p, const unsigned char *e) {
    unsigned char b = p[0];
    if (b >= 0xC2 && b <= 0xDF) return e - p >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
        if (e - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xED && p[1] >= 0xA0)) return 0; /* overlong; a surrogate */
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (e - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if ((b == 0xF0 && p[1] < 0x90) || (b == 0xF4 && p[1] >= 0x90)) return 0; /* overlong; above U+10FFFF */
        return 4;
    }
    return 0; /* 0x80-0xC1 (a continuation byte alone, an overlong lead), 0xF5-0xFF */
}

/* The third digit of a \uD... escape that makes it a high surrogate (D800-DBFF). */
static inline int is_high_surrogate_digit(unsigned char x) { return x == '8' || x == '9' || x == 'a' || x == 'b' || x == 'A' || x == 'B'; }

/* Skip a string, fully checked as orjson reads it: no control bytes, only JSON's escapes, a
 * surrogate escape only as a high one followed at once by a low one (json.dumps writes a
 * character above U+FFFF so; a lone half is no Unicode text, orjson refuses it and the
 * Python path reports it, located), well-formed UTF-8 (utf8_sequence). */
static inline int skip_string(Cur *c) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const unsigned char *p = c->p + 1, *e = c->end;
    while (p < e) {
        unsigned char ch = *p;
        if (ch == '"') {
            c->p = p + 1;
            return 1;
        }
        if (ch < 0x20) return 0;
        if (ch == '\\') {
            if (p + 1 >= e) return 0;
            unsigned char x = p[1];
            if (x == '\\' || x == '"' || x == '/' || x == 'b' || x == 'f' || x == 'n' || x == 'r' || x == 't') {
                p += 2;
                continue;
            }
            if (x != 'u' || e - p < 6) return 0;
            for (int k = 2; k < 6; k++)
                if (!is_hex(p[k])) return 0;
            if (p[2] == 'd' || p[2] == 'D') {
                if (p[3] >= '0' && p[3] <= '7') { /* D000-D7FF: no surrogate */
                    p += 6;
                    continue;
                }
                if (!is_high_surrogate_digit(p[3]) || e - p < 12 || p[6] != '\\' || p[7] != 'u' || !(p[8] == 'd' || p[8] == 'D') ||
                    !((p[9] >= 'c' && p[9] <= 'f') || (p[9] >= 'C' && p[9] <= 'F')) || !is_hex(p[10]) || !is_hex(p[11]))
                    return 0;
                p += 12;
                continue;
            }
            p += 6;
            continue;
        }
        if (ch < 0x80) {
            p++;
            continue;
        }
        int n = utf8_sequence(p, e);
        if (!n) return 0;
        p += n;
    }
    return 0;
}

/* A counts string, left where it lies in the file: [*start, *stop) is its JSON content.
 * Printable ASCII; the only escapes accepted are \\ \" \/ (a backslash then the byte itself),
 * which the string kernels undo with their `escaped` flag. */
static inline int read_counts(Cur *c, const unsigned char *base, int64_t *start, int64_t *stop) {
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

/* The next key, for comparing with a name: *klen bytes at *ks. A key with an escape is
 * declined (its bytes are not its text); one in well-formed UTF-8 is its own text. */
static inline int read_key(Cur *c, const unsigned char **ks, size_t *klen) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const unsigned char *p = c->p + 1;
    const unsigned char *q = p;
    while (q < c->end && *q != '"') {
        if (*q == '\\' || *q < 0x20) return 0;
        if (*q >= 0x80) {
            int n = utf8_sequence(q, c->end);
            if (!n) return 0;
            q += n;
            continue;
        }
        q++;
    }
    if (q >= c->end) return 0;
    *ks = p;
    *klen = (size_t)(q - p);
    c->p = q + 1;
    return lit(c, ':');
}

#define KEY_IS(ks, klen, name) ((klen) == sizeof(name) - 1 && memcmp((ks), (name), sizeof(name) - 1) == 0)

/* An RLE's "size": [h, w], two integers. */
static inline int read_size(Cur *c, int64_t *h, int64_t *w) {
    return lit(c, '[') && read_int(c, h) && lit(c, ',') && read_int(c, w) && lit(c, ']');
}

/* One run of uncompressed counts: an integer from 0 to 2^32 - 1 (a uint, as maskApi.c keeps
 * it), added to *sum; declined once the sum is past 2^62, before it can overflow. */
static inline int read_count(Cur *c, int64_t *sum, uint *out) {
    int64_t v;
    if (!read_int(c, &v) || v < 0 || v > 0xFFFFFFFFLL || *sum > ((int64_t)1 << 62)) return 0;
    *sum += v;
    *out = (uint)v;
    return 1;
}

/* A "bbox": [x, y, width, height], four finite numbers. */
static inline int read_box(Cur *c, double bb[4]) {
    if (!lit(c, '[')) return 0;
    for (int k = 0; k < 4; k++)
        if ((k && !lit(c, ',')) || !read_number(c, &bb[k])) return 0;
    return lit(c, ']');
}

/* d[key] = v, taking v's reference; -1 when v is NULL (its error is set) or the store fails. */
static inline int dict_put(PyObject *d, const char *key, PyObject *v) {
    if (!v) return -1;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

static inline int skip_value(Cur *c, int depth) {
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
    if (ch == 't') return word(c, "true", 4);
    if (ch == 'f') return word(c, "false", 5);
    if (ch == 'n') return word(c, "null", 4);
    const unsigned char *s;
    size_t len;
    int is_int;
    if (!number_token(c, &s, &len, &is_int)) return 0;
    /* orjson refuses a number that is infinite as a double (1e400, 400 digits): so do the
     * readers, even where they skip it. Without an exponent, under 309 characters is finite;
     * a long one with an exponent is declined (the generic path reads it). */
    if (len <= 308 && !memchr(s, 'e', len) && !memchr(s, 'E', len)) return 1;
    char buf[64];
    if (len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    return isfinite(strtod(buf, NULL));
}

static inline PyObject *bytes_obj(Bytes *b) { return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->n); }

#endif
