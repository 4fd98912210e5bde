"""The compiled kernels (through crnn.ops) against the NumPy reference, and gradient checks."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crnn import ops
from ops_cases import (
    GATES,
    TOLERANCE,
    grad_ops,
    grad_reference,
    make_problem,
    options,
    run_ops,
    run_reference,
)

CELLS = ["lstm", "gru", "simple_rnn"]
DTYPES = [np.float64, np.float32]


def _variants(cell):
    """Every option combination worth testing for one cell."""
    acts = ["tanh", "relu", "sigmoid", "hard_sigmoid", "linear"]
    racts = ["sigmoid", "hard_sigmoid"] if cell != "simple_rnn" else ["sigmoid"]
    resets = [True, False] if cell == "gru" else [True]
    for go_backwards, masked, act, ract, use_bias, reset_after in itertools.product(
            [False, True], [False, True], acts, racts, [True, False], resets):
        yield dict(go_backwards=go_backwards, masked=masked, activation=act,
                   recurrent_activation=ract, use_bias=use_bias, reset_after=reset_after)


def _assert_close(actual, expected, dtype, what):
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(np.asarray(actual) - expected).max()) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


def _compare(cell, dtype, variant, seed=0, **shape):
    rng = np.random.default_rng(seed)
    problem = make_problem(cell, rng, dtype=dtype, use_bias=variant["use_bias"],
                           reset_after=variant["reset_after"], masked=variant["masked"],
                           **shape)
    opts = options(cell, variant["go_backwards"], variant["activation"],
                   variant["recurrent_activation"], variant["reset_after"])
    outputs, states, cache = run_ops(cell, problem, opts)
    ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
    assert outputs.dtype == dtype and all(s.dtype == dtype for s in states)
    _assert_close(outputs, ref_outputs, dtype, "outputs")
    for k, (a, b) in enumerate(zip(states, ref_states)):
        _assert_close(a, b, dtype, f"final_states[{k}]")

    d_outputs = rng.standard_normal(outputs.shape).astype(dtype)
    d_states = [rng.standard_normal(s.shape).astype(dtype) for s in states]
    grads = grad_ops(cell, cache, d_outputs, d_states)
    expected = grad_reference(cell, tape, d_outputs, d_states)
    for name in ("dx", "d_kernel", "d_recurrent_kernel"):
        assert getattr(grads, name).dtype == dtype
        _assert_close(getattr(grads, name), expected[name], dtype, name)
    for k, (a, b) in enumerate(zip(grads.d_initial_state, expected["d_initial_state"])):
        _assert_close(a, b, dtype, f"d_initial_state[{k}]")
    if variant["use_bias"]:
        assert grads.d_bias.shape == problem["bias"].shape
        _assert_close(grads.d_bias, expected["d_bias"], dtype, "d_bias")
    else:
        assert grads.d_bias is None


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("cell", CELLS)
def test_kernels_match_reference_for_every_option(cell, dtype):
    for k, variant in enumerate(_variants(cell)):
        _compare(cell, dtype, variant, seed=k)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_mode_matches_training_mode_and_keeps_no_cache(cell):
    rng = np.random.default_rng(1)
    problem = make_problem(cell, rng, masked=True)
    opts = options(cell, go_backwards=True)
    out_train, states_train, cache = run_ops(cell, problem, opts, training=True)
    out_infer, states_infer, no_cache = run_ops(cell, problem, opts, training=False)
    assert cache is not None and no_cache is None
    np.testing.assert_array_equal(out_train, out_infer)
    for a, b in zip(states_train, states_infer):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS)
def test_masked_prefix_gives_zero_outputs_and_states_carry(cell):
    rng = np.random.default_rng(2)
    problem = make_problem(cell, rng, batch=2, timesteps=4)
    problem["mask"] = np.array([[False, False, True, True], [True, True, True, False]])
    outputs, states, _ = run_ops(cell, problem, options(cell), training=False)
    assert np.all(outputs[0, :2] == 0.0)              # before the first unmasked step
    np.testing.assert_array_equal(outputs[1, 3], outputs[1, 2])   # repeats the previous
    np.testing.assert_array_equal(states[0][1], outputs[1, 2])    # state carried over


@pytest.mark.parametrize("cell", CELLS)
def test_fully_masked_sample_keeps_its_initial_state(cell):
    rng = np.random.default_rng(3)
    problem = make_problem(cell, rng, batch=2, timesteps=3)
    problem["mask"] = np.array([[False] * 3, [True] * 3])
    outputs, states, cache = run_ops(cell, problem, options(cell))
    assert np.all(outputs[0] == 0.0)
    for state, initial in zip(states, problem["initial_state"]):
        np.testing.assert_array_equal(state[0], initial[0])
    d_states = [np.ones_like(s) for s in states]
    grads = grad_ops(cell, cache, np.ones_like(outputs), d_states)
    assert np.all(grads.dx[0] == 0.0)
    for d in grads.d_initial_state:
        np.testing.assert_array_equal(d[0], np.ones_like(d[0]))


@pytest.mark.parametrize("cell", CELLS)
def test_batch_samples_are_independent(cell):
    rng = np.random.default_rng(4)
    problem = make_problem(cell, rng, batch=4)
    outputs, _, _ = run_ops(cell, problem, options(cell), training=False)
    one = dict(problem, x=problem["x"][2:3],
               initial_state=[s[2:3] for s in problem["initial_state"]])
    outputs_one, _, _ = run_ops(cell, one, options(cell), training=False)
    np.testing.assert_allclose(outputs_one[0], outputs[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_go_backwards_equals_reversed_input(cell):
    rng = np.random.default_rng(5)
    problem = make_problem(cell, rng)
    backwards, states_b, _ = run_ops(cell, problem, options(cell, go_backwards=True), False)
    flipped = dict(problem, x=problem["x"][:, ::-1])
    forwards, states_f, _ = run_ops(cell, flipped, options(cell), False)
    np.testing.assert_allclose(backwards, forwards, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- gradients


def _numeric_gradient(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        up = f()
        flat[k] = old - eps
        down = f()
        flat[k] = old
        gflat[k] = (up - down) / (2 * eps)
    return grad


GRADCHECK_VARIANTS = [
    dict(go_backwards=False, masked=False, activation="tanh", reset_after=True),
    dict(go_backwards=True, masked=True, activation="tanh", reset_after=True),
    dict(go_backwards=False, masked=True, activation="sigmoid", reset_after=False),
]


@pytest.mark.parametrize("variant", GRADCHECK_VARIANTS, ids=["plain", "backwards-masked",
                                                             "masked-sigmoid"])
@pytest.mark.parametrize("cell", CELLS)
def test_finite_difference_gradients_float64(cell, variant):
    if cell != "gru" and not variant["reset_after"]:
        variant = dict(variant, reset_after=True)
    rng = np.random.default_rng(6)
    problem = make_problem(cell, rng, batch=2, timesteps=4, features=3, units=2,
                           reset_after=variant["reset_after"], masked=variant["masked"])
    opts = options(cell, variant["go_backwards"], variant["activation"],
                   reset_after=variant["reset_after"])
    outputs, states, cache = run_ops(cell, problem, opts)
    d_outputs = rng.standard_normal(outputs.shape)
    d_states = [rng.standard_normal(s.shape) for s in states]

    def loss():
        out, st_, _ = run_ops(cell, problem, opts, training=False)
        return float(np.sum(out * d_outputs) + sum(np.sum(s * d) for s, d in zip(st_, d_states)))

    grads = grad_ops(cell, cache, d_outputs, d_states)
    analytic = {"x": grads.dx, "kernel": grads.d_kernel,
                "recurrent_kernel": grads.d_recurrent_kernel, "bias": grads.d_bias}
    for name, value in analytic.items():
        numeric = _numeric_gradient(loss, problem[name])
        np.testing.assert_allclose(value, numeric, rtol=1e-6, atol=1e-7, err_msg=name)
    for k, state in enumerate(problem["initial_state"]):
        numeric = _numeric_gradient(loss, state)
        np.testing.assert_allclose(grads.d_initial_state[k], numeric, rtol=1e-6, atol=1e-7,
                                   err_msg=f"initial_state[{k}]")


def test_default_d_final_states_is_zero():
    rng = np.random.default_rng(7)
    problem = make_problem("lstm", rng)
    outputs, states, cache = run_ops("lstm", problem, options("lstm"))
    d_outputs = rng.standard_normal(outputs.shape)
    a = ops.lstm_grad(cache, d_outputs)
    b = ops.lstm_grad(cache, d_outputs, [np.zeros_like(states[0]), None])
    np.testing.assert_array_equal(a.dx, b.dx)
    np.testing.assert_array_equal(a.d_kernel, b.d_kernel)


# --------------------------------------------------------------------------- shapes


@settings(max_examples=40, deadline=None)
@given(cell=st.sampled_from(CELLS), batch=st.integers(1, 4), timesteps=st.integers(1, 5),
       features=st.integers(1, 4), units=st.integers(1, 4), go_backwards=st.booleans(),
       masked=st.booleans(), reset_after=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_random_shapes_match_reference(cell, batch, timesteps, features, units, go_backwards,
                                       masked, reset_after, dtype, seed):
    variant = dict(go_backwards=go_backwards, masked=masked, activation="tanh",
                   recurrent_activation="sigmoid", use_bias=True, reset_after=reset_after)
    _compare(cell, dtype, variant, seed=seed, batch=batch, timesteps=timesteps,
             features=features, units=units)


@pytest.mark.parametrize("cell", CELLS)
def test_read_only_and_non_contiguous_inputs(cell):
    rng = np.random.default_rng(8)
    problem = make_problem(cell, rng, masked=True)
    opts = options(cell)
    expected, expected_states, _ = run_ops(cell, problem, opts, training=False)
    wide = np.zeros(problem["x"].shape[:2] + (2 * problem["x"].shape[2],))
    wide[:, :, ::2] = problem["x"]
    odd = dict(problem, x=wide[:, :, ::2], kernel=np.asfortranarray(problem["kernel"]))
    for key in ("recurrent_kernel", "bias"):
        odd[key] = problem[key].copy()
        odd[key].flags.writeable = False
    odd["initial_state"] = [s.copy() for s in problem["initial_state"]]
    for s in odd["initial_state"]:
        s.flags.writeable = False
    outputs, states, cache = run_ops(cell, odd, opts)
    np.testing.assert_array_equal(outputs, expected)
    grads = grad_ops(cell, cache, np.ones_like(outputs), None)
    assert grads.dx.shape == problem["x"].shape
    # the inputs were not modified
    for s, original in zip(odd["initial_state"], problem["initial_state"]):
        np.testing.assert_array_equal(s, original)


# --------------------------------------------------------------------------- bad input


def _lstm_args(dtype=np.float32):
    rng = np.random.default_rng(9)
    return make_problem("lstm", rng, batch=2, timesteps=3, features=4, units=3, dtype=dtype)


@pytest.mark.parametrize("change, error, words", [
    (dict(x=np.zeros((3, 4), np.float32)), ValueError, "x must be 3-D"),
    (dict(x=np.zeros((2, 3, 4), np.int64)), TypeError, "float32 or float64"),
    (dict(x=np.zeros((0, 3, 4), np.float32)), ValueError, "non-zero"),
    (dict(kernel=np.zeros((5, 12), np.float32)), ValueError, "kernel must have shape (4, 12)"),
    (dict(kernel=np.zeros((4, 12), np.float64)), TypeError, "kernel has dtype float64"),
    (dict(recurrent_kernel=np.zeros((3, 9), np.float32)), ValueError, "recurrent_kernel"),
    (dict(bias=np.zeros(11, np.float32)), ValueError, "bias must have shape (12,)"),
    (dict(initial_state=[np.zeros((2, 3), np.float32)]), ValueError, "list of 2"),
    (dict(initial_state=[np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32)]),
     ValueError, "initial_state[1] must have shape (2, 3)"),
    (dict(mask=np.ones((2, 4), bool)), ValueError, "mask must have shape"),
    (dict(mask=np.full((2, 3), 2)), TypeError, "mask must be boolean"),
])
def test_lstm_bad_input_errors(change, error, words):
    args = dict(_lstm_args(), **change)
    with pytest.raises(error) as info:
        ops.lstm(args["x"], args["kernel"], args["recurrent_kernel"], args["bias"],
                 args["initial_state"], mask=args["mask"])
    assert words in str(info.value)


def test_bad_activation_names():
    args = _lstm_args()
    with pytest.raises(ValueError, match="activation must be one of .* received 'softmax'"):
        ops.lstm(args["x"], args["kernel"], args["recurrent_kernel"], activation="softmax")
    with pytest.raises(ValueError, match="recurrent_activation .* received 'nope'"):
        ops.gru(args["x"], args["kernel"][:, :9], args["recurrent_kernel"][:, :9],
                recurrent_activation="nope")


def test_gru_bias_shape_follows_reset_after():
    rng = np.random.default_rng(10)
    problem = make_problem("gru", rng, reset_after=False)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 9\)"):
        ops.gru(problem["x"], problem["kernel"], problem["recurrent_kernel"], problem["bias"],
                reset_after=True)


def test_grad_errors():
    args = _lstm_args()
    outputs, _, cache = ops.lstm(args["x"], args["kernel"], args["recurrent_kernel"],
                                 training=True)
    _, _, no_cache = ops.lstm(args["x"], args["kernel"], args["recurrent_kernel"])
    with pytest.raises(TypeError, match="cache must be the cache returned by crnn.ops.lstm"):
        ops.lstm_grad(no_cache, outputs)
    with pytest.raises(ValueError, match=r"d_outputs must have shape \(2, 3, 3\)"):
        ops.lstm_grad(cache, outputs[:, :2])
    with pytest.raises(TypeError, match="d_outputs has dtype float64"):
        ops.lstm_grad(cache, outputs.astype(np.float64))
    with pytest.raises(ValueError, match="list of 2"):
        ops.lstm_grad(cache, outputs, [np.zeros((2, 3), np.float32)])
    with pytest.raises(TypeError, match="from crnn.ops.lstm"):
        ops.gru_grad(cache, outputs)


@pytest.mark.parametrize("cell", CELLS)
def test_compiled_entry_points_check_shapes_themselves(cell):
    """Even called directly, past crnn.ops, the kernels refuse inconsistent shapes."""
    from crnn._kernels import _gru, _lstm, _simple_rnn
    G, U = GATES[cell] * 3, 3
    x = np.zeros((2, 3, 4))
    kernel = np.zeros((5, G))                       # wrong: features is 4
    recurrent_kernel = np.zeros((U, G))
    mask = np.ones((1, 1), np.uint8)
    h0 = np.zeros((2, U))
    with pytest.raises(ValueError, match="kernel must have shape"):
        if cell == "lstm":
            _lstm.lstm_forward(x, kernel, recurrent_kernel, np.zeros(G), mask, False, False,
                               1, 2, h0, h0, False)
        elif cell == "gru":
            _gru.gru_forward(x, kernel, recurrent_kernel, np.zeros(2 * G), mask, False, False,
                             1, 2, True, h0, False)
        else:
            _simple_rnn.simple_rnn_forward(x, kernel, recurrent_kernel, np.zeros(G), mask,
                                           False, False, 1, h0, False)


# --------------------------------------------------------------------------- threads


@pytest.fixture
def restore_threads():
    import crnn
    before = crnn.get_num_threads()
    yield crnn
    crnn.set_num_threads(before)


@pytest.mark.parametrize("cell", CELLS)
def test_packed_and_threaded_blas_step_products_agree(cell, restore_threads):
    """With one BLAS thread each step's product runs in crnn's packed kernel; with more,
    products above PARALLEL_STEP_WORK go to BLAS. Both must give the reference's numbers."""
    crnn = restore_threads
    rng = np.random.default_rng(11)
    # at least 64 x 192 x 192 multiply-adds per step: above the threshold for every product
    problem = make_problem(cell, rng, batch=64, timesteps=3, features=5, units=192,
                           reset_after=False, masked=True, scale=0.1)
    opts = options(cell, reset_after=False)
    ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
    d_outputs = rng.standard_normal(ref_outputs.shape)
    zeros = [np.zeros_like(s) for s in ref_states]
    expected = grad_reference(cell, tape, d_outputs, zeros)
    for threads in (1, 2):
        crnn.set_num_threads(threads)
        outputs, states, cache = run_ops(cell, problem, opts)
        grads = grad_ops(cell, cache, d_outputs, None)
        _assert_close(outputs, ref_outputs, np.float64, f"outputs, {threads} threads")
        for name in ("dx", "d_kernel", "d_recurrent_kernel"):
            _assert_close(getattr(grads, name), expected[name], np.float64,
                          f"{name}, {threads} threads")


