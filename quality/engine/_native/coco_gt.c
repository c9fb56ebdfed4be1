/* A reader for COCO reference (ground-truth) files that never builds a Python object per
 * image or annotation, and the rasterization of what it read.
 *
 * parse_coco reads the common shape of a reference file:
 *   {"images": [{"id": int, "height": int, "width": int, ...}, ...],
 *    "categories": [...],                      (its byte range only: Python loads it)
 *    "annotations": [{"id": int, "image_id": int, "category_id": int, "area": number,
 *                     "iscrowd": int|bool, "ignore": int|bool, "bbox": [4 numbers]|null,
 *                     "segmentation": polygons | {"size": [h, w], "counts": "..." | [ints]},
 *                     ...}, ...],
 *    ...}
 * into flat arrays, in any key order. Anything unusual (missing fields, integers written as
 * floats, huge numbers, duplicate keys, box-mode or malformed polygons, non-ASCII bytes,
 * invalid JSON) makes it give up and return None: the caller then parses with orjson and
 * reports the error with its location. It never accepts a file orjson rejects, and its
 * numbers are orjson's (integers exactly, then converted to double as numpy converts a
 * Python int; other numbers with strtod, correctly rounded like orjson).
 *
 * encode_masks turns the geometry into compressed RLE strings exactly as masks.to_rles +
 * pack_counts: rleFrPoly of each polygon at the image's size merged (rleMerge) when there are
 * several, compressed strings copied, uncompressed counts through rleToString.
 */
#include "rle_core.h"

#include <sys/mman.h>
#include <unistd.h>

/* SEG_NONE: no segmentation (missing or null: seg_lo 0) or an empty polygon list (seg_lo 1);
 * fine for box evaluations, an error (raised by the Python path) when masks are wanted. */
enum { SEG_POLY = 0, SEG_STRING = 1, SEG_COUNTS = 2, SEG_NONE = 3 };

typedef struct {
    const unsigned char *base;
    /* images */
    Bytes img_id, img_h, img_w;
    int64_t n_img;
    /* annotations */
    Bytes id, image_id, category_id, area, crowd, ignore, bbox, kind, seg_lo, seg_hi, rle_hw, rle_sum;
    int64_t n_ann;
    /* geometry */
    Bytes poly_end;  /* i64: end of each polygon in coords */
    Bytes coords;    /* f64 */
    Bytes chars;     /* compressed counts, unescaped */
    Bytes ucounts;   /* u32 */
    int64_t n_poly, n_coords, n_ucounts;
    int64_t cat_a, cat_b;
    /* YouTube-VIS (parse_ytvis): each video's frames; each mask's annotation and frame */
    Bytes vid_frames, mask_ann, mask_frame;
    int64_t n_mask;
    /* a read-only file mapping: the pages the parser has gone past are released as it goes
     * (release_behind), up to `released` */
    int release;
    const unsigned char *released;
    /* parse_ytvis: read the masks' shapes (else only which frames have one) */
    int geometry;
} Gt;

#define RELEASE_STEP ((size_t)32 << 20)

/* Drop the pages of a read-only file mapping between G->released and p (whole pages, every
 * RELEASE_STEP bytes): the file's bytes already read do not stay resident while the arrays
 * grow; the kernel reads a page back from the file if it is touched again. */
static void release_behind(Gt *G, const unsigned char *p) {
    if (!G->release || (size_t)(p - G->released) < RELEASE_STEP) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t a = (uintptr_t)G->released & ~((uintptr_t)page - 1);
    uintptr_t b = (uintptr_t)p & ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
    G->released = (const unsigned char *)b;
}

/* iscrowd / ignore: an integer (any non-zero is true) or true / false. */
static int read_flag(Cur *c, unsigned char *out) {
    ws(c);
    if (c->p >= c->end) return 0;
    if (*c->p == 't' || *c->p == 'f') {
        *out = *c->p == 't';
        return *out ? word(c, "true", 4) : word(c, "false", 5);
    }
    int64_t v;
    if (!read_int(c, &v)) return 0;
    *out = v != 0;
    return 1;
}

static int put_i64(Bytes *b, int64_t v) { return bytes_put(b, &v, 8); }

