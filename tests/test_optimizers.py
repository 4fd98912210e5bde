"""Tests for crnn.optimizers: update rules, clipping, validation, state.

Trajectories are checked two ways: against update rules written out here in
NumPy (hyperparameters chosen exactly representable in float32, so Keras's
float32 rounding of them does not enter), and against golden trajectories
produced once by Keras 3 (tests/golden/make_optimizers_golden.py).
"""

import doctest
import json
import os

import numpy as np
import pytest

import crnn.optimizers as optimizers

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "optimizers_golden.npz")
SHAPES = [(3, 4), (5,), (2, 3)]


def make_problem(seed, steps=5, dtype=np.float64, scales=(2.0, 0.1, 1.0, 0.03, 0.5)):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(scales[t % len(scales)] * rng.standard_normal(s)).astype(dtype) for s in SHAPES] for t in range(steps)]
    return params, grads


def run(opt, params, grads):
    params = [p.copy() for p in params]
    history = []
    for step_grads in grads:
        opt.apply(params, step_grads)
        history.append([p.copy() for p in params])
    return history


# ---------------------------------------------------------------- reference rules
def ref_sgd(p, grads, lr, momentum=0.0, nesterov=False):
    p = p.copy()
    m = np.zeros_like(p)
    out = []
    for g in grads:
        if momentum == 0:
            p = p - lr * g
        else:
            m = momentum * m - lr * g
            p = p + (momentum * m - lr * g if nesterov else m)
        out.append(p.copy())
    return out


def ref_rmsprop(p, grads, lr, rho, momentum, eps, centered):
    p = p.copy()
    v = np.zeros_like(p)
    mg = np.zeros_like(p)
    mom = np.zeros_like(p)
    out = []
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if centered:
            mg = rho * mg + (1 - rho) * g
            denom = v - mg * mg + eps
        else:
            denom = v + eps
        inc = lr * g / np.sqrt(denom)
        if momentum > 0:
            mom = momentum * mom + inc
            p = p - mom
        else:
            p = p - inc
        out.append(p.copy())
    return out


def ref_adam(p, grads, lr, b1, b2, eps, amsgrad):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            p = p - lr_t * m / (np.sqrt(vmax) + eps)
        else:
            p = p - lr_t * m / (np.sqrt(v) + eps)
        out.append(p.copy())
    return out


def ref_adagrad(p, grads, lr, init, eps):
    p = p.copy()
    acc = np.full_like(p, init)
    out = []
    for g in grads:
        acc = acc + g * g
        p = p - lr * g / np.sqrt(acc + eps)
        out.append(p.copy())
    return out


REFERENCE_CASES = [
    ("sgd", optimizers.SGD(learning_rate=0.125), lambda p, g: ref_sgd(p, g, 0.125)),
    ("sgd_momentum", optimizers.SGD(0.0625, momentum=0.75), lambda p, g: ref_sgd(p, g, 0.0625, 0.75)),
    (
        "sgd_nesterov",
        optimizers.SGD(0.0625, momentum=0.75, nesterov=True),
        lambda p, g: ref_sgd(p, g, 0.0625, 0.75, True),
    ),
    (
        "rmsprop",
        optimizers.RMSprop(0.03125, rho=0.75, epsilon=1e-6),
        lambda p, g: ref_rmsprop(p, g, 0.03125, 0.75, 0.0, 1e-6, False),
    ),
    (
        "rmsprop_centered_momentum",
        optimizers.RMSprop(0.03125, rho=0.875, momentum=0.5, epsilon=1e-3, centered=True),
        lambda p, g: ref_rmsprop(p, g, 0.03125, 0.875, 0.5, 1e-3, True),
    ),
    (
        "adam",
        optimizers.Adam(0.015625, beta_1=0.75, beta_2=0.875, epsilon=1e-5),
        lambda p, g: ref_adam(p, g, 0.015625, 0.75, 0.875, 1e-5, False),
    ),
    (
        "adam_amsgrad",
        optimizers.Adam(0.015625, beta_1=0.5, beta_2=0.75, epsilon=1e-5, amsgrad=True),
        lambda p, g: ref_adam(p, g, 0.015625, 0.5, 0.75, 1e-5, True),
    ),
    (
        "adagrad",
        optimizers.Adagrad(0.25, initial_accumulator_value=0.5, epsilon=1e-4),
        lambda p, g: ref_adagrad(p, g, 0.25, 0.5, 1e-4),
    ),
]


