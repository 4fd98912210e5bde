# crnn's thread pool (see _pool.h): one per process, shared by the kernel modules through
# _pool.pxd's pool_run. The Python functions here are for the tests.

from crnn._kernels._units cimport units_parts

cdef extern from "_pool.h" nogil:
    # 1 where parts run on worker threads (POSIX threads), 0 where they run one after
    # another on the calling thread
    int CRNN_POOL_THREADED
    # the most parts that run at once (one on the calling thread, the others on workers)
    int CRNN_POOL_MAX_PARTS
    void crnn_pool_run(int n, pool_fn fn, void *ctx)
    int crnn_pool_workers()

cdef extern from *:
    """
    /* a test job: each part adds its number plus one to its own counter (atomically) */
    typedef struct { long counts[256]; } crnn_pool_test_ctx;

    static void crnn_pool_test_part(void *ctx, int part) {
        crnn_pool_test_ctx *c = (crnn_pool_test_ctx *)ctx;
        __atomic_add_fetch(&c->counts[part], part + 1, __ATOMIC_RELAXED);
    }
    """
    ctypedef struct crnn_pool_test_ctx:
        long counts[256]
    void crnn_pool_test_part(void *ctx, int part) noexcept nogil


THREADED = bool(CRNN_POOL_THREADED)
MAX_PARTS = CRNN_POOL_MAX_PARTS


cdef void pool_run(int n, pool_fn fn, void *ctx) noexcept nogil:
    """Runs fn(ctx, p) for each p in 0..n-1, part 0 on the calling thread and the others on
    the pool's workers (all on the calling thread while another thread's job runs);
    returns when all are done."""
    crnn_pool_run(n, fn, ctx)


def workers():
    """The number of worker threads the pool has started (in this process)."""
    return crnn_pool_workers()


def run_test_jobs(int n_parts, int n_jobs):
    """Runs ``n_jobs`` jobs of ``n_parts`` parts (the GIL released), each part adding its
    number plus one to a counter of its own; returns the counters (the first
    min(n_parts, MAX_PARTS)): part p's is n_jobs * (p + 1) where each part ran once per
    job."""
    cdef crnn_pool_test_ctx ctx
    cdef int i, _job
    if not 0 <= n_parts <= 256:
        raise ValueError("n_parts must be 0 to 256")
    for i in range(256):
        ctx.counts[i] = 0
    with nogil:
        for _job in range(n_jobs):
            crnn_pool_run(n_parts, crnn_pool_test_part, &ctx)
    return [ctx.counts[i] for i in range(n_parts)]


def units_split_parts(Py_ssize_t batch, Py_ssize_t units, Py_ssize_t n_gates,
                      Py_ssize_t itemsize, Py_ssize_t n_threads, bint training=False):
    """The number of parts of the units split (_units.pxd) that a call of these sizes
    (``training`` or inference) runs on ``n_threads`` threads, or 0 where it splits the rows
    (or nothing)."""
    return units_parts(batch, units, n_gates, itemsize, n_threads, training)