static int parse_images(Cur *c, Gt *G) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (;;) {
        if (!lit(c, '{')) return 0;
        int64_t id = 0, h = 0, w = 0;
        int got_id = 0, got_h = 0, got_w = 0;
        if (!lit(c, '}'))
            for (;;) {
                const unsigned char *ks;
                size_t klen;
                if (!read_key(c, &ks, &klen)) return 0;
                if (KEY_IS(ks, klen, "id")) {
                    if (got_id++ || !read_int(c, &id)) return 0;
                } else if (KEY_IS(ks, klen, "height")) {
                    if (got_h++ || !read_int(c, &h)) return 0;
                } else if (KEY_IS(ks, klen, "width")) {
                    if (got_w++ || !read_int(c, &w)) return 0;
                } else if (!skip_value(c, 0))
                    return 0;
                if (lit(c, ',')) continue;
                if (!lit(c, '}')) return 0;
                break;
            }
        if (!got_id || !got_h || !got_w) return 0;
        if (put_i64(&G->img_id, id) < 0 || put_i64(&G->img_h, h) < 0 || put_i64(&G->img_w, w) < 0) return 0;
        G->n_img++;
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

/* A polygon list: [[x, y, ...], ...]; each polygon an even number (>= 6) of numbers within
 * MAX_COORDINATE. */
static int parse_polygons(Cur *c, Gt *G, int64_t *lo, int64_t *hi) {
    if (!lit(c, '[')) return 0;
    *lo = G->n_poly;
    for (;;) {
        if (!lit(c, '[')) return 0;
        int64_t k = 0;
        if (!lit(c, ']'))
            for (;;) {
                double v;
                if (!read_number(c, &v) || !(fabs(v) <= MAX_COORDINATE) || bytes_put(&G->coords, &v, 8) < 0) return 0;
                k++;
                if (lit(c, ',')) continue;
                if (!lit(c, ']')) return 0;
                break;
            }
        if (k < 6 || k % 2) return 0; /* fewer than 3 points: the gate names the error */
        G->n_coords += k;
        if (put_i64(&G->poly_end, G->n_coords) < 0) return 0;
        G->n_poly++;
        if (lit(c, ',')) continue;
        if (!lit(c, ']')) return 0;
        *hi = G->n_poly;
        return 1;
    }
}

/* An RLE: {"size": [h, w], "counts": "..." | [non-negative ints below 2^32]}. */
static int parse_rle(Cur *c, Gt *G, int *kind, int64_t *lo, int64_t *hi, int64_t *h, int64_t *w, int64_t *sum) {
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
            if (got_counts++) return 0;
            ws(c);
            if (c->p < c->end && *c->p == '"') {
                int64_t s, e;
                if (!read_counts(c, G->base, &s, &e)) return 0;
                *kind = SEG_STRING;
                *lo = (int64_t)G->chars.n;
                if (bytes_reserve(&G->chars, (size_t)(e - s)) < 0) return 0;
                for (int64_t p = s; p < e; p++) {
                    if (G->base[p] == '\\') p++; /* \\ \" \/: the byte itself */
                    G->chars.p[G->chars.n++] = (char)G->base[p];
                }
                *hi = (int64_t)G->chars.n;
            } else {
                if (!lit(c, '[')) return 0;
                *kind = SEG_COUNTS;
                *lo = G->n_ucounts;
                *sum = 0;
                if (lit(c, ']')) return 0; /* empty counts: left to the Python path */
                for (;;) {
                    uint u;
                    if (!read_count(c, sum, &u) || bytes_put(&G->ucounts, &u, 4) < 0) return 0;
                    G->n_ucounts++;
                    if (lit(c, ',')) continue;
                    if (!lit(c, ']')) return 0;
                    break;
                }
                *hi = G->n_ucounts;
            }
        } else
            return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, '}')) return 0;
        return got_size && got_counts;
    }
}