@pytest.mark.parametrize("name,opt,ref", REFERENCE_CASES, ids=[c[0] for c in REFERENCE_CASES])
def test_trajectory_matches_written_out_rule(name, opt, ref):
    params, grads = make_problem(seed=len(name))
    got = run(opt, params, grads)
    for i in range(len(SHAPES)):
        expected = ref(params[i], [g[i] for g in grads])
        for t in range(len(grads)):
            np.testing.assert_allclose(got[t][i], expected[t], rtol=1e-12, atol=1e-14)
    assert opt.iterations == len(grads)


def test_amsgrad_differs_from_adam_when_gradients_shrink():
    # Guards the amsgrad branch: with shrinking gradients v_hat > v, so the paths differ.
    params, grads = make_problem(seed=3, scales=(3.0, 0.01, 0.01, 0.01, 0.01))
    plain = run(optimizers.Adam(0.01), params, grads)
    ams = run(optimizers.Adam(0.01, amsgrad=True), params, grads)
    assert not np.allclose(plain[-1][0], ams[-1][0])


def _golden_cases():
    with np.load(GOLDEN) as data:
        meta = json.loads(str(data["__meta__"]))
    return meta


def test_golden_file_covers_every_optimizer_and_clipping_mode():
    meta = _golden_cases()
    classes = {c["class_name"] for c in meta["cases"]}
    assert classes == {"SGD", "RMSprop", "Adam", "Adagrad"}
    options = set().union(*(c["config"].keys() for c in meta["cases"]))
    assert {"clipnorm", "clipvalue", "global_clipnorm", "amsgrad", "centered", "nesterov"} <= options
    assert {c["dtype"] for c in meta["cases"]} == {"float32", "float64"}


@pytest.mark.parametrize("case", _golden_cases()["cases"], ids=lambda c: c["key"])
def test_matches_keras_golden_trajectory(case):
    key = case["key"]
    with np.load(GOLDEN) as data:
        meta = json.loads(str(data["__meta__"]))
        n = meta["num_variables"]
        params = [data[f"{key}/init/{i}"].copy() for i in range(n)]
        grads = [[data[f"{key}/grad/{t}/{i}"] for i in range(n)] for t in range(meta["steps"])]
        expected = [[data[f"{key}/value/{t}/{i}"] for i in range(n)] for t in range(meta["steps"])]
    opt = getattr(optimizers, case["class_name"])(**case["config"])
    tol = dict(rtol=1e-6, atol=1e-7) if case["dtype"] == "float32" else dict(rtol=1e-13, atol=1e-15)
    for t, step_grads in enumerate(grads):
        opt.apply(params, step_grads)
        for i in range(n):
            assert params[i].dtype == np.dtype(case["dtype"])
            np.testing.assert_allclose(params[i], expected[t][i], **tol, err_msg=f"{key} step {t} var {i}")


# ---------------------------------------------------------------------- clipping
def test_clipnorm_clips_each_gradient_separately():
    big = np.array([3.0, 4.0])  # norm 5
    small = np.array([0.3, 0.4])  # norm 0.5
    p = [np.zeros(2), np.zeros(2)]
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply(p, [big, small])
    np.testing.assert_allclose(p[0], -big / 5.0)
    np.testing.assert_allclose(p[1], -small)  # below the threshold: unchanged


