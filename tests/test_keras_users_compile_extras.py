"""``activity_regularizer``, ``compile(loss_weights=..., weighted_metrics=...)`` and
``AUC(multi_label=True, num_labels=..., label_weights=...)`` against Keras 3 on TensorFlow
(tests/keras_users_golden/make_compile_extras.py): reported losses and metrics of
``train_on_batch``, ``fit`` and ``evaluate``, weights after training, the models rebuilt from
Keras's own configs; error paths and config round trips."""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn import metrics, regularizers

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "compile_extras.npz")
with np.load(GOLDEN) as _data:
    META = json.loads(str(_data["__meta__"]))


def _compiled(case, data):
    model = crnn.Sequential.from_config(case["config"])
    model.set_weights([data[f"{case['name']}/w{k}"] for k in range(case["num_weights"])])
    model.compile(crnn.optimizers.get({"class_name": case["optimizer"], "config": {"learning_rate": 0.05}}),
                  case["loss"], **case["compile"])
    return model


def _assert_logs(logs, data, prefix):
    expected = {key[len(prefix):]: data[key] for key in data.files if key.startswith(prefix)}
    assert sorted(logs) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(logs[key], value, rtol=5e-5, atol=2e-6, err_msg=f"{prefix}{key}")


@pytest.mark.parametrize("case", META["models"], ids=lambda c: c["name"])
def test_training_matches_keras(case):
    name = case["name"]
    with np.load(GOLDEN) as data:
        model = _compiled(case, data)
        for step in range(3):
            sw = data[f"{name}/sw{step}"] if case["weighted"] else None
            logs = model.train_on_batch(data[f"{name}/x{step}"], data[f"{name}/y{step}"], sample_weight=sw,
                                        return_dict=True)
            _assert_logs(logs, data, f"{name}/train{step}/")
            for k, w in enumerate(model.get_weights()):
                np.testing.assert_allclose(w, data[f"{name}/step{step}/{k}"], rtol=1e-4, atol=2e-6,
                                           err_msg=f"{name} step {step} weight {k}")
        sw = data[f"{name}/fit_sw"] if case["weighted"] else None
        validation = (data[f"{name}/val_x"], data[f"{name}/val_y"]) + (
            (data[f"{name}/val_sw"],) if case["weighted"] else ())
        history = model.fit(data[f"{name}/fit_x"], data[f"{name}/fit_y"], sample_weight=sw, batch_size=4,
                            epochs=2, shuffle=False, verbose=0, validation_data=validation)
        _assert_logs(history.history, data, f"{name}/fit/")
        for k, w in enumerate(model.get_weights()):
            np.testing.assert_allclose(w, data[f"{name}/fit_w/{k}"], rtol=1e-4, atol=2e-6,
                                       err_msg=f"{name} fit weight {k}")
        logs = model.evaluate(data[f"{name}/fit_x"], data[f"{name}/fit_y"], sample_weight=sw, batch_size=4,
                              verbose=0, return_dict=True)
        _assert_logs(logs, data, f"{name}/eval/")