static int parse_annotations(Cur *c, Gt *G) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (;;) {
        if (!lit(c, '{')) return 0;
        int64_t id = 0, img = 0, cat = 0, lo = 0, hi = 0, h = -1, w = -1, sum = -1;
        double area = 0, bb[4] = {NAN, NAN, NAN, NAN};
        unsigned char crowd = 0, ignore = 0, kind = 0;
        int got_id = 0, got_img = 0, got_cat = 0, got_area = 0, got_crowd = 0, got_ignore = 0, got_bbox = 0, got_seg = 0;
        if (!lit(c, '}'))
            for (;;) {
                const unsigned char *ks;
                size_t klen;
                if (!read_key(c, &ks, &klen)) return 0;
                if (KEY_IS(ks, klen, "id")) {
                    if (got_id++ || !read_int(c, &id)) return 0;
                } else if (KEY_IS(ks, klen, "image_id")) {
                    if (got_img++ || !read_int(c, &img)) return 0;
                } else if (KEY_IS(ks, klen, "category_id")) {
                    if (got_cat++ || !read_int(c, &cat)) return 0;
                } else if (KEY_IS(ks, klen, "area")) {
                    if (got_area++ || !read_number(c, &area)) return 0;
                } else if (KEY_IS(ks, klen, "iscrowd")) {
                    if (got_crowd++ || !read_flag(c, &crowd)) return 0;
                } else if (KEY_IS(ks, klen, "ignore")) {
                    if (got_ignore++ || !read_flag(c, &ignore)) return 0;
                } else if (KEY_IS(ks, klen, "bbox")) {
                    /* null: a.get("bbox") is None, no box */
                    if (got_bbox++ || (!word(c, "null", 4) && !read_box(c, bb))) return 0;
                } else if (KEY_IS(ks, klen, "segmentation")) {
                    if (got_seg++) return 0;
                    if (word(c, "null", 4)) {
                        kind = SEG_NONE;
                    } else if (c->p < c->end && *c->p == '[') {
                        Cur peek = *c;
                        peek.p++;
                        if (lit(&peek, ']')) { /* [] */
                            *c = peek;
                            kind = SEG_NONE;
                            lo = 1;
                        } else {
                            kind = SEG_POLY;
                            if (!parse_polygons(c, G, &lo, &hi)) return 0;
                        }
                    } else {
                        int k = 0;
                        if (!parse_rle(c, G, &k, &lo, &hi, &h, &w, &sum)) return 0;
                        kind = (unsigned char)k;
                    }
                } else if (!skip_value(c, 0))
                    return 0;
                if (lit(c, ',')) continue;
                if (!lit(c, '}')) return 0;
                break;
            }
        if (!got_id || !got_img || !got_cat || !got_area) return 0;
        if (!got_seg) kind = SEG_NONE;
        int64_t hw[2] = {h, w};
        if (put_i64(&G->id, id) < 0 || put_i64(&G->image_id, img) < 0 || put_i64(&G->category_id, cat) < 0 ||
            bytes_put(&G->area, &area, 8) < 0 || bytes_put(&G->crowd, &crowd, 1) < 0 || bytes_put(&G->ignore, &ignore, 1) < 0 ||
            bytes_put(&G->bbox, bb, 32) < 0 || bytes_put(&G->kind, &kind, 1) < 0 || put_i64(&G->seg_lo, lo) < 0 ||
            put_i64(&G->seg_hi, hi) < 0 || bytes_put(&G->rle_hw, hw, 16) < 0 || put_i64(&G->rle_sum, sum) < 0)
            return 0;
        G->n_ann++;
        release_behind(G, c->p);
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

static int parse_coco(Cur *c, Gt *G) {
    if (!lit(c, '{')) return 0;
    int got_images = 0, got_anns = 0, got_cats = 0;
    if (lit(c, '}')) return 0;
    for (;;) {
        const unsigned char *ks;
        size_t klen;
        if (!read_key(c, &ks, &klen)) return 0;
        if (KEY_IS(ks, klen, "images")) {
            if (got_images++ || !parse_images(c, G)) return 0;
        } else if (KEY_IS(ks, klen, "annotations")) {
            if (got_anns++ || !parse_annotations(c, G)) return 0;
        } else if (KEY_IS(ks, klen, "categories")) {
            if (got_cats++) return 0;
            ws(c);
            G->cat_a = (int64_t)(c->p - G->base);
            if (!skip_value(c, 0)) return 0;
            G->cat_b = (int64_t)(c->p - G->base);
        } else if (!skip_value(c, 0))
            return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, '}')) return 0;
        break;
    }
    ws(c);
    return c->p == c->end && got_images && got_anns;
}

static void gt_free(Gt *G) {
    Bytes *all[] = {&G->img_id, &G->img_h, &G->img_w, &G->id, &G->image_id, &G->category_id, &G->area, &G->crowd, &G->ignore,
                    &G->bbox, &G->kind, &G->seg_lo, &G->seg_hi, &G->rle_hw, &G->rle_sum, &G->poly_end, &G->coords, &G->chars,
                    &G->ucounts, &G->vid_frames, &G->mask_ann, &G->mask_frame};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        free(all[i]->p);
        all[i]->p = NULL;
    }
}

/* Whether a buffer is a read-only file mapping (mmap.ACCESS_READ: shared, never written),
 * whose pages may be released once read (release_behind, release_file_pages). Any other
 * buffer is left alone: dropping pages of a private or anonymous one would lose its bytes. */
static int is_file_mapping(const Py_buffer *b) {
    return b->readonly && b->obj != NULL && b->len > 0 && strcmp(Py_TYPE(b->obj)->tp_name, "mmap.mmap") == 0;
}

/* The whole mapping, once parsed: the file and the arrays copied out of the parser's buffers
 * are not resident together. */
static void release_file_pages(const Py_buffer *b) {
    if (!is_file_mapping(b)) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t start = (uintptr_t)b->buf & ~((uintptr_t)page - 1);
    madvise((void *)start, (size_t)((uintptr_t)b->buf + (size_t)b->len - start), MADV_DONTNEED);
}

/* Move a Bytes into a bytes object (freeing it at once, so the two copies do not pile up). */
static PyObject *take(Bytes *b) {
    PyObject *o = bytes_obj(b);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    return o;
}

