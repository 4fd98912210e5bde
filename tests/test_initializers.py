"""Tests for crnn.initializers: Keras 3 fans, bounds, statistics and seeding."""

import doctest
import json
import math

import numpy as np
import pytest

import crnn.initializers as initializers
import crnn.utils as utils

ALL_NAMES = [
    "glorot_uniform",
    "glorot_normal",
    "orthogonal",
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
]


@pytest.mark.parametrize(
    "shape,fans",
    [((), (1, 1)), ((7,), (7, 7)), ((3, 5), (3, 5)), ((2, 3, 4, 5), (24, 30))],
)
def test_compute_fans_like_keras(shape, fans):
    assert initializers.compute_fans(shape) == fans


def test_constant_initializers():
    np.testing.assert_array_equal(initializers.get("zeros")((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.get("ones")((4,)), np.ones(4))
    np.testing.assert_array_equal(initializers.Constant(0.25)((2, 2), dtype="float64"), np.full((2, 2), 0.25))
    assert initializers.get("constant")((1,))[0] == 0.0
    with pytest.raises(ValueError, match="`value` to be a scalar"):
        initializers.Constant([1.0, 2.0])


@pytest.mark.parametrize(
    "name,limit",
    [
        ("glorot_uniform", math.sqrt(6 / (40 + 60))),
        ("he_uniform", math.sqrt(6 / 40)),
        ("lecun_uniform", math.sqrt(3 / 40)),
    ],
)
def test_uniform_variance_scaling_bounds_and_spread(name, limit):
    w = initializers.get(name)((40, 60), rng=np.random.default_rng(0))
    assert np.all(np.abs(w) <= limit)
    assert np.max(np.abs(w)) > 0.98 * limit  # uses the whole range
    assert np.var(w) == pytest.approx(limit**2 / 3, rel=0.05)


@pytest.mark.parametrize(
    "name,variance",
    [("glorot_normal", 2 / (200 + 300)), ("he_normal", 2 / 200), ("lecun_normal", 1 / 200)],
)
def test_truncated_normal_variance_scaling(name, variance):
    w = initializers.get(name)((200, 300), rng=np.random.default_rng(1))
    stddev = math.sqrt(variance) / 0.87962566103423978  # before truncation, as Keras
    assert np.all(np.abs(w) <= 2 * stddev)
    assert np.var(w) == pytest.approx(variance, rel=0.03)
    assert abs(np.mean(w)) < 0.05 * stddev


def test_variance_scaling_modes_and_untruncated():
    rng = np.random.default_rng(2)
    w = initializers.VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform")((50, 150), rng=rng)
    assert np.all(np.abs(w) <= math.sqrt(3 * 3.0 / 150))
    w = initializers.VarianceScaling(mode="fan_avg", distribution="untruncated_normal")((300, 100), rng=rng)
    assert np.var(w) == pytest.approx(1 / 200, rel=0.03)
    assert np.max(np.abs(w)) > 2 * math.sqrt(1 / 200)  # not truncated
    assert initializers.VarianceScaling(distribution="normal").distribution == "truncated_normal"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"scale": 0.0}, "`scale`"),
        ({"mode": "fan_sum"}, "`mode`"),
        ({"distribution": "cauchy"}, "`distribution`"),
    ],
)
def test_variance_scaling_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        initializers.VarianceScaling(**kwargs)


def test_random_normal_uniform_truncated_defaults():
    rng = np.random.default_rng(3)
    w = initializers.get("random_normal")((100000,), rng=rng)
    assert np.std(w) == pytest.approx(0.05, rel=0.02) and abs(np.mean(w)) < 0.001
    u = initializers.get("random_uniform")((100000,), rng=rng)
    assert u.min() >= -0.05 and u.max() < 0.05 and u.max() > 0.0499
    t = initializers.get("truncated_normal")((100000,), rng=rng)
    assert np.max(np.abs(t)) <= 0.1
    # A normal truncated at 2 sigma has std 0.8796 sigma.
    assert np.std(t) == pytest.approx(0.05 * 0.87962566, rel=0.02)
    with pytest.raises(ValueError, match="`minval` <= `maxval`"):
        initializers.RandomUniform(1.0, 0.0)


@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10), (3, 2, 8)])
def test_orthogonal_is_orthogonal(shape):
    w = initializers.get("orthogonal")(shape, dtype="float64", rng=np.random.default_rng(4))
    assert w.shape == shape
    flat = w.reshape(-1, shape[-1])
    if flat.shape[0] >= flat.shape[1]:
        np.testing.assert_allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-12)
    else:
        np.testing.assert_allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-12)


