"""crnn.utils data helpers: Keras golden values (tests/keras_users_golden/make_utils.py),
Keras's documented behaviour and error paths, and the stateful helpers."""

import json
import os

import numpy as np
import pytest

from crnn import utils

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "utils.npz")
# The generator's inputs (ragged, so not stored).
SEQS = [[1, 2, 3, 4, 5], [6], [], [7, 8, 9]]
FEATURE_SEQS = [np.arange(6.0).reshape(3, 2), np.arange(4.0).reshape(2, 2) + 10]


def _golden():
    data = np.load(GOLDEN)
    return data, json.loads(str(data["__meta__"]))


def test_golden_records_versions():
    _, meta = _golden()
    assert meta["versions"]["keras"].startswith("3.") and "tensorflow" in meta["versions"]


@pytest.mark.parametrize("case", _golden()[1]["pad"], ids=lambda c: c["name"])
def test_pad_sequences_matches_keras(case):
    data, _ = _golden()
    seqs = FEATURE_SEQS if case["features"] else SEQS
    out = utils.pad_sequences(seqs, **case["kwargs"])
    expected = data[f"pad/{case['name']}"]
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("case", _golden()[1]["categorical"], ids=lambda c: c["name"])
def test_to_categorical_matches_keras(case):
    data, _ = _golden()
    out = utils.to_categorical(data[f"cat/{case['name']}/x"], **case["kwargs"])
    expected = data[f"cat/{case['name']}"]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("case", _golden()[1]["timeseries"], ids=lambda c: c["name"])
def test_timeseries_dataset_matches_keras(case):
    data, _ = _golden()
    name = case["name"]
    batches = list(utils.timeseries_dataset_from_array(data["ts/series"], data["ts/targets"], **case["kwargs"]))
    assert len(batches) == int(data[f"ts/{name}/count"])
    for k, (xb, yb) in enumerate(batches):
        np.testing.assert_array_equal(xb, data[f"ts/{name}/{k}/x"])
        np.testing.assert_array_equal(yb, data[f"ts/{name}/{k}/y"])


def test_timeseries_without_targets_yields_x_only_and_is_reiterable():
    ds = utils.timeseries_dataset_from_array(np.arange(10), None, 3, batch_size=4)
    first = [b.tolist() for b in ds]
    assert first == [b.tolist() for b in ds]
    assert len(ds) == 2 and first[1] == [[4, 5, 6], [5, 6, 7], [6, 7, 8], [7, 8, 9]]
    assert ds.y is None and ds.x.shape == (8, 3)


def test_timeseries_shuffle_is_a_seeded_permutation_of_the_windows():
    a = utils.timeseries_dataset_from_array(np.arange(30), np.arange(30), 4, shuffle=True, seed=3)
    b = utils.timeseries_dataset_from_array(np.arange(30), np.arange(30), 4, shuffle=True, seed=3)
    plain = utils.timeseries_dataset_from_array(np.arange(30), np.arange(30), 4)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, plain.x)
    np.testing.assert_array_equal(a.x[:, 0], a.y)  # each target still follows its window
    assert sorted(map(tuple, a.x)) == sorted(map(tuple, plain.x))


@pytest.mark.parametrize("kwargs, match", [
    ({"start_index": 40}, "start_index"),
    ({"end_index": 20}, "end_index"),
    ({"start_index": 5, "end_index": 5}, "end_index"),
    ({"sampling_rate": 0}, "sampling_rate"),
    ({"sequence_stride": 20}, "sequence_stride"),
    ({"batch_size": 0}, "batch_size"),
])
def test_timeseries_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        utils.timeseries_dataset_from_array(np.arange(20), None, 3, **kwargs)


def test_pad_sequences_errors_name_the_argument():
    with pytest.raises(ValueError, match="Padding type"):
        utils.pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match="Truncating type"):
        utils.pad_sequences(SEQS, truncating="both")
    with pytest.raises(ValueError, match="non-iterable"):
        utils.pad_sequences([[1], 3])
    with pytest.raises(ValueError, match="dtype=object"):
        utils.pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="expected shape"):
        utils.pad_sequences([np.ones((2, 2)), np.ones((2, 3))])


def test_pad_sequences_maxlen_zero_and_strings():
    assert utils.pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)
    out = utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert out.tolist() == [["a", "b"], ["<pad>", "c"]]


def test_to_categorical_errors():
    with pytest.raises(ValueError, match="num_classes"):
        utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="non-negative"):
        utils.to_categorical([-1, 0])
    with pytest.raises(ValueError, match="integer"):
        utils.to_categorical([0.5])


# ------------------------------------------------------------------ stateful helpers
def test_stateful_batches_rows_continue_across_batches():
    series = np.arange(101.0)
    x, y, steps = utils.stateful_batches(series, batch_size=4, timesteps=5)
    # 100 inputs + 1 target: 4 lanes of 25 -> 5 windows each; nothing trimmed.
    assert steps == 5 and x.shape == (20, 5, 1) and y.shape == (20, 1)
    for k in range(steps - 1):
        for i in range(4):
            assert x[(k + 1) * 4 + i, 0, 0] == x[k * 4 + i, -1, 0] + 1
    np.testing.assert_array_equal(y[:, 0], x[:, -1, 0] + 1)
    assert x[0, 0, 0] == 0 and x[-1, -1, 0] == 99


