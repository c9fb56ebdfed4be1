/* Greedy COCO matching and accumulation, element for element as pycocotools' COCOeval.
 *
 * match:      evaluateImg's greedy matching for every (area range, threshold, detection);
 *             twin of cocoeval._match plus the per-area loop of cocoeval._state_from_flat.
 * accumulate: COCOeval.accumulate's cumulative tp/fp, precision, recall and scores;
 *             twin of the inner loops of cocoeval._accumulate.
 *
 * Every array is a C-contiguous numpy array allocated by the caller; the sizes are checked
 * here (ValueError), and so are the indices that would otherwise read out of bounds. bool
 * arrays are one byte per item (0 or 1).
 */
#include "native.h"

#include <float.h>
#include <string.h>

enum { N_MATCH_BUFS = 13, N_ACC_BUFS = 12 };

static void release_all(Py_buffer *bufs, int n) {
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&bufs[i]); /* a no-op on a zeroed (never filled) buffer */
}

/* Number of items of itemsize bytes in b; -1 with ValueError when it is not a whole number. */
static Py_ssize_t nb_items(Py_buffer *b, Py_ssize_t itemsize, const char *name) {
    if (b->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a multiple of %zd", name, b->len, itemsize);
        return -1;
    }
    return b->len / itemsize;
}

/* ---------------------------------------------------------------------------------- */
/* match */

/* One (area range, threshold) pass over the detections that have candidate pairs (the
 * others keep the defaults the caller wrote: unmatched, ignored when out of the area
 * range). Detections come sorted by (cell, rank) and cells never share references, so
 * walking them in array order is pycocotools' per-image walk in score order. */
static void match_one(const int64_t *active, Py_ssize_t n_active, double thr, const uint8_t *d_take,
                      const int64_t *pair_start, const int64_t *pg, const double *piou, const uint8_t *g_ig,
                      const uint8_t *g_crowd, const uint8_t *g_real, uint8_t *taken, uint8_t *matched,
                      uint8_t *ignored) {
    for (Py_ssize_t j = 0; j < n_active; j++) {
        int64_t d = active[j];
        /* pycocotools walks references with ignored ones last, accepts iou >= best (so the
         * last of equal IoUs wins) and stops at the first ignored reference once it holds a
         * real match: the pick is the best real reference, else the best ignored one. */
        double best_real = thr, best_ig = thr;
        int64_t pick_real = -1, pick_ig = -1;
        for (int64_t p = pair_start[d]; p < pair_start[d + 1]; p++) {
            int64_t g = pg[p];
            if (taken[g])
                continue;
            double iou = piou[p];
            if (g_ig[g]) {
                if (iou >= best_ig) {
                    best_ig = iou;
                    pick_ig = g;
                }
            } else if (iou >= best_real) {
                best_real = iou;
                pick_real = g;
            }
        }
        int64_t pick = pick_real >= 0 ? pick_real : pick_ig;
        if (pick < 0)
            continue;
        /* a reference id of 0 makes dtm 0: the detection counts as unmatched (and keeps
         * the out-of-range default) */
        int real = g_real[pick] != 0;
        matched[d] = (uint8_t)real;
        if (real)
            ignored[d] = g_ig[pick];
        else
            ignored[d] |= g_ig[pick];
        /* gtm takes the detection id: only a positive id marks the reference as taken, and
         * a crowd stays available to absorb more detections */
        if (!g_crowd[pick] && d_take[d])
            taken[pick] = 1;
    }
}

PyDoc_STRVAR(match_doc,
             "match(area_rng, thr_eff, d_area, d_take, pair_start, pg, piou, g_area, g_ignore, g_crowd, g_real,"
             " matched, ignored)\n--\n\n"
             "Greedy COCO matching for every (area range, threshold, detection).\n\n"
             "area_rng float64 [A, 2]; thr_eff float64 [T] (min(t, 1 - 1e-10)); detections sorted by (cell,"
             " rank): d_area float64 [N], d_take bool [N] (id > 0); pair_start int64 [N + 1]: detection d's"
             " candidate pairs are pg/piou[pair_start[d]:pair_start[d + 1]], pg (int64 [P]) ascending inside"
             " a detection; references: g_area float64 [G], g_ignore/g_crowd/g_real (id != 0) bool [G]."
             " Fills matched and ignored, bool [A, T, N].");

