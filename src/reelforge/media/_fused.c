/* reelforge.media._fused: passes of the frame loop that OpenCV can only do as several.
 *
 * gain_offset(src, gain, offset, dst): dst = src * gain / 255 + offset, on uint8 planes,
 * rounded to nearest and saturated: exactly what cv2.multiply(src, gain, scale=1/255)
 * then cv2.add(offset) give, in one pass instead of two.
 *
 * resize_view(...): a window of cv2.resize(region, None, fx=, fy=, INTER_LINEAR) of a
 * uint8 plane, written straight into dst (optionally through gain_offset), with
 * OpenCV's own fixed-point arithmetic, so the bytes are OpenCV's. See media/fused.py.
 *
 * Optional: where this does not build (no C compiler), fused.py does the same with
 * OpenCV. On x86-64 with GCC the loops are also built for AVX2 and picked at load time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif

/* round(s * g / 255) + o, saturated. s * g / 255 never ends in a half: no ties. */
static inline uint8_t gain_offset_px(unsigned s, unsigned g, unsigned o)
{
    uint16_t v = (uint16_t)(s * g + 128);
    uint16_t r = (uint16_t)(((v + (v >> 8)) >> 8) + o);
    return r > 255 ? 255 : (uint8_t)r;
}

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
        for (Py_ssize_t x = 0; x < width; x++)
            d[x] = gain_offset_px(s[x], g[x], o[x]);
    }
}

/* ---- resize_view: OpenCV's INTER_LINEAR for uint8, one channel (imgproc/src/resize.cpp,
 * resizeGeneric_ with HResizeLinear and VResizeLinear<uchar, int, short, ...>).
 * Weights are 11-bit fixed point; a row is first resampled across (int32, weight 2048),
 * then two such rows are blended down as OpenCV's SIMD and scalar paths both do:
 * ((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16), rounded >> 2. */

#define COEF_SCALE 2048

/* One axis's sampling, for output pixels first .. first + count - 1: source pixel
 * ofs[i] and the one after, weighted coef[2i] and coef[2i + 1]. Computed as OpenCV does,
 * float for float (the build turns off FMA contraction, which would round differently).
 * Columns are clamped to the source with the weight all on the edge pixel; rows are not
 * (their indices are clamped where they are read), as in OpenCV. */
static void linear_table(Py_ssize_t size, double inv_scale, Py_ssize_t first,
                         Py_ssize_t count, int clamp, int32_t *ofs, int16_t *coef)
{
    double scale = 1.0 / inv_scale;
    for (Py_ssize_t i = 0; i < count; i++) {
        float f = (float)(((double)(first + i) + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (clamp && s < 0) {
            s = 0;
            f = 0.f;
        }
        if (clamp && s >= size - 1) {
            s = (int)size - 1;
            f = 0.f;
        }
        ofs[i] = s;
        coef[2 * i] = (int16_t)lrintf((1.f - f) * COEF_SCALE);
        coef[2 * i + 1] = (int16_t)lrintf(f * COEF_SCALE);
    }
}

/* The horizontal pass over one source row, outputs from .. n - 1. */
static void across_scalar(const uint8_t *row, Py_ssize_t last, const int32_t *ofs,
                          const int16_t *coef, Py_ssize_t from, Py_ssize_t n, int32_t *out)
{
    for (Py_ssize_t i = from; i < n; i++) {
        int32_t o = ofs[i], o1 = o < last ? o + 1 : o;
        out[i] = row[o] * coef[2 * i] + row[o1] * coef[2 * i + 1];
    }
}

/* The vertical pass: two horizontal rows blended into output pixels from .. n - 1,
 * through the vignette's gain and offset where given. */
MULTIVERSION
static void down_rows(const int32_t *r0, const int32_t *r1, int b0, int b1,
                      const uint8_t *gain, const uint8_t *offset, uint8_t *dst,
                      Py_ssize_t from, Py_ssize_t n)
{
    for (Py_ssize_t i = from; i < n; i++) {
        unsigned v = (unsigned)((((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16)
                                 + 2) >> 2);
        dst[i] = gain == NULL ? (uint8_t)v : gain_offset_px(v, gain[i], offset[i]);
    }
}

#ifdef HAVE_AVX2_PATH
static int have_avx2;

/* The horizontal pass without gathers: each group of four outputs reads its pixels
 * from the 16 bytes at the group's first offset, picked out as int16 pairs by a byte
 * shuffle. shuffle_masks makes the shuffles (32 bytes per eight outputs) and returns
 * how many leading outputs, a multiple of eight, they serve: it stops at a group whose
 * pixels spread over more than 16 bytes (a shrink by more than four) or whose 16
 * bytes would leave the row (``avail`` bytes from the region's left edge). */
static Py_ssize_t shuffle_masks(const int32_t *ofs, Py_ssize_t n, Py_ssize_t avail,
                                uint8_t *masks)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int half = 0; half < 2; half++) {
            int32_t base = ofs[i + 4 * half];
            if (base + 16 > avail || ofs[i + 4 * half + 3] - base + 1 > 15)
                return i;
            for (int k = 0; k < 4; k++) {
                uint8_t *m = masks + 4 * i + 16 * half + 4 * k;
                uint8_t d = (uint8_t)(ofs[i + 4 * half + k] - base);
                m[0] = d;
                m[1] = 0x80; /* zero: the pixel's high byte */
                m[2] = (uint8_t)(d + 1);
                m[3] = 0x80;
            }
        }
    }
    return i;
}

