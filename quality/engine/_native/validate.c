/* The compiled pass of dataset validation (datasets/validation.py): it accepts an
 * annotation file or declines it, never reports.
 *
 * json_outline(data, max_depth, "annotations") reads the whole file as strict JSON (RFC 8259,
 * UTF-8, nesting at most max_depth containers deep, integers within 18 digits, finite
 * numbers, no lone surrogate escapes, no duplicate top-level key), except the annotations after
 * the first, which check_annotations reads by the same rules, and returns where its
 * top-level sections lie; None for anything else (the Python path then parses and
 * reports, located).
 *
 * check_annotations(...) reads the annotations array of an outlined file and applies, to
 * every annotation, the checks validate.py applies (ids, references, segmentation by the
 * mask gate's rules, bbox, area, iscrowd, track ids); it returns the arrays the statistics
 * need, or None at the first thing it does not accept or does not handle. Compressed counts
 * strings are left where they lie (their JSON content, escaped) for the gate's string check.
 *
 * Every read is bounds-checked against the buffer; nothing is trusted. Declining is always
 * safe: the Python path decides then.
 */
#include "rle_core.h"

#define V_MAX_DEPTH 512

/* A number as the Python path reads it without failing: an integer of at most 18
 * characters (a longer one may overflow int64), another number finite as a double. */
static int v_number(Cur *c) {
    Cur t = *c;
    const unsigned char *s;
    size_t len;
    int is_int;
    if (!number_token(&t, &s, &len, &is_int)) return 0;
    if (is_int) {
        if (len > 18) return 0;
        *c = t;
        return 1;
    }
    double v;
    return read_number(c, &v);
}

/* Any value; depth is the number of containers around it, max_depth the most allowed. */
static int v_value(Cur *c, int depth, int max_depth) {
    ws(c);
    if (c->p >= c->end) return 0;
    unsigned char ch = *c->p;
    if (ch == '"') return skip_string(c); /* fully checked: escapes, surrogate pairs, UTF-8 */
    if (ch == '{' || ch == '[') {
        if (depth + 1 > max_depth) return 0;
        c->p++;
        char close = ch == '{' ? '}' : ']';
        if (lit(c, close)) return 1;
        for (;;) {
            if (ch == '{' && (!skip_string(c) || !lit(c, ':'))) return 0;
            if (!v_value(c, depth + 1, max_depth)) return 0;
            if (lit(c, ',')) continue;
            return lit(c, close);
        }
    }
    if (ch == 't') return word(c, "true", 4);
    if (ch == 'f') return word(c, "false", 5);
    if (ch == 'n') return word(c, "null", 4);
    return v_number(c);
}

/* The rest of an array whose '[' (and maybe some elements) the cursor is past: only the
 * brackets outside strings are followed, nothing is checked (the caller reads the range
 * strictly later: check_annotations). */