static PyObject *py_match(PyObject *self, PyObject *args) {
    Py_buffer b[N_MATCH_BUFS];
    memset(b, 0, sizeof b);
    Py_buffer *area_rng = &b[0], *thr_eff = &b[1], *d_area = &b[2], *d_take = &b[3], *pair_start = &b[4],
              *pg = &b[5], *piou = &b[6], *g_area = &b[7], *g_ignore = &b[8], *g_crowd = &b[9], *g_real = &b[10],
              *matched = &b[11], *ignored = &b[12];
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*w*w*:match", area_rng, thr_eff, d_area, d_take, pair_start, pg,
                          piou, g_area, g_ignore, g_crowd, g_real, matched, ignored))
        return NULL;
    PyObject *ret = NULL;
    uint8_t *g_ig = NULL, *taken = NULL;
    int64_t *active = NULL;
    Py_ssize_t A2 = nb_items(area_rng, sizeof(double), "area_rng");
    Py_ssize_t T = nb_items(thr_eff, sizeof(double), "thr_eff");
    Py_ssize_t N = nb_items(d_area, sizeof(double), "d_area");
    Py_ssize_t P = nb_items(pg, sizeof(int64_t), "pg");
    Py_ssize_t G = nb_items(g_area, sizeof(double), "g_area");
    if (A2 < 0 || T < 0 || N < 0 || P < 0 || G < 0)
        goto done;
    if (A2 % 2) {
        PyErr_SetString(PyExc_ValueError, "area_rng: expected [A, 2] float64");
        goto done;
    }
    Py_ssize_t A = A2 / 2;
    if (nb_check(d_take, N, 1, "d_take") || nb_check(pair_start, N + 1, sizeof(int64_t), "pair_start") ||
        nb_check(piou, P, sizeof(double), "piou") || nb_check(g_ignore, G, 1, "g_ignore") ||
        nb_check(g_crowd, G, 1, "g_crowd") || nb_check(g_real, G, 1, "g_real") ||
        nb_check(matched, A * T * N, 1, "matched") || nb_check(ignored, A * T * N, 1, "ignored"))
        goto done;

    const int64_t *ps = pair_start->buf, *pgv = pg->buf;
    /* the loops index with these without further checks */
    if (ps[0] < 0 || ps[N] > P) {
        PyErr_SetString(PyExc_ValueError, "pair_start: out of the pair range");
        goto done;
    }
    for (Py_ssize_t d = 0; d < N; d++)
        if (ps[d + 1] < ps[d]) {
            PyErr_SetString(PyExc_ValueError, "pair_start: not non-decreasing");
            goto done;
        }
    for (Py_ssize_t p = 0; p < P; p++)
        if (pgv[p] < 0 || pgv[p] >= G) {
            PyErr_Format(PyExc_ValueError, "pg[%zd] = %lld: not a reference index", p, (long long)pgv[p]);
            goto done;
        }
    g_ig = PyMem_Malloc(G ? (size_t)G : 1);
    taken = PyMem_Malloc(G ? (size_t)G : 1);
    active = PyMem_Malloc((size_t)(N ? N : 1) * sizeof(int64_t));
    if (!g_ig || !taken || !active) {
        PyErr_NoMemory();
        goto done;
    }

    const double *rng = area_rng->buf, *thr = thr_eff->buf, *ga = g_area->buf, *da = d_area->buf;
    const uint8_t *gi = g_ignore->buf;
    uint8_t *mt = matched->buf, *ig = ignored->buf;
    Py_BEGIN_ALLOW_THREADS;
    /* most detections have no candidate pair: only these few go through the matching */
    Py_ssize_t n_active = 0;
    for (Py_ssize_t d = 0; d < N; d++)
        if (ps[d + 1] > ps[d])
            active[n_active++] = d;
    for (Py_ssize_t a = 0; a < A; a++) {
        double lo = rng[2 * a], hi = rng[2 * a + 1];
        /* defaults for every threshold: unmatched, and so ignored when the detection's
         * area is out of [lo, hi] */
        uint8_t *ig_a = ig + a * T * N;
        for (Py_ssize_t d = 0; d < N; d++)
            ig_a[d] = (uint8_t)(da[d] < lo || da[d] > hi);
        for (Py_ssize_t t = 1; t < T; t++)
            memcpy(ig_a + t * N, ig_a, (size_t)N);
        memset(mt + a * T * N, 0, (size_t)(T * N));
        /* COCOeval's per-area gtIgnore: the ignore flag or an area outside [lo, hi] */
        for (Py_ssize_t g = 0; g < G; g++)
            g_ig[g] = (uint8_t)(gi[g] || ga[g] < lo || ga[g] > hi);
        for (Py_ssize_t t = 0; t < T; t++) {
            memset(taken, 0, (size_t)G); /* gtm starts empty at every (area, threshold) */
            Py_ssize_t row = (a * T + t) * N;
            match_one(active, n_active, thr[t], d_take->buf, ps, pgv, piou->buf, g_ig, g_crowd->buf, g_real->buf,
                      taken, mt + row, ig + row);
        }
    }
    Py_END_ALLOW_THREADS;
    Py_INCREF(Py_None);
    ret = Py_None;