__attribute__((target("avx2")))
static void across_avx2(const uint8_t *row, const int32_t *ofs, const int16_t *coef,
                        const uint8_t *masks, Py_ssize_t count, int32_t *out)
{
    for (Py_ssize_t i = 0; i < count; i += 8) {
        __m256i px = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(row + ofs[i]))),
            _mm_loadu_si128((const __m128i *)(row + ofs[i + 4])), 1);
        __m256i pairs = _mm256_shuffle_epi8(px, _mm256_loadu_si256((const __m256i *)(masks + 4 * i)));
        __m256i w = _mm256_loadu_si256((const __m256i *)(coef + 2 * i));
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_madd_epi16(pairs, w));
    }
}

/* down_rows, sixteen pixels at a time in int16 (OpenCV's own SIMD arithmetic);
 * returns how many it did. */
__attribute__((target("avx2")))
static Py_ssize_t down_avx2(const int32_t *r0, const int32_t *r1, int b0, int b1,
                            const uint8_t *gain, const uint8_t *offset, uint8_t *dst,
                            Py_ssize_t n)
{
    const __m256i w0 = _mm256_set1_epi16((short)b0), w1 = _mm256_set1_epi16((short)b1);
    const __m256i two = _mm256_set1_epi16(2), half = _mm256_set1_epi16(128);
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_packs_epi32(
            _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(r0 + i)), 4),
            _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(r0 + i + 8)), 4));
        __m256i b = _mm256_packs_epi32(
            _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(r1 + i)), 4),
            _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(r1 + i + 8)), 4));
        __m256i v = _mm256_add_epi16(_mm256_mulhi_epi16(a, w0), _mm256_mulhi_epi16(b, w1));
        v = _mm256_srai_epi16(_mm256_add_epi16(v, two), 2);
        v = _mm256_permute4x64_epi64(v, 0xD8); /* the packs' lane order back to 0..15 */
        if (gain != NULL) {
            __m256i g = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(gain + i)));
            __m256i o = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(offset + i)));
            __m256i t = _mm256_add_epi16(_mm256_mullo_epi16(v, g), half);
            t = _mm256_srli_epi16(_mm256_add_epi16(t, _mm256_srli_epi16(t, 8)), 8);
            v = _mm256_add_epi16(t, o); /* up to 510: the pack below saturates */
        }
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm_packus_epi16(_mm256_castsi256_si128(v),
                                          _mm256_extracti128_si256(v, 1)));
    }
    return i;
}
#endif

typedef struct {
    const uint8_t *plane;      /* the source plane ... */
    Py_ssize_t step, width;    /* ... its row stride and width */
    Py_ssize_t x0, y0, rw, rh; /* the region that cv2.resize would see */
    double fx, fy;
    Py_ssize_t skip_x, skip_y; /* the window of its output that lands in dst */
    uint8_t *dst;
    Py_ssize_t dst_step, out_w, out_h;
    const uint8_t *gain, *offset; /* NULL, or dst-shaped planes */
    Py_ssize_t gain_step, offset_step;
    int copy; /* the resize would keep the region's size: OpenCV copies it */
} ResizeJob;

