# crnn's thread pool (_pool.h), one per process: the forward kernels run the parts of an
# inference batch's rows on it. Defined in _pool.pyx so that every kernel module shares
# the same workers and the same one-job-at-a-time lock.

ctypedef void (*pool_fn)(void *ctx, int part) noexcept nogil

cdef void pool_run(int n, pool_fn fn, void *ctx) noexcept nogil
