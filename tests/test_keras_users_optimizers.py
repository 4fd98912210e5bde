"""AdamW, Adamax, Nadam, weight decay, learning-rate schedules and sparse (IndexedSlices)
updates against trajectories produced once by Keras 3 on TensorFlow
(tests/keras_users_golden/make_optimizers.py)."""

import json
import os

import numpy as np
import pytest

from crnn import optimizers

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "optimizers.npz")


def _meta():
    with np.load(GOLDEN) as data:
        return json.loads(str(data["__meta__"]))


def _make(case):
    return getattr(optimizers, case["class_name"])(**case["config"])


def _tol(dtype):
    # A few ulp: float32 rtol 1e-6, float64 rtol 1e-13.
    return {"rtol": 1e-6, "atol": 1e-7} if dtype == "float32" else {"rtol": 1e-13, "atol": 1e-15}


def test_golden_file_records_versions_and_covers_the_new_features():
    meta = _meta()
    assert meta["versions"]["keras_backend"] == "tensorflow"
    assert meta["versions"]["keras"].startswith("3.") and "tensorflow" in meta["versions"]
    classes = {c["class_name"] for c in meta["cases"]}
    assert {"AdamW", "Adamax", "Nadam", "Adam", "RMSprop", "Adagrad", "SGD"} <= classes
    schedules = {c["config"]["learning_rate"]["class_name"] for c in meta["cases"]
                 if isinstance(c["config"].get("learning_rate"), dict)}
    assert schedules == {"ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay", "CosineDecay"}
    assert {c["kind"] for c in meta["cases"]} == {"dense", "sparse"}


@pytest.mark.parametrize("case", [c for c in _meta()["cases"] if c["kind"] == "dense"],
                         ids=lambda c: c["key"])
def test_dense_trajectory_matches_keras(case):
    key, meta = case["key"], _meta()
    n = meta["num_variables"]
    with np.load(GOLDEN) as data:
        params = [data[f"{key}/init/{i}"].copy() for i in range(n)]
        grads = [[data[f"{key}/grad/{t}/{i}"] for i in range(n)] for t in range(meta["steps"])]
        expected = [[data[f"{key}/value/{t}/{i}"] for i in range(n)] for t in range(meta["steps"])]
    opt = _make(case)
    for t, step_grads in enumerate(grads):
        opt.apply(params, step_grads)
        for i in range(n):
            np.testing.assert_allclose(params[i], expected[t][i], **_tol(case["dtype"]),
                                       err_msg=f"{key} step {t} var {i}")


@pytest.mark.parametrize("case", [c for c in _meta()["cases"] if c["kind"] == "sparse"],
                         ids=lambda c: c["key"])
def test_sparse_rows_trajectory_matches_keras_on_tensorflow(case):
    key, meta = case["key"], _meta()
    with np.load(GOLDEN) as data:
        param = data[f"{key}/init"].copy()
        steps = [(data[f"{key}/values/{t}"], data[f"{key}/indices/{t}"], data[f"{key}/value/{t}"])
                 for t in range(meta["steps"])]
    opt = _make(case)
    for t, (values, indices, expected) in enumerate(steps):
        opt.apply([param], [optimizers.IndexedSlices(values, indices, param.shape)])
        np.testing.assert_allclose(param, expected, **_tol(case["dtype"]), err_msg=f"{key} step {t}")


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad", "nadam"])
def test_sparse_rows_differ_from_the_summed_dense_gradient(name):
    # Guards the per-occurrence path: with a repeated index, g**2 summed per row
    # differs from the square of the summed row.
    values = np.array([[1.0, -2.0], [3.0, 0.5]])
    indices = np.array([0, 0])
    sparse_p, dense_p = np.ones((2, 2)), np.ones((2, 2))
    optimizers.get(name).apply([sparse_p], [optimizers.IndexedSlices(values, indices, (2, 2))])
    optimizers.get(name).apply([dense_p], [optimizers.IndexedSlices(values, indices, (2, 2)).to_dense()])
    assert not np.allclose(sparse_p, dense_p, rtol=1e-9, atol=0)