/* The scratch memory resize_window needs for an output width of n. */
#define RESIZE_WORK(n) ((size_t)(n) * (3 * sizeof(int32_t) + 2 * sizeof(int16_t) + 4))

/* The horizontal pass of region row r into out: the first ``fast`` outputs by
 * across_avx2 (0 without AVX2), the rest one by one. */
static void across(const ResizeJob *job, Py_ssize_t r, const int32_t *ofs,
                   const int16_t *coef, const uint8_t *masks, Py_ssize_t fast, int32_t *out)
{
    const uint8_t *row = job->plane + (job->y0 + r) * job->step + job->x0;
#ifdef HAVE_AVX2_PATH
    if (fast > 0)
        across_avx2(row, ofs, coef, masks, fast, out);
#else
    (void)masks;
#endif
    across_scalar(row, job->rw - 1, ofs, coef, fast, job->out_w, out);
}

/* The window of output rows j of job into dst, from the horizontal rows r0 and r1. */
static void down(const ResizeJob *job, Py_ssize_t j, const int32_t *r0, const int32_t *r1,
                 const int16_t *beta)
{
    const uint8_t *gain = job->gain ? job->gain + j * job->gain_step : NULL;
    const uint8_t *offset = job->offset ? job->offset + j * job->offset_step : NULL;
    uint8_t *dst = job->dst + j * job->dst_step;
    Py_ssize_t done = 0;
#ifdef HAVE_AVX2_PATH
    if (have_avx2)
        done = down_avx2(r0, r1, beta[0], beta[1], gain, offset, dst, job->out_w);
#endif
    down_rows(r0, r1, beta[0], beta[1], gain, offset, dst, done, job->out_w);
}

/* Runs job with RESIZE_WORK(out_w) bytes of scratch memory at work; no Python calls,
 * so it runs without the GIL. */