def test_stateful_batches_trim_policies_and_error():
    series = np.arange(23.0)  # 22 inputs for 2 lanes x 2 windows x 5 = 20: 2 extra
    x_start, _, _ = utils.stateful_batches(series, 2, 5, remainder="trim_start")
    x_end, y_end, _ = utils.stateful_batches(series, 2, 5, remainder="trim_end")
    assert x_start[0, 0, 0] == 2 and x_start[-1, -1, 0] == 21
    assert x_end[0, 0, 0] == 0 and x_end[-1, -1, 0] == 19 and y_end[-1, 0] == 20
    with pytest.raises(ValueError, match="remainder="):
        utils.stateful_batches(series, 2, 5, remainder="error")
    x_pad, y_pad, steps = utils.stateful_batches(series, 2, 5, remainder="pad_start", pad_value=-1)
    assert steps == 3 and x_pad[0, :, 0].tolist() == [-1, -1, -1, -1, -1, ][:5]
    assert x_pad[-1, -1, 0] == 21 and y_pad[-1, 0] == 22
    assert (x_pad == -1).sum() == 30 - 22


def test_stateful_batches_next_sequence_and_array_targets():
    series = np.stack([np.arange(41.0), -np.arange(41.0)], axis=1)
    x, y, _ = utils.stateful_batches(series, 2, 4, targets="next_sequence")
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    labels = np.arange(41) * 10
    x2, y2, _ = utils.stateful_batches(series, 2, 4, targets=labels, remainder="trim_end")
    np.testing.assert_array_equal(y2[:, 0], x2[:, -1, 0] * 10)
    x3, y3, _ = utils.stateful_batches(series, 2, 4, targets=None)
    assert y3 is None and x3.shape[1:] == (4, 2)


def test_stateful_batches_several_series_get_their_own_lanes():
    a, b = np.arange(17.0), 100 + np.arange(13.0)
    x, _, steps = utils.stateful_batches([a, b], batch_size=2, timesteps=4)
    # shortest series: 12 inputs -> 3 windows per lane.
    assert steps == 3
    assert x[0::2, :, 0].ravel().tolist() == list(np.arange(4.0, 16.0))
    assert x[1::2, :, 0].ravel().tolist() == list(100 + np.arange(12.0))
    with pytest.raises(ValueError, match="multiple of the number of series"):
        utils.stateful_batches([a, b], batch_size=3, timesteps=4)


def test_stateful_batches_too_short_says_the_minimum():
    with pytest.raises(ValueError, match="at least 21 values"):
        utils.stateful_batches(np.arange(10.0), batch_size=4, timesteps=5)


def test_check_stateful_order_accepts_stateful_batches_output():
    rng = np.random.default_rng(0)
    series = np.cumsum(rng.standard_normal(400))
    x, _, _ = utils.stateful_batches(series, batch_size=8, timesteps=10)
    report = utils.check_stateful_order(x, batch_size=8)
    assert report.ok and report.layout == "continuous"


def test_check_stateful_order_is_exact_for_sliding_windows():
    rng = np.random.default_rng(1)
    series = np.cumsum(rng.standard_normal(300))
    # stride 2, timesteps 8, batch 4: row i of batch k+1 starts 8 steps after row i of batch k.
    good = np.stack([series[2 * r:2 * r + 8] for r in range(64)])
    report = utils.check_stateful_order(good, batch_size=4)
    assert report.ok and report.layout == "sliding" and report.stride == 2
    stride1 = np.stack([series[r:r + 8] for r in range(64)])
    report = utils.check_stateful_order(stride1, batch_size=4)
    assert not report.ok and report.layout == "sliding" and "stateful_batches" in report.message
    # batch_size 1 with stride-1 windows re-feeds 7 steps every batch.
    assert not utils.check_stateful_order(stride1, batch_size=1).ok


def test_check_stateful_order_flags_lane_overlap_and_sequential_windows():
    series = np.arange(200.0)
    # lane i, window k starts at 50*i + 2*k: each lane's windows overlap by 4 steps.
    lanes = np.stack([series[50 * i + 2 * k: 50 * i + 2 * k + 6] for k in range(10) for i in range(4)])
    report = utils.check_stateful_order(lanes, batch_size=4)
    assert not report.ok and report.layout == "overlapping" and report.stride == 2
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.standard_normal(300))
    sequential = np.stack([walk[8 * i:8 * i + 8] for i in range(32)])
    report = utils.check_stateful_order(sequential, batch_size=4)
    assert not report.ok and report.layout == "sequential"
    # Exact layouts catch a single misplaced row.
    good = np.stack([walk[2 * r:2 * r + 8] for r in range(64)])
    good[[4, 5]] = good[[5, 4]]
    assert not utils.check_stateful_order(good, batch_size=4).ok


def test_check_stateful_order_rejects_partial_batches():
    with pytest.raises(ValueError, match="multiple of batch_size=4"):
        utils.check_stateful_order(np.zeros((10, 3)), batch_size=4)