done: /* every path: the scratch and all buffers go back */
    PyMem_Free(g_ig);
    PyMem_Free(taken);
    PyMem_Free(active);
    release_all(b, N_MATCH_BUFS);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* accumulate */

/* numpy's float ordering (NaN sorts last), so the search equals np.searchsorted's */
static inline int npy_lt(double a, double b) { return a < b || (b != b && a == a); }

/* np.searchsorted(rc[:n], v, side="left"): the first i with not rc[i] < v */
static inline Py_ssize_t search_left(const double *rc, Py_ssize_t n, double v) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (npy_lt(rc[mid], v))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Detection outcome at one (area, threshold), as accumulate counts it. */
enum { OUT_IGNORED = 0, OUT_TP = 1, OUT_FP = 2 };

typedef struct {
    Py_ssize_t T, R, K, A, M;
    const double *rec_thrs; /* [R] */
    double *precision;      /* [T, R, K, A, M] */
    double *scores;         /* [T, R, K, A, M] */
    double *recall;         /* [T, K, A, M] */
} acc_t;

/* One (threshold, category, area, maxDets) slot. Its nd detections, in accumulation order,
 * are the category positions pos[0:nd]; outcome[] and score[] are indexed by category
 * position. s holds scratch of nd + 1 items per array.
 *
 * pycocotools builds rc[i] = tp[i] / npig and pr[i] = tp[i] / (fp[i] + tp[i] + eps) for
 * every detection, makes pr monotone from the right and samples both at the recall
 * thresholds. The same values come from the true positives alone, with the same float64
 * operations on the same integer counts:
 * - rc[i] depends on tp[i] only and grows with it, so the first i with rc[i] >= v is the
 *   detection where tp first reaches c*, the least count c with c / npig >= v;
 * - a false positive never raises pr (a larger denominator, rounding is monotone) and an
 *   ignored detection repeats it, so the maximum of pr over i.. is reached at i or at a
 *   later true positive: at the true positives the monotone pr is a running maximum from
 *   the right over tp counts, and pr before the first true positive is +0.0. */
