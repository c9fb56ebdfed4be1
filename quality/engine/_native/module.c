/* quality.engine._native._kernels: the engine's compiled kernels (CPython C API, no numpy headers).
 *
 * Arrays cross the boundary through the buffer protocol: Python allocates numpy arrays of
 * the right dtype and size and passes them in ("y*" read-only, "w*" writable); the kernels
 * only read and fill them. Every function has a numpy/pycocotools equivalent in the
 * Python code, which stays the fallback when this module is not built (see native.py).
 *
 * rle.c:      COCO RLE strings, polygon rasterization, pair intersections, results parser.
 * evalcore.c: greedy COCO matching and accumulation (precision / recall / scores).
 * coco_gt.c:  reference-file reader and the rasterization of what it read.
 * validate.c: the compiled pass of dataset validation (accepts a file or declines it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "native.h"

/* The fingerprint of the sources this library was compiled from (sources.py; setup.py
 * passes it). native.py loads the library only when it equals that of the sources beside it. */
#ifndef NATIVE_SOURCE_SHA256
#error "NATIVE_SOURCE_SHA256 is undefined: build the kernels with pip install (setup.py)"
#endif

static PyMethodDef all_methods[64];

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Compiled kernels of the quality engine.", -1, all_methods,
};

PyMODINIT_FUNC PyInit__kernels(void) {
    PyMethodDef *tables[] = {rle_methods, evalcore_methods, coco_gt_methods, validate_methods, NULL};
    int n = 0;
    for (int t = 0; tables[t]; t++)
        for (PyMethodDef *m = tables[t]; m->ml_name; m++) {
            if (n >= 63) {
                PyErr_SetString(PyExc_RuntimeError, "too many native methods");
                return NULL;
            }
            all_methods[n++] = *m;
        }
    all_methods[n] = (PyMethodDef){NULL, NULL, 0, NULL};
    PyObject *mod = PyModule_Create(&native_module);
    if (mod && (PyModule_AddIntConstant(mod, "ABI", NATIVE_ABI) < 0 ||
                PyModule_AddStringConstant(mod, "SOURCE_SHA256", NATIVE_SOURCE_SHA256) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