def test_set_num_threads_checks_its_argument(restore_threads):
    crnn = restore_threads
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n must be a positive int"):
            crnn.set_num_threads(bad)
    crnn.set_num_threads(1)
    assert crnn.get_num_threads() == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_batch_of_one_inference_reads_the_input_in_place(cell, dtype):
    """A one-row batch is time-major as given: inference reads it without a copy. The
    result is the reference's (either direction, masked or not, long enough to span
    several projection chunks), and the caller's read-only input is left as it was."""
    from ops_cases import TOLERANCE, make_problem, options, run_reference

    for timesteps, masked, go_backwards in ((1, False, False), (7, True, True),
                                            (150, False, True), (150, True, False)):
        rng = np.random.default_rng(timesteps + 2 * masked + go_backwards)
        problem = make_problem(cell, rng, batch=1, timesteps=timesteps, features=9, units=17,
                               dtype=dtype, masked=masked, scale=0.3)
        x = problem["x"]
        before = x.copy()
        x.flags.writeable = False
        opts = options(cell, go_backwards=go_backwards)
        outputs, states, cache = getattr(ops, cell)(
            x, problem["kernel"], problem["recurrent_kernel"], problem["bias"],
            problem["initial_state"], mask=problem["mask"], **opts)
        ref_outputs, ref_states, _ = run_reference(cell, problem, opts)
        assert cache is None and np.array_equal(x, before)
        scale = max(1.0, float(np.abs(ref_outputs).max()))
        assert float(np.abs(outputs - ref_outputs).max()) / scale <= TOLERANCE[dtype]
        for state, ref in zip(states, ref_states):
            assert float(np.abs(state - ref).max()) / scale <= TOLERANCE[dtype]