def test_global_clipnorm_scales_all_gradients_together():
    g1 = np.array([3.0, 0.0])
    g2 = np.array([0.0, 4.0])  # joint norm 5
    p = [np.zeros(2), np.zeros(2)]
    optimizers.SGD(learning_rate=1.0, global_clipnorm=2.5).apply(p, [g1, g2])
    np.testing.assert_allclose(p[0], -g1 * 0.5)
    np.testing.assert_allclose(p[1], -g2 * 0.5)


def test_global_clipnorm_leaves_small_and_zero_gradients_alone():
    p = [np.zeros(2)]
    optimizers.SGD(learning_rate=1.0, global_clipnorm=10.0).apply(p, [np.array([0.5, -1.0])])
    np.testing.assert_allclose(p[0], [-0.5, 1.0])
    q = [np.ones(2)]
    optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0).apply(q, [np.zeros(2)])
    np.testing.assert_array_equal(q[0], [1.0, 1.0])


def test_global_clipnorm_with_infinite_gradient_gives_nan_like_keras():
    p = [np.zeros(2)]
    optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0).apply(p, [np.array([np.inf, 1.0])])
    assert np.all(np.isnan(p[0]))


def test_clipvalue_clips_elementwise():
    p = [np.zeros(4)]
    optimizers.SGD(learning_rate=1.0, clipvalue=0.5).apply(p, [np.array([-2.0, -0.2, 0.3, 7.0])])
    np.testing.assert_allclose(p[0], [0.5, 0.2, -0.3, -0.5])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clipnorm": 1.0, "clipvalue": 1.0},
        {"clipnorm": 1.0, "global_clipnorm": 1.0},
        {"clipvalue": 1.0, "global_clipnorm": 1.0},
    ],
)
def test_more_than_one_clipping_option_is_rejected(kwargs):
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):
        optimizers.Adam(**kwargs)