static int fast_skip_rest(Cur *c) {
    const unsigned char *p = c->p, *e = c->end;
    int64_t depth = 1;
    while (p < e) {
        unsigned char ch = *p;
        if (ch == '"') {
            const unsigned char *q = p + 1;
            for (;;) {
                q = memchr(q, '"', (size_t)(e - q));
                if (!q) return 0;
                const unsigned char *b = q;
                while (b > p + 1 && b[-1] == '\\') b--;
                if ((q - b) % 2 == 0) break; /* an even run of backslashes: the quote ends the string */
                q++;
            }
            p = q + 1;
            continue;
        }
        if (ch == '[' || ch == '{') depth++;
        else if (ch == ']' || ch == '}') {
            if (--depth == 0) {
                c->p = p + 1;
                return 1;
            }
        }
        p++;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* json_outline */

typedef struct {
    const unsigned char *k;
    size_t klen;
    int type; /* 0 object, 1 array, 2 string, 3 number, 4 boolean, 5 null */
    int64_t a, b, fa, fb; /* the value's bytes; the first element's (arrays; -1 when none) */
} Section;

static const char *TYPE_NAMES[] = {"object", "array", "string", "number", "boolean", "null"};

#define MAX_SECTIONS 256

static int outline(Cur *c, const unsigned char *base, int max_depth, const char *later, size_t later_len, Section *S, int *ns) {
    *ns = 0;
    if (max_depth < 1 || !lit(c, '{')) return 0;
    if (!lit(c, '}'))
        for (;;) {
            const unsigned char *ks;
            size_t klen;
            if (!read_key(c, &ks, &klen)) return 0; /* keys with escapes or malformed UTF-8: declined */
            for (int i = 0; i < *ns; i++)
                if (S[i].klen == klen && !memcmp(S[i].k, ks, klen)) return 0;
            if (*ns >= MAX_SECTIONS) return 0;
            Section *s = &S[(*ns)++];
            s->k = ks;
            s->klen = klen;
            s->fa = s->fb = -1;
            ws(c);
            if (c->p >= c->end) return 0;
            unsigned char ch = *c->p;
            s->type = ch == '{' ? 0 : ch == '[' ? 1 : ch == '"' ? 2 : (ch == 't' || ch == 'f') ? 4 : ch == 'n' ? 5 : 3;
            s->a = (int64_t)(c->p - base);
            if (s->type == 1) {
                if (2 > max_depth) return 0;
                c->p++;
                if (!lit(c, ']'))
                    for (int first = 1;; first = 0) {
                        ws(c);
                        if (first) s->fa = (int64_t)(c->p - base);
                        if (!v_value(c, 2, max_depth)) return 0;
                        if (first) s->fb = (int64_t)(c->p - base);
                        if (later && klen == later_len && !memcmp(ks, later, klen)) {
                            if (!fast_skip_rest(c)) return 0;
                            break;
                        }
                        if (lit(c, ',')) continue;
                        if (!lit(c, ']')) return 0;
                        break;
                    }
            } else if (!v_value(c, 1, max_depth))
                return 0;
            s->b = (int64_t)(c->p - base);
            if (lit(c, ',')) continue;
            if (!lit(c, '}')) return 0;
            break;
        }
    ws(c);
    return c->p == c->end;
}

/* json_outline(data, max_depth, later=None) -> None | [(key, type, start, stop, first_start, first_stop)]
 * later: the name of a top-level array whose elements after the first are left for the
 * caller to read strictly (check_annotations does, with the same depth limit); only its
 * extent is found here. */
static PyObject *py_json_outline(PyObject *self, PyObject *args) {
    Py_buffer data;
    int max_depth;
    const char *later = NULL;
    Py_ssize_t later_len = 0;
    if (!PyArg_ParseTuple(args, "y*i|z#", &data, &max_depth, &later, &later_len)) return NULL;
    if (max_depth > V_MAX_DEPTH) max_depth = V_MAX_DEPTH;
    Section *S = malloc(sizeof(Section) * MAX_SECTIONS);
    if (!S) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    int ns = 0, ok;
    const unsigned char *base = data.buf;
    Cur c = {base, base + data.len};
    Py_BEGIN_ALLOW_THREADS
    ok = outline(&c, base, max_depth, later, (size_t)later_len, S, &ns);
    Py_END_ALLOW_THREADS
    PyObject *ret;
    if (!ok) {
        ret = Py_None;
        Py_INCREF(ret);
    } else {
        ret = PyList_New(ns);
        for (int i = 0; ret && i < ns; i++) {
            PyObject *t = Py_BuildValue("(s#sLLLL)", (const char *)S[i].k, (Py_ssize_t)S[i].klen, TYPE_NAMES[S[i].type],
                                        (long long)S[i].a, (long long)S[i].b, (long long)S[i].fa, (long long)S[i].fb);
            if (!t) Py_CLEAR(ret);
            else PyList_SET_ITEM(ret, i, t);
        }
    }
    free(S);
    PyBuffer_Release(&data);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* check_annotations */

enum { MODE_INSTANCES = 0, MODE_VIDEO = 1, MODE_YTVIS = 2 };
#define N_AREA_BINS 13

typedef struct {
    const unsigned char *base;
    int mode, max_depth;
    double margin;
    const int64_t *img_ids, *img_h, *img_w, *img_frames;
    int64_t n_img;
    const int64_t *cat_ids;
    int64_t n_cat;
    /* outputs */
    Bytes ann_id, owner, cat, track_vid_kind, track_vid, track_id, has_track;
    Bytes s_start, s_stop, s_h, s_w, s_ann;
    Bytes a_start, a_stop; /* where each annotation lies in data */
    Bytes bad;             /* keep_going: the annotations not accepted */
    int keep_going;
    int64_t n_ann, n_str;
    int64_t area_bins[N_AREA_BINS];
} Ann;

/* What one annotation's masks need from its image: polygon extremes, RLE sizes and sums. */
typedef struct {
    int any_poly;
    double lox, hix, loy, hiy;
    int any_size;
    int64_t size_h, size_w; /* every RLE's size equals these */
    int any_sum;
    int64_t sum; /* every uncompressed RLE's runs sum to this */
    int64_t str_from; /* the strings this annotation added: [str_from, n_str) */
    int64_t frames;  /* segmentations entries (YouTube-VIS) */
} Masks;

static int64_t find(const int64_t *a, int64_t n, int64_t v) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == v ? lo : -1;
}

static int put64(Bytes *b, int64_t v) { return bytes_put(b, &v, 8); }

/* read_number in one pass over the characters for the common coordinate (an integer, or a
 * decimal without exponent, of few digits); the same value (both round correctly), and
 * read_number itself for anything else. */
static inline int read_coord(Cur *c, double *out) {
    ws(c);
    const unsigned char *p = c->p, *e = c->end;
    int neg = 0, nd = 0, frac = -1;
    uint64_t mant = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || !is_digit(*p)) return 0;
    if (*p == '0') {
        p++;
        nd = 1;
    } else
        while (p < e && is_digit(*p)) {
            mant = mant * 10 + (uint64_t)(*p++ - '0');
            if (++nd > 17) return read_number(c, out);
        }
    if (p < e && *p == '.') {
        p++;
        frac = 0;
        if (p >= e || !is_digit(*p)) return 0;
        while (p < e && is_digit(*p)) {
            mant = mant * 10 + (uint64_t)(*p++ - '0');
            frac++;
            if (++nd > 17) return read_number(c, out);
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) return read_number(c, out);
    if (frac < 0) {
        *out = (double)(neg ? -(int64_t)mant : (int64_t)mant);
    } else {
        double v = (double)mant / POW10[frac]; /* mant < 10^17 < 2^57: exact below 2^53 */
        if (mant >= (1ULL << 53)) return read_number(c, out);
        *out = neg ? -v : v;
    }
    c->p = p;
    return 1;
}

/* A polygon list [[x, y, ...], ...]: non-empty, each polygon an even number (at least 6)
 * of numbers within MAX_COORDINATE. */
static int a_polygons(Cur *c, Ann *A, Masks *M, int d) {
    if (d + 1 > A->max_depth || !lit(c, '[')) return 0;
    if (lit(c, ']')) return 0; /* empty_segmentation */
    for (;;) {
        if (d + 2 > A->max_depth || !lit(c, '[')) return 0;
        int64_t k = 0;
        if (!lit(c, ']'))
            for (;;) {
                double v;
                if (!read_coord(c, &v) || !(fabs(v) <= MAX_COORDINATE)) return 0;
                if (!M->any_poly) {
                    M->any_poly = 1;
                    M->lox = M->loy = INFINITY;
                    M->hix = M->hiy = -INFINITY;
                }
                if (k % 2 == 0) {
                    if (v < M->lox) M->lox = v;
                    if (v > M->hix) M->hix = v;
                } else {
                    if (v < M->loy) M->loy = v;
                    if (v > M->hiy) M->hiy = v;
                }
                k++;
                if (lit(c, ',')) continue;
                if (!lit(c, ']')) return 0;
                break;
            }
        if (k < 6 || k % 2) return 0;
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

/* An RLE object: "size" [h, w] and "counts" (a string or non-negative ints below 2^32);
 * other keys are ignored, as the Python path ignores them. */
static int a_rle(Cur *c, Ann *A, Masks *M, int d) {
    if (d + 1 > A->max_depth || !lit(c, '{')) return 0;
    if (lit(c, '}')) return 0;
    int got_size = 0, got_counts = 0;
    int64_t h = 0, w = 0;
    for (;;) {
        const unsigned char *ks;
        size_t klen;
        if (!read_key(c, &ks, &klen)) return 0;
        if (KEY_IS(ks, klen, "size")) {
            if (got_size++ || d + 2 > A->max_depth || !read_size(c, &h, &w)) return 0;
        } else if (KEY_IS(ks, klen, "counts")) {
            if (got_counts++) return 0;
            ws(c);
            if (c->p < c->end && *c->p == '"') {
                int64_t s, e;
                if (!read_counts(c, A->base, &s, &e)) return 0;
                if (put64(&A->s_start, s) < 0 || put64(&A->s_stop, e) < 0) return 0;
                A->n_str++;
            } else {
                if (d + 2 > A->max_depth || !lit(c, '[')) return 0;
                int64_t sum = 0;
                if (!lit(c, ']'))
                    for (;;) {
                        uint run;
                        if (!read_count(c, &sum, &run)) return 0;
                        if (lit(c, ',')) continue;
                        if (!lit(c, ']')) return 0;
                        break;
                    }
                if (M->any_sum && M->sum != sum) return 0;
                M->any_sum = 1;
                M->sum = sum;
            }
        } else if (!v_value(c, d + 1, A->max_depth))
            return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, '}')) return 0;
        break;
    }
    if (!got_size || !got_counts) return 0;
    if (M->any_size && (M->size_h != h || M->size_w != w)) return 0;
    M->any_size = 1;
    M->size_h = h;
    M->size_w = w;
    return 1;
}

/* A segmentation inside d containers. */
static int a_segmentation(Cur *c, Ann *A, Masks *M, int d) {
    ws(c);
    if (c->p >= c->end) return 0;
    if (*c->p == '[') return a_polygons(c, A, M, d);
    if (*c->p == '{') return a_rle(c, A, M, d);
    return 0;
}

/* YouTube-VIS: one entry per frame, null or a segmentation. */
static int a_segmentations(Cur *c, Ann *A, Masks *M) {
    if (4 > A->max_depth || !lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (;;) {
        if (!word(c, "null", 4) && !a_segmentation(c, A, M, 4)) return 0;
        M->frames++;
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

/* A finite number; *out its value. */
static int a_number(Cur *c, double *out) { return read_number(c, out); }

static int a_bbox(Cur *c, Ann *A) {
    double bb[4];
    return 4 <= A->max_depth && read_box(c, bb) && bb[2] >= 0 && bb[3] >= 0;
}

static int annotation(Cur *c, Ann *A) {
    if (3 > A->max_depth || !lit(c, '{')) return 0;
    int64_t id = 0, owner = 0, cat = 0, track = 0, vid = 0;
    double area = 0;
    int got_id = 0, got_owner = 0, got_cat = 0, got_area = 0, got_crowd = 0, got_bbox = 0, got_seg = 0, got_track = 0, got_vid = 0;
    int vid_kind = 0; /* 0: no video_id (or null), 1: an integer */
    int ytvis = A->mode == MODE_YTVIS;
    Masks M = {0};
    M.str_from = A->n_str;
    if (!lit(c, '}'))
        for (;;) {
            const unsigned char *ks;
            size_t klen;
            if (!read_key(c, &ks, &klen)) return 0;
            if (KEY_IS(ks, klen, "id")) {
                if (got_id++ || !read_int(c, &id)) return 0;
            } else if (ytvis ? KEY_IS(ks, klen, "video_id") : KEY_IS(ks, klen, "image_id")) {
                if (got_owner++ || !read_int(c, &owner)) return 0;
            } else if (KEY_IS(ks, klen, "category_id")) {
                if (got_cat++ || !read_int(c, &cat)) return 0;
            } else if (KEY_IS(ks, klen, "area")) {
                if (got_area++) return 0;
                if (word(c, "null", 4)) got_area = 0; /* ann.get("area") is None: not counted */
                else if (!a_number(c, &area) || !(area >= 0)) return 0;
            } else if (KEY_IS(ks, klen, "iscrowd")) {
                if (got_crowd++) return 0;
                double v;
                if (!word(c, "true", 4) && !word(c, "false", 5) && !(a_number(c, &v) && (v == 0 || v == 1))) return 0;
            } else if (KEY_IS(ks, klen, "bbox")) {
                if (got_bbox++ || !a_bbox(c, A)) return 0;
            } else if (!ytvis && KEY_IS(ks, klen, "segmentation")) {
                if (got_seg++ || !a_segmentation(c, A, &M, 3)) return 0;
            } else if (ytvis && KEY_IS(ks, klen, "segmentations")) {
                if (got_seg++ || !a_segmentations(c, A, &M)) return 0;
            } else if (!ytvis && KEY_IS(ks, klen, "track_id")) {
                if (got_track++ || !read_int(c, &track)) return 0;
            } else if (!ytvis && KEY_IS(ks, klen, "video_id")) {
                if (got_vid++) return 0;
                if (word(c, "null", 4)) vid_kind = 0;
                else if (read_int(c, &vid)) vid_kind = 1;
                else return 0;
            } else if (!v_value(c, 3, A->max_depth))
                return 0;
            if (lit(c, ',')) continue;
            if (!lit(c, '}')) return 0;
            break;
        }
    if (!got_id || !got_owner || !got_cat || !got_seg) return 0;
    if (A->mode == MODE_VIDEO && !got_track) return 0;
    int64_t oi = find(A->img_ids, A->n_img, owner), ci = find(A->cat_ids, A->n_cat, cat);
    if (oi < 0 || ci < 0) return 0;
    int64_t h = A->img_h[oi], w = A->img_w[oi];
    if (h <= 0 || w <= 0) return 0; /* an image whose size the validation refused */
    if (ytvis && M.frames != A->img_frames[oi]) return 0;
    if (M.any_poly && (M.lox < -A->margin || M.loy < -A->margin || M.hix > (double)w + A->margin || M.hiy > (double)h + A->margin))
        return 0;
    if (M.any_size && (M.size_h != h || M.size_w != w)) return 0;
    if (M.any_sum && M.sum != h * w) return 0;
    for (int64_t s = M.str_from; s < A->n_str; s++)
        if (put64(&A->s_h, h) < 0 || put64(&A->s_w, w) < 0 || put64(&A->s_ann, A->n_ann) < 0) return 0;
    unsigned char ht = (unsigned char)got_track, vk = (unsigned char)vid_kind;
    if (put64(&A->ann_id, id) < 0 || put64(&A->owner, oi) < 0 || put64(&A->cat, ci) < 0 || bytes_put(&A->has_track, &ht, 1) < 0 ||
        bytes_put(&A->track_vid_kind, &vk, 1) < 0 || put64(&A->track_vid, vid) < 0 || put64(&A->track_id, track) < 0)
        return 0;
    if (got_area) {
        int k = 0;
        while (k + 1 < N_AREA_BINS && area >= (double)((int64_t)1 << (2 * (k + 1)))) k++;
        A->area_bins[k]++;
    }
    A->n_ann++;
    return 1;
}

/* With keep_going, an annotation that is not accepted (but is strict JSON) is recorded in
 * bad (its index and bytes) with a row of zeros (owner and category -1) in the arrays, and
 * the reading goes on: the Python path checks only those. */
static int annotations(Cur *c, Ann *A) {
    if (2 > A->max_depth || !lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    Bytes *rows[] = {&A->ann_id, &A->owner, &A->cat, &A->track_vid_kind, &A->track_vid, &A->track_id, &A->has_track,
                     &A->s_start, &A->s_stop, &A->s_h, &A->s_w, &A->s_ann};
    enum { N_ROWS = sizeof rows / sizeof *rows };
    for (;;) {
        size_t lens[N_ROWS];
        for (int k = 0; k < N_ROWS; k++) lens[k] = rows[k]->n;
        int64_t n_str = A->n_str;
        ws(c);
        Cur at = *c;
        if (!annotation(c, A)) {
            if (!A->keep_going) return 0;
            for (int k = 0; k < N_ROWS; k++) rows[k]->n = lens[k];
            A->n_str = n_str;
            *c = at;
            if (!v_value(c, 2, A->max_depth)) return 0;
            int64_t zero = 0, none = -1;
            unsigned char z = 0;
            if (put64(&A->bad, A->n_ann) < 0 || put64(&A->ann_id, zero) < 0 || put64(&A->owner, none) < 0 ||
                put64(&A->cat, none) < 0 || bytes_put(&A->has_track, &z, 1) < 0 || bytes_put(&A->track_vid_kind, &z, 1) < 0 ||
                put64(&A->track_vid, zero) < 0 || put64(&A->track_id, zero) < 0)
                return 0;
            A->n_ann++;
        }
        if (put64(&A->a_start, (int64_t)(at.p - A->base)) < 0 || put64(&A->a_stop, (int64_t)(c->p - A->base)) < 0) return 0;
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

static void ann_free(Ann *A) {
    Bytes *all[] = {&A->ann_id, &A->owner, &A->cat, &A->track_vid_kind, &A->track_vid, &A->track_id, &A->has_track,
                    &A->s_start, &A->s_stop, &A->s_h, &A->s_w, &A->s_ann, &A->bad, &A->a_start, &A->a_stop};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        free(all[i]->p);
        all[i]->p = NULL;
        all[i]->n = all[i]->cap = 0;
    }
}

static int sorted_unique(const int64_t *a, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++)
        if (a[i - 1] >= a[i]) return 0;
    return 1;
}

/* check_annotations(data, start, stop, mode, max_depth, margin, img_ids i64[I] (sorted, unique),
 *                   img_h i64[I], img_w i64[I] (0: a refused size), img_frames i64[I],
 *                   cat_ids i64[C] (sorted, unique), keep_going=False)
 *   -> None | dict: n (annotations), area_bins [13 ints] (of the accepted ones), and the bytes of
 *      id, owner (index into img_ids), category (index into cat_ids) i64[n];
 *      has_track, video_id_kind u8[n] (0 none/null, 1 int); video_id, track_id i64[n];
 *      str_start, str_stop (the JSON content of each counts string in data), str_h, str_w,
 *      str_ann (its annotation) i64[S]; start, stop i64[n]: where each annotation lies in
 *      data; bad i64[B]: the annotations not accepted (keep_going; owner -1 in their row).
 * mode: 0 COCO instances, 1 COCO video (track_id required), 2 YouTube-VIS. data[start:stop]
 * is the annotations array, a member of the file's top-level object: the array lies inside
 * one container, its annotations inside two; nothing may nest deeper than max_depth
 * containers (the file's object counted). The range is read strictly, as json_outline
 * reads the rest of the file. */
static PyObject *py_check_annotations(PyObject *self, PyObject *args) {
    Py_buffer data, ib, hb, wb, fb, cb;
    long long start, stop;
    int mode, max_depth, keep_going = 0;
    double margin;
    if (!PyArg_ParseTuple(args, "y*LLiidy*y*y*y*y*|p", &data, &start, &stop, &mode, &max_depth, &margin, &ib, &hb, &wb, &fb, &cb,
                          &keep_going))
        return NULL;
    PyObject *ret = NULL;
    Ann A;
    memset(&A, 0, sizeof A);
    A.keep_going = keep_going;
    Py_ssize_t I = ib.len / 8, C = cb.len / 8;
    if (nb_check(&ib, I, 8, "img_ids") < 0 || nb_check(&hb, I, 8, "img_h") < 0 || nb_check(&wb, I, 8, "img_w") < 0 ||
        nb_check(&fb, I, 8, "img_frames") < 0 || nb_check(&cb, C, 8, "cat_ids") < 0)
        goto done;
    if (start < 0 || stop < start || stop > data.len || mode < 0 || mode > 2 || !(margin >= 0 && margin <= MAX_COORDINATE)) {
        PyErr_SetString(PyExc_ValueError, "check_annotations: bad range, mode or margin");
        goto done;
    }
    if (!sorted_unique(ib.buf, I) || !sorted_unique(cb.buf, C)) {
        PyErr_SetString(PyExc_ValueError, "check_annotations: ids must be sorted and unique");
        goto done;
    }
    const int64_t *hs = hb.buf, *wsz = wb.buf;
    for (Py_ssize_t i = 0; i < I; i++)
        if (hs[i] < 0 || wsz[i] < 0 || hs[i] > 65535 || wsz[i] > 65535) {
            PyErr_SetString(PyExc_ValueError, "check_annotations: image sizes out of range");
            goto done;
        }
    A.base = data.buf;
    A.mode = mode;
    A.max_depth = max_depth > V_MAX_DEPTH ? V_MAX_DEPTH : max_depth;
    A.margin = margin;
    A.img_ids = ib.buf;
    A.img_h = hb.buf;
    A.img_w = wb.buf;
    A.img_frames = fb.buf;
    A.n_img = I;
    A.cat_ids = cb.buf;
    A.n_cat = C;
    Cur c = {(const unsigned char *)data.buf + start, (const unsigned char *)data.buf + stop};
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = annotations(&c, &A);
    if (ok) {
        ws(&c);
        ok = c.p == c.end;
    }
    Py_END_ALLOW_THREADS
    if (!ok) {
        ret = Py_None;
        Py_INCREF(ret);
        goto done;
    }
    ret = PyDict_New();
    if (!ret) goto done;
    struct {
        const char *name;
        Bytes *b;
    } items[] = {{"id", &A.ann_id}, {"owner", &A.owner}, {"category", &A.cat}, {"has_track", &A.has_track},
                 {"video_id_kind", &A.track_vid_kind}, {"video_id", &A.track_vid}, {"track_id", &A.track_id},
                 {"str_start", &A.s_start}, {"str_stop", &A.s_stop}, {"str_h", &A.s_h}, {"str_w", &A.s_w},
                 {"str_ann", &A.s_ann}, {"bad", &A.bad}, {"start", &A.a_start}, {"stop", &A.a_stop}};
    if (dict_put(ret, "n", PyLong_FromLongLong(A.n_ann)) < 0 ||
        dict_put(ret, "area_bins", Py_BuildValue("[LLLLLLLLLLLLL]", A.area_bins[0], A.area_bins[1], A.area_bins[2], A.area_bins[3], A.area_bins[4],
                                   A.area_bins[5], A.area_bins[6], A.area_bins[7], A.area_bins[8], A.area_bins[9], A.area_bins[10],
                                   A.area_bins[11], A.area_bins[12])) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof items / sizeof *items; i++)
        if (dict_put(ret, items[i].name, bytes_obj(items[i].b)) < 0) goto fail;
    goto done;
fail:
    Py_CLEAR(ret);
done:
    ann_free(&A);
    PyBuffer_Release(&data);
    PyBuffer_Release(&ib);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&fb);
    PyBuffer_Release(&cb);
    return ret;
}

PyMethodDef validate_methods[] = {
    {"json_outline", py_json_outline, METH_VARARGS, "Check a whole JSON file strictly and locate its top-level sections (None: declined)."},
    {"check_annotations", py_check_annotations, METH_VARARGS,
     "Accept an annotations array by the validation's rules and return what the statistics need (None: declined)."},
    {NULL, NULL, 0, NULL},
};
