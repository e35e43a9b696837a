/* reelforge.media._fused: per-pixel passes that OpenCV can only do as two.
 *
 * gain_offset(src, gain, offset, dst): dst = src * gain / 255 + offset, on uint8 planes,
 * rounded to nearest and saturated: exactly what cv2.multiply(src, gain, scale=1/255)
 * then cv2.add(offset) give, in one pass instead of two. See media/fused.py.
 *
 * Optional: where this does not build (no C compiler), fused.py does the same with
 * OpenCV. On x86-64 with GCC the loop is also built for AVX2 and picked at load time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif

MULTIVERSION
static void gain_offset_rows(const uint8_t *src, Py_ssize_t src_step, const uint8_t *gain,
                             Py_ssize_t gain_step, const uint8_t *offset,
                             Py_ssize_t offset_step, uint8_t *dst, Py_ssize_t dst_step,
                             Py_ssize_t width, Py_ssize_t height)
{
    for (Py_ssize_t y = 0; y < height; y++) {
        const uint8_t *s = src + y * src_step, *g = gain + y * gain_step;
        const uint8_t *o = offset + y * offset_step;
        uint8_t *d = dst + y * dst_step;
        for (Py_ssize_t x = 0; x < width; x++) {
            /* round(s * g / 255), exactly: s * g / 255 never ends in a half, so no ties */
            uint16_t v = (uint16_t)(s[x] * g[x] + 128);
            uint16_t r = (uint16_t)(((v + (v >> 8)) >> 8) + o[x]);
            d[x] = r > 255 ? 255 : (uint8_t)r;
        }
    }
}

/* A 2-D uint8 buffer whose rows are contiguous; false (with ValueError) otherwise. */
static int plane(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_RECORDS : PyBUF_RECORDS_RO) < 0)
        return 0;
    if (view->ndim != 2 || view->itemsize != 1 || view->strides[1] != 1
        || (view->format != NULL && strcmp(view->format, "B") != 0)) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a 2-D uint8 array with contiguous rows", name);
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

static PyObject *gain_offset(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    Py_buffer views[4];
    static const char *names[4] = {"src", "gain", "offset", "dst"};
    int got = 0;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OOOO:gain_offset", &objs[0], &objs[1], &objs[2], &objs[3]))
        return NULL;
    for (; got < 4; got++)
        if (!plane(objs[got], &views[got], got == 3, names[got]))
            goto done;
    for (int k = 0; k < 3; k++) {
        if (views[k].shape[0] != views[3].shape[0] || views[k].shape[1] != views[3].shape[1]) {
            PyErr_Format(PyExc_ValueError, "%s is %zdx%zd, dst is %zdx%zd", names[k],
                         views[k].shape[1], views[k].shape[0], views[3].shape[1],
                         views[3].shape[0]);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    gain_offset_rows(views[0].buf, views[0].strides[0], views[1].buf, views[1].strides[0],
                     views[2].buf, views[2].strides[0], views[3].buf, views[3].strides[0],
                     views[3].shape[1], views[3].shape[0]);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    while (got-- > 0)
        PyBuffer_Release(&views[got]);
    return result;
}

static PyMethodDef methods[] = {
    {"gain_offset", gain_offset, METH_VARARGS,
     "gain_offset(src, gain, offset, dst): dst = src * gain / 255 + offset (uint8 planes "
     "of one shape, rounded, saturated; dst may be src)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", NULL, 0, methods};

PyMODINIT_FUNC PyInit__fused(void) { return PyModule_Create(&module); }