static void resize_window(const ResizeJob *job, void *work)
{
    Py_ssize_t n = job->out_w, fast = 0;
    int32_t *ofs = work, *rows[2] = {ofs + n, ofs + 2 * n};
    int16_t *coef = (int16_t *)(ofs + 3 * n);
    uint8_t *masks = (uint8_t *)(coef + 2 * n);
    Py_ssize_t held[2] = {-1, -1}; /* the region rows in rows[0], rows[1] */
    int32_t y;
    int16_t beta[2];

    if (job->copy) { /* cv2.resize copies a region whose size it would not change */
        for (Py_ssize_t j = 0; j < job->out_h; j++) {
            const uint8_t *row = job->plane + (job->y0 + job->skip_y + j) * job->step
                                 + job->x0 + job->skip_x;
            if (job->gain != NULL)
                gain_offset_rows(row, 0, job->gain + j * job->gain_step, 0,
                                 job->offset + j * job->offset_step, 0,
                                 job->dst + j * job->dst_step, 0, n, 1);
            else
                memcpy(job->dst + j * job->dst_step, row, (size_t)n);
        }
        return;
    }
    linear_table(job->rw, job->fx, job->skip_x, n, 1, ofs, coef);
#ifdef HAVE_AVX2_PATH
    if (have_avx2)
        fast = shuffle_masks(ofs, n, job->width - job->x0, masks);
#endif
    for (Py_ssize_t j = 0; j < job->out_h; j++) {
        linear_table(job->rh, job->fy, job->skip_y + j, 1, 0, &y, beta);
        Py_ssize_t r0 = y < 0 ? 0 : (y >= job->rh ? job->rh - 1 : y);
        Py_ssize_t r1 = y + 1 < 0 ? 0 : (y + 1 >= job->rh ? job->rh - 1 : y + 1);
        if (held[0] != r0) {
            if (held[1] == r0) { /* moving down: the lower row becomes the upper */
                int32_t *t = rows[0];
                rows[0] = rows[1];
                rows[1] = t;
                held[1] = -1;
            } else {
                across(job, r0, ofs, coef, masks, fast, rows[0]);
            }
            held[0] = r0;
        }
        if (r1 != r0 && held[1] != r1) {
            across(job, r1, ofs, coef, masks, fast, rows[1]);
            held[1] = r1;
        }
        down(job, j, rows[0], r1 == r0 ? rows[0] : rows[1], beta);
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

static PyObject *resize_view(PyObject *self, PyObject *args)
{
    PyObject *objs[4] = {NULL, NULL, Py_None, Py_None};
    Py_buffer views[4];
    static const char *names[4] = {"src", "dst", "gain", "offset"};
    int got = 0, want;
    PyObject *result = NULL;
    ResizeJob job;

    if (!PyArg_ParseTuple(args, "OnnnnddnnO|OO:resize_view", &objs[0], &job.x0, &job.y0,
                          &job.rw, &job.rh, &job.fx, &job.fy, &job.skip_x, &job.skip_y,
                          &objs[1], &objs[2], &objs[3]))
        return NULL;
    if ((objs[2] == Py_None) != (objs[3] == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "give both gain and offset, or neither");
        return NULL;
    }
    want = objs[2] == Py_None ? 2 : 4;
    for (; got < want; got++)
        if (!plane(objs[got], &views[got], got == 1, names[got]))
            goto done;
    job.plane = views[0].buf;
    job.step = views[0].strides[0];
    job.width = views[0].shape[1];
    job.dst = views[1].buf;
    job.dst_step = views[1].strides[0];
    job.out_w = views[1].shape[1];
    job.out_h = views[1].shape[0];
    job.gain = job.offset = NULL;
    job.gain_step = job.offset_step = 0;
    for (int k = 2; k < want; k++) {
        if (views[k].shape[0] != job.out_h || views[k].shape[1] != job.out_w) {
            PyErr_Format(PyExc_ValueError, "%s is %zdx%zd, dst is %zdx%zd", names[k],
                         views[k].shape[1], views[k].shape[0], job.out_w, job.out_h);
            goto done;
        }
    }
    if (want == 4) {
        job.gain = views[2].buf;
        job.gain_step = views[2].strides[0];
        job.offset = views[3].buf;
        job.offset_step = views[3].strides[0];
    }
    if (job.x0 < 0 || job.y0 < 0 || job.rw < 1 || job.rh < 1
        || job.x0 + job.rw > job.width || job.y0 + job.rh > views[0].shape[0]
        || !(job.fx > 0 && job.fy > 0) || job.skip_x < 0 || job.skip_y < 0) {
        PyErr_SetString(PyExc_ValueError, "the region must lie in src, the scales be "
                                          "positive and the skips not negative");
        goto done;
    }
    /* cv2.resize's output size: the region's, scaled and rounded (half to even) */
    long dw = lrint((double)job.rw * job.fx), dh = lrint((double)job.rh * job.fy);
    job.copy = dw == job.rw && dh == job.rh;
    if (dw < job.skip_x + job.out_w || dh < job.skip_y + job.out_h) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    void *work = PyMem_RawMalloc(RESIZE_WORK(job.out_w));
    if (work == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    resize_window(&job, work);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(work);
    result = Py_NewRef(Py_True);
done:
    while (got-- > 0)
        PyBuffer_Release(&views[got]);
    return result;
}

static PyMethodDef methods[] = {
    {"gain_offset", gain_offset, METH_VARARGS,
     "gain_offset(src, gain, offset, dst): dst = src * gain / 255 + offset (uint8 planes "
     "of one shape, rounded, saturated; dst may be src)."},
    {"resize_view", resize_view, METH_VARARGS,
     "resize_view(src, x0, y0, rw, rh, fx, fy, skip_x, skip_y, dst[, gain, offset]) -> "
     "bool: dst = cv2.resize(src[y0:y0+rh, x0:x0+rw], None, fx=fx, fy=fy, INTER_LINEAR)"
     "[skip_y:, skip_x:] (cut to dst's size), through gain_offset where given; False, "
     "with dst untouched, where that resize is too small to fill dst."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", NULL, 0, methods};

PyMODINIT_FUNC PyInit__fused(void)
{
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
#endif
    return PyModule_Create(&module);
}