@pytest.mark.parametrize("case", META["auc"], ids=lambda c: c["name"])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_multi_label_and_label_weights_match_keras(case, weighted):
    with np.load(GOLDEN) as data:
        metric = metrics.AUC(**case["kwargs"])
        pred = data["auc/logits"] if case["kwargs"].get("from_logits") else data["auc/y_pred"]
        results = []
        for batch in range(3):
            metric.update_state(data["auc/y_true"][batch], pred[batch],
                                sample_weight=data["auc/sw"][batch] if weighted else None)
            results.append(metric.result())
        np.testing.assert_allclose(results, data[f"auc/{case['name']}/{int(weighted)}"], rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("case", META["auc"], ids=lambda c: c["name"])
def test_auc_from_keras_config_round_trips(case):
    metric = metrics.deserialize({"class_name": "AUC", "config": case["config"]})
    again = metrics.deserialize({"class_name": "AUC", "config": metric.get_config()})
    for key in ("multi_label", "num_labels", "label_weights", "num_thresholds", "curve"):
        assert again.get_config()[key] == metric.get_config()[key] == case["config"][key], key


@pytest.mark.parametrize("make, match", [
    (lambda: metrics.AUC(num_labels=3), "num_labels.*only when `multi_label` is True"),
    (lambda: metrics.AUC(multi_label=True, num_labels=0), "num_labels"),
    (lambda: metrics.AUC(label_weights=[1.0, -0.5]), "label_weights.*non-negative"),
    (lambda: metrics.AUC(label_weights=[[1.0]]), "label_weights"),
    (lambda: metrics.AUC(multi_label=True, num_labels=2, label_weights=[1.0, 2.0, 3.0]), "label_weights"),
])
def test_auc_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_auc_multi_label_refuses_other_shapes_and_keeps_its_counts():
    metric = metrics.AUC(multi_label=True, num_labels=2)
    with pytest.raises(ValueError, match="with 2 labels"):
        metric.update_state(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(samples, labels\)"):
        metric.update_state(np.zeros((4, 2, 1)), np.zeros((4, 2, 1)))
    assert metric.true_positives.shape == (200, 2) and not metric.true_positives.any()
    with pytest.raises(ValueError, match="label_weights"):
        metrics.AUC(label_weights=[1.0, 2.0]).update_state(np.zeros((4, 3)), np.zeros((4, 3)))


def test_auc_multi_label_perfect_and_reversed_labels():
    metric = metrics.AUC(multi_label=True)
    assert metric.result() == 0.0
    y = np.array([[0, 1], [1, 0], [0, 1], [1, 0]], dtype=float)
    # label 0 ranked perfectly (AUC 1), label 1 ranked backwards (AUC 0): mean 0.5.
    metric.update_state(y, np.array([[0.1, 0.2], [0.9, 0.8], [0.2, 0.1], [0.8, 0.9]]))
    assert metric.result() == pytest.approx(0.5, abs=1e-6)
    metric.reset_state()
    assert metric.true_positives.shape == (200, 2) and not metric.true_positives.any()


@pytest.mark.parametrize("value, match", [
    (2, "float"), ([0.5, 0.5], "must match the number of losses"), ([], "must match the number of losses"),
    ({"a": 1.0, "b": 2.0}, "must match the number of losses"), ("0.5", "float"), ([float("nan")], "finite"),
])
def test_bad_loss_weights_raise_before_anything_changes(value, match):
    model = crnn.Sequential([L.Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=match):
        model.compile("adam", "mae", loss_weights=value)
    assert model.loss.name == "mean_squared_error" or model.loss.name == "mse"
    assert model._loss_weight is None


def test_bad_weighted_metrics_raise():
    model = crnn.Sequential([L.Dense(1, input_shape=(3,))])
    with pytest.raises(TypeError, match="weighted_metrics must be a list"):
        model.compile("sgd", "mse", weighted_metrics="mae")
    with pytest.raises(ValueError):
        model.compile("sgd", "mse", weighted_metrics=["no_such_metric"])
    assert model.optimizer is None


def test_loss_weight_scales_loss_and_gradient_but_not_penalties():
    x = np.random.default_rng(0).standard_normal((6, 3)).astype("float32")
    y = np.random.default_rng(1).standard_normal((6, 1)).astype("float32")
    losses = []
    for weight in (None, 3.0):
        model = crnn.Sequential([L.Dense(1, input_shape=(3,), kernel_initializer="ones",
                                         kernel_regularizer=regularizers.L2(0.1))])
        model.compile("sgd", "mse", **({} if weight is None else {"loss_weights": {"any": weight}}))
        losses.append(model.evaluate(x, y, verbose=0))
    penalty = 0.1 * 3
    assert losses[1] - penalty == pytest.approx(3.0 * (losses[0] - penalty), rel=1e-6)


def test_weighted_metrics_names_follow_keras():
    model = crnn.Sequential([L.Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse", metrics=["mae", "mae"], weighted_metrics={"out": "mae", "b": "mse"})
    # Keras 3.15 reports: loss, mae, mae_1, mse, weighted_mae (dict values in key order).
    assert model.metrics_names == ["loss", "mae", "mae_1", "mse", "weighted_mae"]


def test_compile_extras_survive_save_and_load(tmp_path):
    model = crnn.Sequential([L.Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse", loss_weights=[0.25], weighted_metrics=["mae"])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = crnn.models.load_model(path)
    assert loaded._loss_weight == 0.25 and loaded.metrics_names == ["loss", "mae"]
    assert [m.name for m in loaded.weighted_metrics] == ["mae"]
    x, y, sw = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"), np.array([1.0, 0.0, 2.0, 1.0])
    np.testing.assert_allclose(loaded.evaluate(x, y, sample_weight=sw, verbose=0),
                               model.evaluate(x, y, sample_weight=sw, verbose=0))


def test_activity_regularizer_config_round_trips_in_keras_form():
    layer = L.LSTM(3, activity_regularizer="l2")
    config = layer.get_config()
    assert config["activity_regularizer"]["class_name"] == "L2"
    assert config["activity_regularizer"]["config"] == {"l2": 0.01}
    again = L.LSTM.from_config(config)
    assert isinstance(again.activity_regularizer, regularizers.L2) and again.activity_regularizer.l2 == 0.01
    assert "activity_regularizer" not in L.LSTM(3).get_config()


def test_activity_regularizer_is_refused_inside_time_distributed_and_on_inputs():
    # Keras 3's TimeDistributed runs the inner layer's call(), skipping its activity loss.
    model = crnn.Sequential([crnn.Input((4, 3))])
    with pytest.raises(NotImplementedError, match="activity_regularizer.*TimeDistributed"):
        model.add(L.TimeDistributed(L.Dense(2, activity_regularizer="l1")))
    assert model.layers == []
    model.add(L.TimeDistributed(L.Dense(2), activity_regularizer="l1"))     # on the wrapper: fine
    model.add(L.Bidirectional(L.LSTM(2, activity_regularizer="l2")))        # golden-tested above
    with pytest.raises(NotImplementedError, match="activity_regularizer"):
        crnn.Sequential([crnn.Input((4, 3), activity_regularizer="l2")])
    assert crnn.Sequential.from_config(model.get_config()).layers[1].forward_layer.activity_regularizer.l2 == 0.01
    with pytest.raises(ValueError):
        L.Dense(2, activity_regularizer="no_such")


def test_activity_penalty_is_in_evaluate_and_divided_by_the_batch():
    x = np.full((5, 2), 1.0, "float32")
    model = crnn.Sequential([L.Dense(3, input_shape=(2,), kernel_initializer="ones", bias_initializer="zeros",
                                     activity_regularizer=regularizers.L1(0.5))])
    model.compile("sgd", "mse")
    # outputs are all 2; mse against 2 is 0; L1 penalty 0.5 * (5*3*2) / 5 = 3.
    assert model.evaluate(x, np.full((5, 3), 2.0), batch_size=5, verbose=0) == pytest.approx(3.0)