/* parse_coco(data) -> None | dict: n_images, n_annotations, categories (start, stop) of the
 * categories value in data ((-1, -1) when absent), and the bytes of
 *   img_id, img_height, img_width i64[n_images];
 *   id, image_id, category_id i64[n]; area f64[n]; iscrowd, ignore u8[n] (0/1);
 *   bbox f64[n,4] (NaN when absent or null); kind u8[n] (0 polygons, 1 compressed string,
 *   2 uncompressed counts, 3 none); seg_lo, seg_hi i64[n] (the annotation's polygons, chars
 *   or ucounts; for kind 3, seg_lo 0: missing or null, 1: []); rle_size i64[n,2] (-1 for polygons); rle_sum i64[n] (sum of uncompressed
 *   counts, -1 otherwise); poly_end i64[n_polys] (end of each polygon in coords);
 *   coords f64; chars (compressed counts, unescaped); ucounts u32. */
static PyObject *py_parse_coco(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    Gt G = {0};
    G.base = (const unsigned char *)data.buf;
    G.cat_a = G.cat_b = -1;
    G.release = is_file_mapping(&data);
    G.released = G.base;
    Cur c = {(const unsigned char *)data.buf, (const unsigned char *)data.buf + data.len};
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = parse_coco(&c, &G);
    Py_END_ALLOW_THREADS
    release_file_pages(&data);
    PyObject *ret = NULL;
    if (!ok) {
        ret = Py_None;
        Py_INCREF(ret);
    } else {
        ret = PyDict_New();
        struct {
            const char *name;
            Bytes *b;
        } items[] = {{"img_id", &G.img_id}, {"img_height", &G.img_h}, {"img_width", &G.img_w}, {"id", &G.id},
                     {"image_id", &G.image_id}, {"category_id", &G.category_id}, {"area", &G.area}, {"iscrowd", &G.crowd},
                     {"ignore", &G.ignore}, {"bbox", &G.bbox}, {"kind", &G.kind}, {"seg_lo", &G.seg_lo}, {"seg_hi", &G.seg_hi},
                     {"rle_size", &G.rle_hw}, {"rle_sum", &G.rle_sum}, {"poly_end", &G.poly_end}, {"coords", &G.coords},
                     {"chars", &G.chars}, {"ucounts", &G.ucounts}};
        if (!ret || dict_put(ret, "n_images", PyLong_FromLongLong(G.n_img)) < 0 ||
            dict_put(ret, "n_annotations", PyLong_FromLongLong(G.n_ann)) < 0 ||
            dict_put(ret, "categories", Py_BuildValue("(LL)", (long long)G.cat_a, (long long)G.cat_b)) < 0)
            goto fail;
        for (size_t i = 0; i < sizeof items / sizeof *items; i++)
            if (dict_put(ret, items[i].name, take(items[i].b)) < 0) goto fail;
        goto done;
    fail:
        Py_CLEAR(ret);
    }
done:
    gt_free(&G);
    PyBuffer_Release(&data);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* parse_ytvis: the masks of a YouTube-VIS file, for the scene statistics */

/* The videos: {"id": int, "height": int, "width": int, "length": int|null, "file_names":
 * [...], ...}; a video's frames are its length when that is a non-zero integer, else the
 * number of its file names (as scene.py reads them). */
static int parse_videos(Cur *c, Gt *G) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (;;) {
        if (!lit(c, '{')) return 0;
        int64_t id = 0, h = 0, w = 0, len = 0, names = 0;
        int got_id = 0, got_h = 0, got_w = 0, got_len = 0, got_names = 0;
        if (!lit(c, '}'))
            for (;;) {
                const unsigned char *ks;
                size_t klen;
                if (!read_key(c, &ks, &klen)) return 0;
                if (KEY_IS(ks, klen, "id")) {
                    if (got_id++ || !read_int(c, &id)) return 0;
                } else if (KEY_IS(ks, klen, "height")) {
                    if (got_h++ || !read_int(c, &h)) return 0;
                } else if (KEY_IS(ks, klen, "width")) {
                    if (got_w++ || !read_int(c, &w)) return 0;
                } else if (KEY_IS(ks, klen, "length")) {
                    if (got_len++) return 0;
                    ws(c);
                    if (!word(c, "null", 4) && (!read_int(c, &len) || len < 0)) return 0;
                } else if (KEY_IS(ks, klen, "file_names")) {
                    if (got_names++ || !lit(c, '[')) return 0;
                    if (!lit(c, ']'))
                        for (;;) {
                            if (!skip_value(c, 0)) return 0;
                            names++;
                            if (lit(c, ',')) continue;
                            if (!lit(c, ']')) return 0;
                            break;
                        }
                } else if (!skip_value(c, 0))
                    return 0;
                if (lit(c, ',')) continue;
                if (!lit(c, '}')) return 0;
                break;
            }
        if (!got_id || !got_h || !got_w) return 0;
        if (put_i64(&G->img_id, id) < 0 || put_i64(&G->img_h, h) < 0 || put_i64(&G->img_w, w) < 0 ||
            put_i64(&G->vid_frames, len ? len : names) < 0)
            return 0;
        G->n_img++;
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

/* One annotation's segmentations: [null | [] | polygons | RLE, ...], one per frame; each
 * non-empty one becomes a mask of annotation `ann` at its frame. */
static int parse_frame_masks(Cur *c, Gt *G, int64_t ann) {
    if (word(c, "null", 4)) return 1;
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (int64_t frame = 0;; frame++) {
        int64_t lo = 0, hi = 0, h = -1, w = -1, sum = -1;
        int kind = -1;
        if (word(c, "null", 4)) {
            /* no mask in this frame */
        } else if (c->p < c->end && (*c->p == '[' || (!G->geometry && *c->p == '{'))) {
            Cur peek = *c;
            peek.p++;
            if (lit(&peek, *c->p == '[' ? ']' : '}')) {
                *c = peek; /* [] (or {} when only frames are read): no mask in this frame */
            } else if (!G->geometry) {
                kind = SEG_POLY; /* a mask is there; its shape is not read */
                if (!skip_value(c, 0)) return 0;
            } else {
                kind = SEG_POLY;
                if (!parse_polygons(c, G, &lo, &hi)) return 0;
            }
        } else if (!parse_rle(c, G, &kind, &lo, &hi, &h, &w, &sum))
            return 0;
        if (kind >= 0) {
            unsigned char k = (unsigned char)kind;
            int64_t hw[2] = {h, w};
            if (put_i64(&G->mask_ann, ann) < 0 || put_i64(&G->mask_frame, frame) < 0 || bytes_put(&G->kind, &k, 1) < 0 ||
                put_i64(&G->seg_lo, lo) < 0 || put_i64(&G->seg_hi, hi) < 0 || bytes_put(&G->rle_hw, hw, 16) < 0 ||
                put_i64(&G->rle_sum, sum) < 0)
                return 0;
            G->n_mask++;
        }
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

/* The annotations (tracks): {"video_id": int, "category_id": int, "iscrowd": int|bool,
 * "segmentations": [...], ...}. */
static int parse_tracks(Cur *c, Gt *G) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (;;) {
        if (!lit(c, '{')) return 0;
        int64_t vid = 0, cat = 0;
        unsigned char crowd = 0;
        int got_vid = 0, got_cat = 0, got_crowd = 0, got_segs = 0;
        if (!lit(c, '}'))
            for (;;) {
                const unsigned char *ks;
                size_t klen;
                if (!read_key(c, &ks, &klen)) return 0;
                if (KEY_IS(ks, klen, "video_id")) {
                    if (got_vid++ || !read_int(c, &vid)) return 0;
                } else if (KEY_IS(ks, klen, "category_id")) {
                    if (got_cat++ || !read_int(c, &cat)) return 0;
                } else if (KEY_IS(ks, klen, "iscrowd")) {
                    if (got_crowd++ || !read_flag(c, &crowd)) return 0;
                } else if (KEY_IS(ks, klen, "segmentations")) {
                    if (got_segs++ || !parse_frame_masks(c, G, G->n_ann)) return 0;
                } else if (!skip_value(c, 0))
                    return 0;
                if (lit(c, ',')) continue;
                if (!lit(c, '}')) return 0;
                break;
            }
        if (!got_vid || !got_cat) return 0;
        if (put_i64(&G->image_id, vid) < 0 || put_i64(&G->category_id, cat) < 0 || bytes_put(&G->crowd, &crowd, 1) < 0) return 0;
        G->n_ann++;
        release_behind(G, c->p);
        if (lit(c, ',')) continue;
        return lit(c, ']');
    }
}

/* parse_ytvis(data, geometry=True) -> None | dict: n_videos, n_annotations, n_masks, and the bytes of
 *   video_id, video_height, video_width, video_frames i64[V];
 *   ann_video, ann_category i64[A]; ann_crowd u8[A] (iscrowd, 0/1);
 *   mask_ann, mask_frame i64[M] (each non-empty segmentation: its annotation and frame);
 *   kind u8[M], seg_lo, seg_hi i64[M], rle_size i64[M,2], rle_sum i64[M] (as parse_coco's,
 *   kinds 0-2 only); poly_end, coords, chars, ucounts (the geometry, as parse_coco's).
 * Without geometry, the masks' shapes are skipped, not read (kind 0, no geometry): only
 * which frames hold one. Anything unusual makes it return None: the caller streams the
 * file instead. */
static int parse_ytvis(Cur *c, Gt *G) {
    if (!lit(c, '{')) return 0;
    int got_videos = 0, got_anns = 0;
    if (lit(c, '}')) return 0;
    for (;;) {
        const unsigned char *ks;
        size_t klen;
        if (!read_key(c, &ks, &klen)) return 0;
        if (KEY_IS(ks, klen, "videos")) {
            if (got_videos++ || !parse_videos(c, G)) return 0;
        } else if (KEY_IS(ks, klen, "annotations")) {
            if (got_anns++ || !parse_tracks(c, G)) return 0;
        } else if (!skip_value(c, 0))
            return 0;
        if (lit(c, ',')) continue;
        if (!lit(c, '}')) return 0;
        break;
    }
    ws(c);
    return c->p == c->end && got_videos && got_anns;
}

static PyObject *py_parse_ytvis(PyObject *self, PyObject *args) {
    Py_buffer data;
    int geometry = 1;
    if (!PyArg_ParseTuple(args, "y*|p", &data, &geometry)) return NULL;
    Gt G;
    memset(&G, 0, sizeof G);
    G.geometry = geometry;
    G.base = (const unsigned char *)data.buf;
    G.cat_a = G.cat_b = -1;
    G.release = is_file_mapping(&data);
    G.released = G.base;
    Cur c = {(const unsigned char *)data.buf, (const unsigned char *)data.buf + data.len};
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = parse_ytvis(&c, &G);
    Py_END_ALLOW_THREADS
    release_file_pages(&data);
    PyObject *ret = NULL;
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
    } items[] = {{"video_id", &G.img_id}, {"video_height", &G.img_h}, {"video_width", &G.img_w}, {"video_frames", &G.vid_frames},
                 {"ann_video", &G.image_id}, {"ann_category", &G.category_id}, {"ann_crowd", &G.crowd}, {"mask_ann", &G.mask_ann},
                 {"mask_frame", &G.mask_frame}, {"kind", &G.kind}, {"seg_lo", &G.seg_lo}, {"seg_hi", &G.seg_hi},
                 {"rle_size", &G.rle_hw}, {"rle_sum", &G.rle_sum}, {"poly_end", &G.poly_end}, {"coords", &G.coords},
                 {"chars", &G.chars}, {"ucounts", &G.ucounts}};
    if (dict_put(ret, "n_videos", PyLong_FromLongLong(G.n_img)) < 0 || dict_put(ret, "n_annotations", PyLong_FromLongLong(G.n_ann)) < 0 ||
        dict_put(ret, "n_masks", PyLong_FromLongLong(G.n_mask)) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof items / sizeof *items; i++)
        if (dict_put(ret, items[i].name, take(items[i].b)) < 0) goto fail;
    goto done;
fail:
    Py_CLEAR(ret);
done:
    gt_free(&G);
    PyBuffer_Release(&data);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* touching_runs: the scene's occlusion test (quality/engine/scene.py) on decoded runs */

typedef struct {
    int64_t col, r0, r1;
} Piece;

/* Mask k's foreground runs (counts[offsets[k]:offsets[k+1]], column-major, from
 * background) cut at column boundaries into pieces (column, first row, end row), in order. */
static int64_t column_pieces(const int64_t *counts, int64_t lo, int64_t hi, int64_t h, Piece **out, size_t *cap) {
    int64_t n = 0, pos = 0;
    for (int64_t r = lo; r < hi; r++) {
        int64_t s = pos, e = pos + counts[r];
        pos = e;
        if (((r - lo) & 1) == 0 || e <= s) continue;
        for (int64_t col = s / h; col <= (e - 1) / h; col++) {
            Piece *p = grow(*out, cap, (size_t)n + 1, sizeof(Piece));
            if (!p) return -1;
            *out = p;
            int64_t r0 = s - col * h, r1 = e - col * h;
            p[n].col = col;
            p[n].r0 = r0 > 0 ? r0 : 0;
            p[n].r1 = r1 < h ? r1 : h;
            n++;
        }
    }
    return n;
}

/* touching_runs(counts i64, offsets i64[K+1], heights i64[K], widths i64[K], a i64[P], b i64[P],
 * out u8[P] out): out[p] = 1 when mask a[p] grown by one pixel (3x3) meets mask b[p]: a piece
 * of one at column c and a piece of the other at a column within one of c whose rows overlap
 * once grown by one. Everything is checked before any pair is looked at: indices, sizes
 * (positive), counts (non-negative) and each mask's runs summing to its height x width (runs
 * past the raster would make pieces in columns it does not have, as many as the runs say). */
static PyObject *py_touching_runs(PyObject *self, PyObject *args) {
    Py_buffer cb, ob, hb, wb, ab, bb, outb;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*w*", &cb, &ob, &hb, &wb, &ab, &bb, &outb)) return NULL;
    PyObject *ret = NULL;
    Piece *A = NULL, *B = NULL;
    size_t ca = 0, cbp = 0;
    Py_ssize_t nc = cb.len / 8, K = hb.len / 8, P = ab.len / 8;
    const int64_t *counts = cb.buf, *off = ob.buf, *hs = hb.buf, *ws_ = wb.buf, *ia = ab.buf, *ib = bb.buf;
    unsigned char *out = outb.buf;
    if (ob.len != (K + 1) * 8 || wb.len != K * 8 || bb.len != P * 8 || outb.len != P || cb.len % 8 || hb.len % 8 || ab.len % 8) {
        PyErr_SetString(PyExc_ValueError, "touching_runs: array sizes do not match");
        goto done;
    }
    for (Py_ssize_t k = 0; k < K; k++)
        if (off[k] < 0 || off[k] > off[k + 1] || off[k + 1] > nc || hs[k] <= 0 || ws_[k] <= 0 || hs[k] > INT64_MAX / ws_[k]) {
            PyErr_SetString(PyExc_ValueError, "touching_runs: bad offsets or sizes");
            goto done;
        }
    for (Py_ssize_t i = 0; i < nc; i++)
        if (counts[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "touching_runs: negative run");
            goto done;
        }
    for (Py_ssize_t k = 0; k < K; k++) {
        /* a run longer than the pixels left is refused before it is added: no overflow */
        const int64_t pixels = hs[k] * ws_[k];
        int64_t sum = 0, r = off[k];
        for (; r < off[k + 1] && counts[r] <= pixels - sum; r++) sum += counts[r];
        if (r < off[k + 1] || sum != pixels) {
            PyErr_Format(PyExc_ValueError, "touching_runs: the runs of mask %zd do not cover its %lld x %lld pixels", k,
                         (long long)hs[k], (long long)ws_[k]);
            goto done;
        }
    }
    for (Py_ssize_t p = 0; p < P; p++)
        if (ia[p] < 0 || ia[p] >= K || ib[p] < 0 || ib[p] >= K) {
            PyErr_SetString(PyExc_ValueError, "touching_runs: pair index out of range");
            goto done;
        }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p = 0; p < P && !failed; p++) {
        int64_t x = ia[p], y = ib[p];
        int64_t na = column_pieces(counts, off[x], off[x + 1], hs[x], &A, &ca);
        int64_t nb = column_pieces(counts, off[y], off[y + 1], hs[y], &B, &cbp);
        if (na < 0 || nb < 0) {
            failed = 1;
            break;
        }
        unsigned char hit = 0;
        int64_t first = 0;
        for (int64_t u = 0; u < na && !hit; u++) {
            while (first < nb && B[first].col < A[u].col - 1) first++;
            for (int64_t v = first; v < nb && B[v].col <= A[u].col + 1; v++)
                if (A[u].r0 <= B[v].r1 && B[v].r0 <= A[u].r1) {
                    hit = 1;
                    break;
                }
        }
        out[p] = hit;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    free(A);
    free(B);
    PyBuffer_Release(&cb);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&outb);
    return ret;
}

/* encode_masks(kind u8[N], seg_lo i64[N], seg_hi i64[N], heights i64[N], widths i64[N],
 *              poly_end i64[P], coords f64[C], chars bytes, ucounts u32[U], offsets i64[N+1] out
 *              [, area i64[N] out, box f64[N,4] out])
 *   -> bytes: the compressed RLE strings of every annotation, concatenated; offsets[i] is
 * where string i starts (masks.pack_counts). Heights and widths are the image's. With area
 * and box: the area and box (box_area's) of every string written from polygons or
 * uncompressed counts, from its runs; strings copied from the file (kind 1), and counts on
 * an image of a size the rasterizer refuses, are left to the caller's check (area -1). */
static PyObject *py_encode_masks(PyObject *self, PyObject *args) {
    Py_buffer kb, lob, hib, hb, wb, peb, cb, chb, ub, ob, ab = {0}, bxb = {0};
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*w*|w*w*", &kb, &lob, &hib, &hb, &wb, &peb, &cb, &chb, &ub, &ob, &ab, &bxb)) return NULL;
    const int want_box = ab.buf != NULL;
    PyObject *ret = NULL;
    PolyScratch S = {0};
    uint *acc = NULL, *one = NULL, *tmp = NULL;
    size_t cacc = 0, cone = 0, ctmp = 0;
    Bytes out = {0};
    Py_ssize_t n = kb.len, P = peb.len / 8, C = cb.len / 8, U = ub.len / 4;
    if (nb_check(&lob, n, 8, "seg_lo") < 0 || nb_check(&hib, n, 8, "seg_hi") < 0 || nb_check(&hb, n, 8, "heights") < 0 ||
        nb_check(&wb, n, 8, "widths") < 0 || nb_check(&peb, P, 8, "poly_end") < 0 || nb_check(&cb, C, 8, "coords") < 0 ||
        nb_check(&ub, U, 4, "ucounts") < 0 || nb_check(&ob, n + 1, 8, "offsets") < 0 ||
        (want_box && (nb_check(&ab, n, 8, "area") < 0 || nb_check(&bxb, n * 4, 8, "box") < 0)))
        goto done;
    int64_t *area_out = ab.buf;
    double *box_out = bxb.buf;
    const unsigned char *kind = kb.buf;
    const int64_t *lo = lob.buf, *hi = hib.buf, *hs = hb.buf, *wsz = wb.buf, *pe = peb.buf;
    const double *coords = cb.buf;
    const unsigned char *chars = chb.buf;
    const uint *uc = ub.buf;
    int64_t *off = ob.buf;
    for (Py_ssize_t q = 0; q < P; q++) {
        int64_t a = q ? pe[q - 1] : 0;
        if (pe[q] < a || pe[q] > C || (pe[q] - a) < 6 || (pe[q] - a) % 2) {
            PyErr_Format(PyExc_ValueError, "polygon %zd malformed", q);
            goto done;
        }
    }
    for (Py_ssize_t e = 0; e < C; e++)
        if (!(fabs(coords[e]) <= MAX_COORDINATE)) {
            PyErr_Format(PyExc_ValueError, "coordinate %zd out of range", e);
            goto done;
        }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t limit = kind[i] == SEG_POLY ? P : kind[i] == SEG_STRING ? chb.len : kind[i] == SEG_COUNTS ? U : -1;
        if (limit < 0 || lo[i] < 0 || hi[i] < lo[i] || hi[i] > limit || (kind[i] == SEG_POLY && hi[i] == lo[i]) || hs[i] < 0 ||
            wsz[i] < 0 || (kind[i] == SEG_POLY && !raster_size_ok((uint64_t)hs[i], (uint64_t)wsz[i]))) {
            PyErr_Format(PyExc_ValueError, "segmentation %zd out of range", i);
            goto done;
        }
    }
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !err; i++) {
        off[i] = (int64_t)out.n;
        if (kind[i] == SEG_STRING) {
            if (bytes_put(&out, chars + lo[i], (size_t)(hi[i] - lo[i])) < 0) err = 1;
            if (want_box) {
                area_out[i] = -1;
                box_out[4 * i] = box_out[4 * i + 1] = box_out[4 * i + 2] = box_out[4 * i + 3] = 0;
            }
        } else if (kind[i] == SEG_COUNTS) {
            if (string_encode(uc + lo[i], hi[i] - lo[i], &out) < 0) err = 1;
            if (want_box) {
                if (raster_size_ok((uint64_t)hs[i], (uint64_t)wsz[i]))
                    runs_box_area(uc + lo[i], hi[i] - lo[i], (uint64_t)hs[i], (uint64_t)wsz[i], box_out + 4 * i, area_out + i);
                else /* the caller's check names the size */
                    area_out[i] = -1;
            }
        } else {
            int64_t macc = 0;
            for (int64_t q = lo[i]; q < hi[i]; q++) {
                int64_t a = q ? pe[q - 1] : 0;
                int64_t m = fr_poly(&S, coords + a, (pe[q] - a) / 2, (size_t)hs[i], (size_t)wsz[i], q == lo[i] ? &acc : &one,
                                    q == lo[i] ? &cacc : &cone);
                if (m < 0) { err = m == -2 ? 2 : 1; break; }
                if (q == lo[i]) macc = m;
                else {
                    int64_t mm = merge_union(acc, macc, one, m, &tmp, &ctmp);
                    if (mm < 0) { err = mm == -2 ? 2 : 1; break; }
                    uint *t = acc; acc = tmp; tmp = t;
                    size_t tc = cacc; cacc = ctmp; ctmp = tc;
                    macc = mm;
                }
            }
            if (!err && string_encode(acc, macc, &out) < 0) err = 1;
            if (!err && want_box) runs_box_area(acc, macc, (uint64_t)hs[i], (uint64_t)wsz[i], box_out + 4 * i, area_out + i);
        }
    }
    off[n] = (int64_t)out.n;
    Py_END_ALLOW_THREADS
    if (err == 2) PyErr_SetString(PyExc_ValueError, "a polygon outside the rasterizer's bounds");
    else if (err) PyErr_NoMemory();
    else ret = bytes_obj(&out);
done:
    free(S.x); free(S.y); free(S.u); free(S.v); free(S.cnt); free(S.yb); free(S.a); free(S.b);
    free(acc); free(one); free(tmp); free(out.p);
    PyBuffer_Release(&kb); PyBuffer_Release(&lob); PyBuffer_Release(&hib); PyBuffer_Release(&hb); PyBuffer_Release(&wb);
    PyBuffer_Release(&peb); PyBuffer_Release(&cb); PyBuffer_Release(&chb); PyBuffer_Release(&ub); PyBuffer_Release(&ob);
    if (ab.buf) PyBuffer_Release(&ab);
    if (bxb.buf) PyBuffer_Release(&bxb);
    return ret;
}

PyMethodDef coco_gt_methods[] = {
    {"parse_coco", py_parse_coco, METH_VARARGS, "Parse a COCO reference file into flat arrays (None: use the generic path)."},
    {"touching_runs", py_touching_runs, METH_VARARGS, "Whether each pair of masks (decoded runs) overlaps or touches (scene occlusion)."},
    {"parse_ytvis", py_parse_ytvis, METH_VARARGS, "Parse a YouTube-VIS file's videos and masks into flat arrays (None: stream it)."},
    {"encode_masks", py_encode_masks, METH_VARARGS, "Compressed RLE strings of parsed reference geometry (COCO.annToRLE)."},
    {NULL, NULL, 0, NULL},
};
