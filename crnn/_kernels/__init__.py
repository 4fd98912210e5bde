"""crnn's compiled code: the Cython kernels and their C headers, all in this one folder.

Nothing here is public API: ``crnn.ops``, ``crnn.streaming``, ``crnn.layers`` and
``crnn.threads`` import these modules and wrap them. Map of the files, from the time loops
down to the SIMD code:

* ``_lstm.pyx``, ``_gru.pyx``, ``_simple_rnn.pyx``: the forward and backward time loops,
  one file per cell family (``lstm_forward``/``lstm_backward``, ...), called by ``crnn.ops``.
* ``_stream.pyx``: ``StreamCore``, compiled one-step inference over many streams
  (the chain driver behind ``crnn.streaming.StreamPool`` and ``Streamer``).
* ``_conv1d.pyx``: ``Conv1D`` forward and backward (im2col/col2im, the products in BLAS), for
  ``crnn.layers.Conv1D``.
* ``_cells.pxd``: the one definition of each cell's step, forward and backward, per row;
  shared by the time loops, streaming and recurrent dropout.
* ``_cells.pyx``: the Python face of the cells: activation codes (``ACTIVATION_CODES``),
  whole-batch cell steps (recurrent dropout in ``crnn.layers``), the instruction set in use
  (``isa``), micro-kernel test hooks (``pack`` and ``packed_product``, which ``bench/``
  times at the rows' shapes; ``whole_gemm``, ``weight_gradient``, ``transposed``), and
  ``add_rows`` (gradient rows summed in
  ``np.add.at``'s order: ``Embedding``'s gradient, the optimizers' sparse updates).
* ``_activations.pxd``: the one activation table: codes, activations and their derivatives
  on contiguous spans.
* ``_blas.pxd``: row-major GEMM over ``scipy.linalg.cython_blas``, the packed per-step
  product (``gemm_packed``, ``gemm_step``) and the whole-sequence product (``gemm_big``;
  ``gemm_big_sum``: a weight gradient with its bias gradient, summed during the pack).
* ``_common.pxd``: shape guards, batch-major/time-major layout changes (into workspace
  memory), and the padded row stride of inference's gate buffers (``gate_stride``).
* ``_pool.h``, ``_pool.pyx``, ``_pool.pxd``: crnn's own thread pool (POSIX threads, serial
  elsewhere), one per process: the forward entries run the parts of an inference batch's
  rows on it (their ``n_threads``); workers spin briefly after a job, then sleep; one job
  at a time (another thread's job runs its parts serially); reset in a forked child.
* ``_workspace.py``: a pool of reused buffers for the kernels' large arrays (gates, saved
  states, gradients, outputs): ``empty(shape, dtype)`` hands out a view of a free buffer,
  so a call does not page-fault fresh memory; at most ``MAX_POOLED_BYTES`` (256 MiB) kept.
* ``_smallgemm.h``: the packed micro-kernel for the per-step products (weights packed once
  per call), the cache-blocked whole-sequence products on the same panels, and the
  register-tile transposition (``crnn_transpose_*``) of their transposed operands and of a
  training cache's R^T.
* ``_rowgemv.h``: the one-row product of a streaming step.
* ``_cellmath.h``: the cells' elementwise loops (state update, backward gate maths) as
  ``restrict`` C, vectorized per instruction set.
* ``_fastmath.h``: vectorized float32/float64 sigmoid and tanh, and the run-time dispatch
  (AVX-512 / AVX2+FMA / SSE2; ``CRNN_ISA`` caps it) the other headers use.

The extensions are built by ``setup.py`` (``python setup.py build_ext --inplace``);
CONTRIBUTING.md says how to add a kernel.
"""
