#ifndef QUALITY_NATIVE_H
#define QUALITY_NATIVE_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Bumped whenever a function's signature changes; native.py refuses a stale build. */
#define NATIVE_ABI 2

/* Polygon coordinates beyond this many pixels are bad input (gate.MAX_COORDINATE): the
 * rasterizer walks every scaled boundary point, and its int arithmetic would overflow. */
#define MAX_COORDINATE 1e6

extern PyMethodDef rle_methods[];
extern PyMethodDef evalcore_methods[];
extern PyMethodDef coco_gt_methods[];
extern PyMethodDef validate_methods[];

/* Buffer helpers: check that a Py_buffer holds exactly n items of itemsize bytes. */
static inline int nb_check(Py_buffer *b, Py_ssize_t n, Py_ssize_t itemsize, const char *name) {
    if (b->len != n * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name, n * itemsize, b->len);
        return -1;
    }
    return 0;
}
#endif