typedef struct {
    int64_t *at;    /* [c]: the position (in pos) where tp reaches c */
    int64_t *fp_at; /* [c]: fp at that position */
    double *rc;     /* [c]: c / npig */
    double *pr;     /* [c]: the monotone precision from tp count c on */
} slot_scratch_t;

static void accumulate_slot(const acc_t *c, Py_ssize_t t, Py_ssize_t k, Py_ssize_t a, Py_ssize_t m, int64_t npig,
                            const uint8_t *outcome, const double *score, const int64_t *pos, Py_ssize_t nd,
                            const slot_scratch_t *s) {
    const Py_ssize_t R = c->R, K = c->K, A = c->A, M = c->M;
    const Py_ssize_t r_stride = K * A * M; /* from recall threshold r to r + 1 */
    const double eps = DBL_EPSILON;        /* np.spacing(1) */
    double *rec = &c->recall[((t * K + k) * A + a) * M + m];
    double *prec = &c->precision[((t * R * K + k) * A + a) * M + m];
    double *sc = &c->scores[((t * R * K + k) * A + a) * M + m];
    if (nd == 0) {
        *rec = 0.0;
        for (Py_ssize_t r = 0; r < R; r++)
            prec[r * r_stride] = sc[r * r_stride] = 0.0;
        return;
    }
    /* integer running counts, exact in float64, as pycocotools' cumsum(...).astype(float);
     * branch-free: outcomes are unpredictable (slot 0 takes the other detections' writes) */
    int64_t tp = 0, fp = 0;
    for (Py_ssize_t i = 0; i < nd; i++) {
        uint8_t o = outcome[pos[i]];
        int64_t hit = o == OUT_TP;
        tp += hit;
        fp += o == OUT_FP;
        int64_t slot = hit ? tp : 0;
        s->at[slot] = i;
        s->fp_at[slot] = fp;
    }
    s->at[0] = 0;
    for (int64_t n = 0; n <= tp; n++)
        s->rc[n] = (double)n / (double)npig;
    s->pr[tp] = tp ? (double)tp / (((double)s->fp_at[tp] + (double)tp) + eps) : 0.0;
    for (int64_t n = tp - 1; n >= 0; n--) {
        double pr_n = n ? (double)n / (((double)s->fp_at[n] + (double)n) + eps) : 0.0;
        s->pr[n] = s->pr[n + 1] > pr_n ? s->pr[n + 1] : pr_n;
    }
    *rec = s->rc[tp];
    for (Py_ssize_t r = 0; r < R; r++) {
        int64_t n = search_left(s->rc, tp + 1, c->rec_thrs[r]);
        prec[r * r_stride] = n <= tp ? s->pr[n] : 0.0;
        sc[r * r_stride] = n <= tp ? score[pos[s->at[n]]] : 0.0;
    }
}

/* Slot (t, k, a, m_to) gets slot (t, k, a, m_from)'s recall, precision and scores. */
static void copy_slot(const acc_t *c, Py_ssize_t t, Py_ssize_t k, Py_ssize_t a, Py_ssize_t m_from, Py_ssize_t m_to) {
    const Py_ssize_t R = c->R, K = c->K, A = c->A, M = c->M;
    Py_ssize_t rec = ((t * K + k) * A + a) * M;
    c->recall[rec + m_to] = c->recall[rec + m_from];
    for (Py_ssize_t r = 0; r < R; r++) {
        Py_ssize_t at = (((t * R + r) * K + k) * A + a) * M;
        c->precision[at + m_to] = c->precision[at + m_from];
        c->scores[at + m_to] = c->scores[at + m_from];
    }
}

PyDoc_STRVAR(accumulate_doc,
             "accumulate(T, A, order, kb, det_rank, det_score, matched, ignored, npig, max_dets, rec_thrs,"
             " precision, recall, scores)\n--\n\n"
             "COCOeval.accumulate over per-detection outcomes.\n\n"
             "order int64 [N]: detections in accumulation order, grouped by category; category k is"
             " order[kb[k]:kb[k + 1]] (kb int64 [K + 1]). det_rank int64 [N], det_score float64 [N],"
             " matched/ignored bool [A, T, N], npig int64 [K, A], max_dets int64 [M], rec_thrs float64 [R]."
             " Writes precision/scores float64 [T, R, K, A, M] and recall float64 [T, K, A, M] where a"
             " category and area have references; other entries keep their value (-1).");