def test_orthogonal_gain_sign_correction_and_rank_check():
    rng_seed = 5
    q = initializers.Orthogonal(gain=2.0)((5, 5), dtype="float64", rng=np.random.default_rng(rng_seed))
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(5), atol=1e-12)
    # Same draw as the initializer; R's diagonal must be positive after the correction.
    a = np.random.default_rng(rng_seed).standard_normal((5, 5))
    _, r = np.linalg.qr(a)
    r_corrected = (q / 2.0).T @ a
    np.testing.assert_allclose(np.abs(np.diag(r_corrected)), np.abs(np.diag(r)), rtol=1e-10)
    assert np.all(np.diag(r_corrected) > 0)
    with pytest.raises(ValueError, match="at least two-dimensional.*shape=\\(3,\\)"):
        initializers.Orthogonal()((3,))


def test_recurrent_kernel_shape_for_lstm():
    # Keras's LSTM recurrent kernel is (units, 4*units): orthonormal rows.
    w = initializers.get("orthogonal")((8, 32), rng=np.random.default_rng(6))
    np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_dtype_and_shape(name):
    init = initializers.get(name)
    for dtype in ("float32", "float64", np.float32):
        w = init((3, 4), dtype=dtype, rng=np.random.default_rng(0))
        assert w.shape == (3, 4) and w.dtype == np.dtype(dtype) and w.flags.c_contiguous
    assert init((3, 4)).dtype == np.float32  # default
    with pytest.raises(ValueError, match="floating `dtype`"):
        init((3, 4), dtype="int32")
    with pytest.raises(ValueError, match="`shape`"):
        init((3, -4))


def test_seeded_initializer_repeats_and_ignores_rng():
    init = initializers.GlorotUniform(seed=42)
    a = init((4, 4))
    b = init((4, 4), rng=np.random.default_rng(999))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, initializers.GlorotUniform(seed=43)((4, 4)))


def test_unseeded_initializer_follows_set_random_seed_and_rng():
    init = initializers.get("he_normal")
    utils.set_random_seed(11)
    a = init((3, 3))
    utils.set_random_seed(11)
    b = init((3, 3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(init((3, 3), rng=np.random.default_rng(1)),
                                  init((3, 3), rng=np.random.default_rng(1)))
    with pytest.raises(ValueError, match="`seed`"):
        initializers.Orthogonal(seed=-3)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_serialize_round_trip(name):
    init = initializers.get(name)
    config = initializers.serialize(init)
    json.dumps(config)
    clone = initializers.get(config)
    assert type(clone) is type(init) and clone.get_config() == init.get_config()


def test_get_identifiers():
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    made = initializers.get({"class_name": "Orthogonal", "config": {"gain": 0.5, "seed": 1}})
    assert made.gain == 0.5 and made.seed == 1
    inst = initializers.Ones()
    assert initializers.get(inst) is inst
    assert isinstance(initializers.get(initializers.Zeros), initializers.Zeros)

    def fn(shape, dtype=None):
        return np.full(shape, 7.0, dtype=dtype)

    assert initializers.get(fn) is fn
    with pytest.raises(ValueError, match="Unknown initializer: 'xavier'"):
        initializers.get("xavier")
    with pytest.raises(ValueError, match="Could not interpret"):
        initializers.get(3)
    with pytest.raises(ValueError, match="Only crnn Initializer instances"):
        initializers.serialize(fn)
    with pytest.raises(ValueError, match="Unknown initializer class_name='NoSuchInit'"):
        initializers.get({"class_name": "NoSuchInit", "config": {}})


def test_docstring_examples():
    result = doctest.testmod(initializers)
    assert result.attempted > 0 and result.failed == 0


def test_identity_like_keras():
    from crnn.initializers import Identity, get, serialize

    np.testing.assert_array_equal(Identity()((3, 3)), np.eye(3, dtype="float32"))
    np.testing.assert_array_equal(get("identity")((2, 3), dtype="float64"),
                                  np.eye(2, 3))                    # non-square: numpy.eye
    assert get(serialize(Identity(gain=0.5))).gain == 0.5
    assert get({"class_name": "IdentityInitializer", "config": {"gain": 2.0}})((1, 1)) == 2.0
    with pytest.raises(ValueError, match="2D"):
        Identity()((4,))


def test_keras_irnn_file_with_identity_initializer_loads():
    """A Keras IRNN (recurrent_initializer=Identity) saved by Keras 3 loads and predicts
    what Keras predicted (tests/qa_golden/make_irnn_golden.py)."""
    import os

    import crnn

    pytest.importorskip("h5py", reason="the test extra installs h5py")
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qa_golden")
    golden = np.load(os.path.join(folder, "irnn_golden.npz"))
    model = crnn.load_model(os.path.join(folder, "irnn.keras"))
    np.testing.assert_allclose(model.predict(golden["x"], verbose=0), golden["y"],
                               rtol=1e-5, atol=1e-6)
    layer = model.layers[0]
    assert type(layer.recurrent_initializer).__name__ == "Identity"
    # Keras 3.15's Identity.get_config() is empty: the file keeps the weights, not the gain.
    np.testing.assert_array_equal(golden["recurrent_kernel"], 0.5 * np.eye(4))