# -------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "cls,kwargs,argname",
    [
        (optimizers.SGD, {"learning_rate": 0.0}, "learning_rate"),
        (optimizers.SGD, {"learning_rate": -0.1}, "learning_rate"),
        (optimizers.Adam, {"learning_rate": float("nan")}, "learning_rate"),
        (optimizers.Adam, {"learning_rate": "0.1"}, "learning_rate"),
        (optimizers.SGD, {"momentum": 1.5}, "momentum"),
        (optimizers.SGD, {"momentum": -0.1}, "momentum"),
        (optimizers.SGD, {"nesterov": "yes"}, "nesterov"),
        (optimizers.RMSprop, {"rho": 1.0}, "rho"),
        (optimizers.RMSprop, {"epsilon": 0.0}, "epsilon"),
        (optimizers.RMSprop, {"centered": 1}, "centered"),
        (optimizers.Adam, {"beta_1": 1.0}, "beta_1"),
        (optimizers.Adam, {"beta_2": -0.5}, "beta_2"),
        (optimizers.Adam, {"amsgrad": None}, "amsgrad"),
        (optimizers.Adagrad, {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        (optimizers.Adagrad, {"clipnorm": -1.0}, "clipnorm"),
        (optimizers.SGD, {"clipvalue": 0.0}, "clipvalue"),
        (optimizers.SGD, {"global_clipnorm": "big"}, "global_clipnorm"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(cls, kwargs, argname):
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert f"`{argname}`" in message
    assert f"{argname}=" in message


def test_apply_rejects_mismatched_lists_and_shapes():
    opt = optimizers.SGD()
    p = [np.zeros((2, 3)), np.zeros(3)]
    with pytest.raises(ValueError, match="same length"):
        opt.apply(p, [np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"Gradient 1 has shape \(4,\)"):
        opt.apply(p, [np.zeros((2, 3)), np.zeros(4)])
    opt.apply(p, [np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"built with shape \(2, 3\)"):
        opt.apply([np.zeros((3, 2)), np.zeros(3)], [np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match="built for 2 parameters"):
        opt.apply([np.zeros((2, 3))], [np.zeros((2, 3))])


def test_apply_rejects_non_float_and_read_only_parameters():
    with pytest.raises(ValueError, match="floating NumPy array"):
        optimizers.SGD().apply([np.zeros(3, dtype=np.int64)], [np.zeros(3)])
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optimizers.SGD().apply([ro], [np.zeros(3)])
    with pytest.raises(ValueError, match="No gradients"):
        optimizers.SGD().apply([np.zeros(3)], [None])


def test_none_gradient_leaves_parameter_and_slots_untouched():
    opt = optimizers.Adam(0.1)
    p = [np.ones(2), np.ones(3)]
    opt.apply(p, [np.ones(2), None])
    np.testing.assert_array_equal(p[1], np.ones(3))
    assert not np.array_equal(p[0], np.ones(2))
    assert opt.iterations == 1
    state = opt.get_state()
    np.testing.assert_array_equal(state[2], np.zeros(3))  # momentum slot of param 1


def test_updates_in_place_and_keeps_dtype():
    base = np.ones((4, 4), dtype=np.float32)
    view = base[:, :2]  # a non-contiguous view: must still be updated in place
    opt = optimizers.RMSprop(0.5)
    opt.apply([view], [np.ones((4, 2))])
    assert view.dtype == np.float32
    assert np.all(base[:, :2] < 1.0)
    np.testing.assert_array_equal(base[:, 2:], 1.0)
    assert all(s.dtype == np.float32 for s in opt.get_state()[1:])


# ------------------------------------------------------------- config and state
@pytest.mark.parametrize(
    "opt",
    [
        optimizers.SGD(0.2, momentum=0.5, nesterov=True, clipnorm=2.0, name="my_sgd"),
        optimizers.RMSprop(0.01, rho=0.8, momentum=0.1, epsilon=1e-5, centered=True, clipvalue=1.0),
        optimizers.Adam(0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6, amsgrad=True, global_clipnorm=3.0),
        optimizers.Adagrad(0.05, initial_accumulator_value=0.2, epsilon=1e-5),
    ],
    ids=lambda o: type(o).__name__,
)
def test_config_round_trip(opt):
    config = opt.get_config()
    json.dumps(config)
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    assert optimizers.get(optimizers.serialize(opt)).get_config() == config


def test_keras_defaults():
    sgd, rms, adam, ada = (optimizers.get(n) for n in ("sgd", "rmsprop", "Adam", "adagrad"))
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (0.001, 0.1, 1e-7)
    assert sgd.clipnorm is None and sgd.clipvalue is None and sgd.global_clipnorm is None


def test_get_accepts_instances_and_dicts_and_rejects_unknown():
    opt = optimizers.Adam()
    assert optimizers.get(opt) is opt
    made = optimizers.get({"class_name": "SGD", "config": {"learning_rate": 0.5}})
    assert isinstance(made, optimizers.SGD) and made.learning_rate == 0.5
    with pytest.raises(ValueError, match="Unknown optimizer: 'lion'"):
        optimizers.get("lion")
    with pytest.raises(ValueError, match="Could not interpret"):
        optimizers.get(3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.SGD(0.1, momentum=0.9),
        lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        lambda: optimizers.Adam(0.01, amsgrad=True),
        lambda: optimizers.Adagrad(0.1),
    ],
)
def test_state_round_trip_resumes_identically(make):
    params, grads = make_problem(seed=11, steps=6, dtype=np.float32)
    opt = make()
    live = [p.copy() for p in params]
    for g in grads[:3]:
        opt.apply(live, g)
    state = opt.get_state()
    assert int(state[0]) == 3
    saved = [p.copy() for p in live]
    for g in grads[3:]:
        opt.apply(live, g)

    resumed = make()
    resumed.set_state(state)  # unbuilt: shapes come from the state
    restored = [p.copy() for p in saved]
    for g in grads[3:]:
        resumed.apply(restored, g)
    assert resumed.iterations == 6
    for a, b in zip(live, restored):
        np.testing.assert_array_equal(a, b)


def test_state_is_a_copy_and_set_state_checks_sizes():
    opt = optimizers.Adam()
    p = [np.ones(3)]
    assert len(opt.get_state()) == 1  # just the iteration count before building
    opt.apply(p, [np.ones(3)])
    state = opt.get_state()
    assert len(state) == 3
    state[1][:] = 123.0
    assert not np.any(opt.get_state()[1] == 123.0)
    with pytest.raises(ValueError, match="expects 2 slot arrays"):
        opt.set_state(state[:2])
    with pytest.raises(ValueError, match="has shape"):
        opt.set_state([state[0], np.zeros(4), np.zeros(4)])
    with pytest.raises(ValueError, match="iteration count"):
        opt.set_state([np.zeros(3), state[1], state[2]])
    with pytest.raises(ValueError, match="Cannot split 3 slot arrays"):
        optimizers.Adam().set_state([np.array(1), np.zeros(1), np.zeros(1), np.zeros(1)])


def test_sgd_without_momentum_has_no_slots_and_adagrad_starts_at_initial_value():
    sgd = optimizers.SGD()
    sgd.apply([np.zeros(2)], [np.ones(2)])
    assert len(sgd.get_state()) == 1
    ada = optimizers.Adagrad(initial_accumulator_value=0.25)
    ada.build([np.zeros(2)])
    np.testing.assert_array_equal(ada.get_state()[1], [0.25, 0.25])


def test_docstring_examples():
    result = doctest.testmod(optimizers, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------- sparse gradients
def embedding_gradient():
    # d sum(embedding(x)) for x = [1, 1, 1, 2] in a (5, 2) table: one row of ones per lookup.
    return optimizers.IndexedSlices(np.ones((4, 2)), np.array([1, 1, 1, 2]), (5, 2))


@pytest.mark.parametrize(
    "kwargs,row1,row2",
    [
        # Numbers measured once with Keras 3.15 on TensorFlow (tf.GradientTape
        # through keras.layers.Embedding, then SGD(learning_rate=1.0, **kwargs)).
        ({"clipnorm": 1.0}, -1.0606602, -0.35355338),  # norm of the 4 rows: sqrt(8)
        ({"global_clipnorm": 1.0}, -1.0606602, -0.35355338),
        ({"clipvalue": 2.0}, -3.0, -1.0),  # rows clipped before they are summed
        ({}, -3.0, -1.0),
    ],
)
def test_indexed_slices_are_clipped_row_by_row_like_keras_on_tensorflow(kwargs, row1, row2):
    table = np.zeros((5, 2), dtype=np.float32)
    optimizers.SGD(learning_rate=1.0, **kwargs).apply([table], [embedding_gradient()])
    np.testing.assert_allclose(table[1], [row1, row1], rtol=1e-6)
    np.testing.assert_allclose(table[2], [row2, row2], rtol=1e-6)
    np.testing.assert_array_equal(table[[0, 3, 4]], 0.0)


def test_dense_gradient_of_the_same_lookup_is_clipped_after_summing():
    table = np.zeros((5, 2))
    dense = embedding_gradient().to_dense()
    np.testing.assert_array_equal(dense[1], [3.0, 3.0])
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([table], [dense])
    np.testing.assert_allclose(table[1], -3.0 / np.sqrt(20.0))


def test_indexed_slices_validation():
    with pytest.raises(ValueError, match="`values` must have shape"):
        optimizers.IndexedSlices(np.ones((3, 2)), np.array([0, 1]), (5, 2))
    with pytest.raises(ValueError, match="`indices` must lie in"):
        optimizers.IndexedSlices(np.ones((1, 2)), np.array([5]), (5, 2))
    with pytest.raises(ValueError, match="1-D integer"):
        optimizers.IndexedSlices(np.ones((1, 2)), np.array([0.0]), (5, 2))
    with pytest.raises(ValueError, match=r"dense_shape \(5, 2\)"):
        optimizers.Adam().apply([np.zeros((4, 2))], [embedding_gradient()])