static PyObject *py_accumulate(PyObject *self, PyObject *args) {
    Py_buffer b[N_ACC_BUFS];
    memset(b, 0, sizeof b);
    Py_buffer *order = &b[0], *kb = &b[1], *det_rank = &b[2], *det_score = &b[3], *matched = &b[4],
              *ignored = &b[5], *npig = &b[6], *max_dets = &b[7], *rec_thrs = &b[8], *precision = &b[9],
              *recall = &b[10], *scores = &b[11];
    Py_ssize_t T, A;
    if (!PyArg_ParseTuple(args, "nny*y*y*y*y*y*y*y*y*w*w*w*:accumulate", &T, &A, order, kb, det_rank, det_score,
                          matched, ignored, npig, max_dets, rec_thrs, precision, recall, scores))
        return NULL;
    PyObject *ret = NULL;
    int64_t *pos = NULL;
    Py_ssize_t *n_sel = NULL;
    uint8_t *outcome = NULL;
    double *score = NULL;
    slot_scratch_t scratch = {0};
    Py_ssize_t N = nb_items(order, sizeof(int64_t), "order");
    Py_ssize_t K1 = nb_items(kb, sizeof(int64_t), "kb");
    Py_ssize_t M = nb_items(max_dets, sizeof(int64_t), "max_dets");
    Py_ssize_t R = nb_items(rec_thrs, sizeof(double), "rec_thrs");
    if (N < 0 || K1 < 0 || M < 0 || R < 0)
        goto done;
    if (T < 0 || A < 0 || K1 < 1) {
        PyErr_SetString(PyExc_ValueError, "accumulate: T, A must be >= 0 and kb hold K + 1 items");
        goto done;
    }
    Py_ssize_t K = K1 - 1;
    if (nb_check(det_rank, N, sizeof(int64_t), "det_rank") || nb_check(det_score, N, sizeof(double), "det_score") ||
        nb_check(matched, A * T * N, 1, "matched") || nb_check(ignored, A * T * N, 1, "ignored") ||
        nb_check(npig, K * A, sizeof(int64_t), "npig") ||
        nb_check(precision, T * R * K * A * M, sizeof(double), "precision") ||
        nb_check(recall, T * K * A * M, sizeof(double), "recall") ||
        nb_check(scores, T * R * K * A * M, sizeof(double), "scores"))
        goto done;

    const int64_t *ord = order->buf, *kbv = kb->buf, *rank = det_rank->buf, *md = max_dets->buf, *n_refs = npig->buf;
    Py_ssize_t most = 0; /* the largest category: scratch size */
    if (kbv[0] < 0 || kbv[K] > N) {
        PyErr_SetString(PyExc_ValueError, "kb: out of the detection range");
        goto done;
    }
    for (Py_ssize_t k = 0; k < K; k++) {
        if (kbv[k + 1] < kbv[k]) {
            PyErr_SetString(PyExc_ValueError, "kb: not non-decreasing");
            goto done;
        }
        if (kbv[k + 1] - kbv[k] > most)
            most = kbv[k + 1] - kbv[k];
    }
    for (Py_ssize_t i = 0; i < N; i++)
        if (ord[i] < 0 || ord[i] >= N) {
            PyErr_Format(PyExc_ValueError, "order[%zd] = %lld: not a detection index", i, (long long)ord[i]);
            goto done;
        }
    /* per category: each maxDets' positions, the outcomes at one (area, threshold), the scores */
    size_t most1 = (size_t)(most ? most : 1);
    pos = PyMem_Malloc((size_t)(M ? M : 1) * most1 * sizeof(int64_t));
    n_sel = PyMem_Malloc((size_t)(M ? M : 1) * sizeof(Py_ssize_t));
    outcome = PyMem_Malloc(most1);
    score = PyMem_Malloc(most1 * sizeof(double));
    scratch.at = PyMem_Malloc((most1 + 1) * sizeof(int64_t));
    scratch.fp_at = PyMem_Malloc((most1 + 1) * sizeof(int64_t));
    scratch.rc = PyMem_Malloc((most1 + 1) * sizeof(double));
    scratch.pr = PyMem_Malloc((most1 + 1) * sizeof(double));
    if (!pos || !n_sel || !outcome || !score || !scratch.at || !scratch.fp_at || !scratch.rc || !scratch.pr) {
        PyErr_NoMemory();
        goto done;
    }

    const uint8_t *mt = matched->buf, *ig = ignored->buf;
    const double *ds = det_score->buf;
    acc_t c = {.T = T, .R = R, .K = K, .A = A, .M = M, .rec_thrs = rec_thrs->buf, .precision = precision->buf,
               .scores = scores->buf, .recall = recall->buf};
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t k = 0; k < K; k++) {
        const int64_t *cat = ord + kbv[k];
        Py_ssize_t n_cat = kbv[k + 1] - kbv[k];
        for (Py_ssize_t i = 0; i < n_cat; i++)
            score[i] = ds[cat[i]];
        /* maxDets keeps each image's first max_det detections, in the category's order */
        for (Py_ssize_t m = 0; m < M; m++) {
            int64_t *pm = pos + m * most1;
            Py_ssize_t nd = 0;
            for (Py_ssize_t i = 0; i < n_cat; i++)
                if (rank[cat[i]] < md[m])
                    pm[nd++] = i;
            n_sel[m] = nd;
        }
        for (Py_ssize_t a = 0; a < A; a++) {
            int64_t n_ref = n_refs[k * A + a];
            if (n_ref == 0) /* no reference: the slots stay -1 */
                continue;
            for (Py_ssize_t t = 0; t < T; t++) {
                /* one gather from the [A, T, N] rows serves every maxDets */
                const uint8_t *mt_row = mt + (a * T + t) * N, *ig_row = ig + (a * T + t) * N;
                for (Py_ssize_t i = 0; i < n_cat; i++) {
                    int64_t d = cat[i];
                    /* ignored: OUT_IGNORED, else matched: OUT_TP, else OUT_FP (branch-free) */
                    outcome[i] = (uint8_t)((ig_row[d] == 0) * (2 - (mt_row[d] != 0)));
                }
                for (Py_ssize_t m = 0; m < M; m++) {
                    /* the selections of two maxDets are nested: the same count is the same
                     * selection, so the previous slot's values are this one's */
                    if (m > 0 && n_sel[m] == n_sel[m - 1])
                        copy_slot(&c, t, k, a, m - 1, m);
                    else
                        accumulate_slot(&c, t, k, a, m, n_ref, outcome, score, pos + m * most1, n_sel[m], &scratch);
                }
            }
        }
    }
    Py_END_ALLOW_THREADS;
    Py_INCREF(Py_None);
    ret = Py_None;
done: /* every path: the scratch and all buffers go back */
    PyMem_Free(pos);
    PyMem_Free(n_sel);
    PyMem_Free(outcome);
    PyMem_Free(score);
    PyMem_Free(scratch.at);
    PyMem_Free(scratch.fp_at);
    PyMem_Free(scratch.rc);
    PyMem_Free(scratch.pr);
    release_all(b, N_ACC_BUFS);
    return ret;
}

PyMethodDef evalcore_methods[] = {
    {"match", py_match, METH_VARARGS, match_doc},
    {"accumulate", py_accumulate, METH_VARARGS, accumulate_doc},
    {NULL, NULL, 0, NULL},
};