# ------------------------------------------------------------------ schedules
def test_schedules_follow_keras_formulas():
    s = optimizers.schedules
    assert float(s.ExponentialDecay(0.1, 10, 0.5)(5)) == pytest.approx(0.1 * 0.5 ** 0.5, rel=1e-6)
    assert float(s.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15)) == pytest.approx(0.05, rel=1e-6)
    assert float(s.InverseTimeDecay(1.0, 2, 1.0)(4)) == pytest.approx(1 / 3, rel=1e-6)
    pw = s.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [float(pw(k)) for k in (0, 10, 11, 20, 21)] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.1])
    cos = s.CosineDecay(1.0, 10, alpha=0.2)
    assert float(cos(5)) == pytest.approx(0.8 * 0.5 + 0.2, rel=1e-6)
    assert float(cos(100)) == pytest.approx(0.2, rel=1e-6)
    warm = s.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4)
    assert float(warm(2)) == pytest.approx(0.5, rel=1e-6)
    assert float(warm(4)) == pytest.approx(1.0, rel=1e-6)
    assert float(warm(9)) == pytest.approx(0.5, rel=1e-6)


def test_schedule_config_round_trip_in_keras_form():
    sched = optimizers.CosineDecay(0.0, 100, alpha=0.1, warmup_target=0.01, warmup_steps=5)
    opt = optimizers.Adam(learning_rate=sched)
    config = opt.get_config()
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    assert config["learning_rate"]["module"] == "keras.optimizers.schedules"
    clone = optimizers.deserialize(optimizers.serialize(opt))
    assert clone.learning_rate_schedule.get_config() == sched.get_config()
    assert clone.learning_rate == opt.learning_rate == pytest.approx(0.0)


def test_learning_rate_follows_the_schedule_and_cannot_be_set():
    opt = optimizers.SGD(learning_rate=optimizers.ExponentialDecay(1.0, 1, 0.5))
    p = [np.zeros(1)]
    for _ in range(3):
        opt.apply(p, [np.ones(1)])
    assert opt.learning_rate == pytest.approx(0.125)
    np.testing.assert_allclose(p[0], [-(1 + 0.5 + 0.25)])
    with pytest.raises(TypeError, match="schedule"):
        opt.learning_rate = 0.1


def test_float_learning_rate_can_be_set_and_is_checked():
    opt = optimizers.Adam(0.01)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
    assert opt.learning_rate == 0.5


@pytest.mark.parametrize("bad, match", [
    ({"decay_steps": 0}, "decay_steps"),
    ({"decay_steps": -1}, "decay_steps"),
    ({"decay_rate": "x"}, "decay_rate"),
])
def test_exponential_decay_rejects_bad_arguments(bad, match):
    args = {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9}
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        optimizers.ExponentialDecay(**args)


def test_piecewise_rejects_mismatched_lengths_and_unsorted_boundaries():
    with pytest.raises(ValueError, match="one more"):
        optimizers.PiecewiseConstantDecay([1, 2], [1.0, 0.5])
    with pytest.raises(ValueError, match="increasing"):
        optimizers.PiecewiseConstantDecay([2, 1], [1.0, 0.5, 0.1])


# ------------------------------------------------------------------ new optimizers
def test_adamw_needs_weight_decay_and_checks_it():
    assert optimizers.AdamW().weight_decay == 0.004
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.Adam(weight_decay=-0.1)


@pytest.mark.parametrize("name", ["adamw", "adamax", "nadam"])
def test_new_optimizers_by_name_config_and_state_round_trip(name):
    rng = np.random.default_rng(0)
    a = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    b = [x.copy() for x in a]
    opt = optimizers.get(name)
    for _ in range(2):
        opt.apply(a, [np.ones((3, 2)), np.ones(2)])
    clone = optimizers.deserialize(optimizers.serialize(opt))
    assert clone.get_config() == opt.get_config()
    ref = optimizers.get(name)
    for _ in range(2):
        ref.apply(b, [np.ones((3, 2)), np.ones(2)])
    clone.set_state(opt.get_state())
    grads = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    opt.apply(a, grads)
    clone.apply(b, grads)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cls", [optimizers.Adamax, optimizers.Nadam])
@pytest.mark.parametrize("arg, value", [("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0)])
def test_new_optimizers_reject_out_of_range_arguments(cls, arg, value):
    with pytest.raises(ValueError, match=arg):
        cls(**{arg: value})
