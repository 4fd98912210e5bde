"""crnn Sequential models against golden values computed by Keras 3.

tests/golden/model_golden.npz was written once by tests/golden/make_model_golden.py
(see tests/golden/README.md); Keras is not needed here. Each architecture below is the crnn
twin of the Keras model of the same name in the generator, written the way a Keras user
would write it. The Keras weights are loaded with ``set_weights``, and crnn must reproduce
Keras's predictions, ``train_on_batch`` losses and updated weights, and the stateful
behaviour.

Keras ran in float64 on float32-valued inputs and weights, and crnn runs in its default
float32, so the tolerance is float32 rounding. Keras itself in float32 stays within 3e-7 of
these values.
"""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import layers as L

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden",
                      "model_golden.npz")
# Relative to the largest magnitude of the expected array (at least 1).
TOLERANCE = 1e-5


def _load():
    with np.load(GOLDEN, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))["cases"]
    cases = {}
    for name, options in meta.items():
        prefix = name + "/"
        cases[name] = (options, {key[len(prefix):]: value for key, value in arrays.items()
                                 if key.startswith(prefix)})
    return cases


CASES = _load()


def _weights(case, prefix=""):
    keys = sorted(k for k in case if k.startswith(prefix + "w") and k[len(prefix) + 1:].isdigit())
    return [case[k] for k in keys]


def _assert_close(what, actual, expected):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE * scale, err_msg=what)


def _assert_weights_close(what, model, expected):
    actual = model.get_weights()
    assert len(actual) == len(expected), f"{what}: {len(actual)} weights, Keras has {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected)):
        _assert_close(f"{what}, weight {k}", a, e)


# --------------------------------------------------------------------------- architectures
# The crnn twins of make_model_golden.architectures(). The first layers declare their
# input in the three ways Keras users do: Input(shape=...), input_shape=..., and
# batch_input_shape=... (the stateful model).

ARCHITECTURES = {
    "lstm_seq_dense": lambda: [L.Input(shape=(5, 2)), L.LSTM(4, return_sequences=True),
                               L.Dense(1)],
    "gru_softmax": lambda: [L.GRU(3, input_shape=(4, 2)), L.Dense(2, activation="softmax")],
    "simple_rnn_stacked": lambda: [L.SimpleRNN(3, activation="relu", return_sequences=True,
                                               input_shape=(5, 3)),
                                   L.SimpleRNN(2), L.Dense(1)],
    "gru_reset_before_backwards": lambda: [L.Input(shape=(5, 2)),
                                           L.GRU(3, reset_after=False, go_backwards=True),
                                           L.Dense(1)],
    "lstm_options": lambda: [L.LSTM(3, activation="relu", recurrent_activation="hard_sigmoid",
                                    use_bias=False, go_backwards=True, return_sequences=True,
                                    input_shape=(4, 3)),
                             L.Dense(2, activation="tanh")],
    "lstm_dropout_inference": lambda: [L.Input(shape=(4, 2)),
                                       L.LSTM(3, dropout=0.5, recurrent_dropout=0.3,
                                              return_sequences=True),
                                       L.Dropout(0.5), L.Dense(1)],
    "bidir_lstm_concat": lambda: [L.Input(shape=(5, 2)),
                                  L.Bidirectional(L.LSTM(3, return_sequences=True),
                                                  merge_mode="concat"),
                                  L.Dense(1)],
    "bidir_gru_sum": lambda: [L.Input(shape=(4, 3)),
                              L.Bidirectional(L.GRU(2), merge_mode="sum"), L.Dense(1)],
    "bidir_simple_rnn_mul": lambda: [L.Input(shape=(4, 2)),
                                     L.Bidirectional(L.SimpleRNN(2, return_sequences=True),
                                                     merge_mode="mul")],
    "bidir_lstm_ave": lambda: [L.Input(shape=(4, 2)),
                               L.Bidirectional(L.LSTM(2), merge_mode="ave")],
    "embedding_mask_lstm": lambda: [L.Embedding(7, 3, mask_zero=True, input_shape=(6,)),
                                    L.LSTM(4), L.Dense(1)],
    "embedding_mask_lstm_sequences": lambda: [L.Input(shape=(6,), dtype="int64"),
                                              L.Embedding(7, 3, mask_zero=True),
                                              L.LSTM(3, return_sequences=True),
                                              L.TimeDistributed(L.Dense(2))],
    "embedding_mask_bidir_lstm": lambda: [L.Input(shape=(6,), dtype="int64"),
                                          L.Embedding(7, 2, mask_zero=True),
                                          L.Bidirectional(L.LSTM(2, return_sequences=True)),
                                          L.Dense(1)],
    "masking_gru": lambda: [L.Masking(mask_value=0.0, input_shape=(6, 2)),
                            L.GRU(3, return_sequences=True), L.Dense(1)],
    "masking_simple_rnn_backwards": lambda: [L.Input(shape=(6, 2)), L.Masking(mask_value=0.0),
                                             L.SimpleRNN(3, go_backwards=True), L.Dense(1)],
    "time_distributed_dense_lstm": lambda: [L.Input(shape=(5, 3)),
                                            L.TimeDistributed(L.Dense(4, activation="tanh")),
                                            L.LSTM(2), L.Dense(1)],
    "train_lstm_mse": lambda: [L.Input(shape=(4, 2)), L.LSTM(3, return_sequences=True),
                               L.Dense(1)],
    "train_gru_categorical": lambda: [L.GRU(3, input_shape=(4, 2)),
                                      L.Dense(3, activation="softmax")],
    "train_simple_rnn_sparse": lambda: [L.Input(shape=(4, 2)), L.SimpleRNN(3),
                                        L.Dense(3, activation="softmax")],
    "train_lstm_binary": lambda: [L.Input(shape=(4, 2)), L.LSTM(3),
                                  L.Dense(1, activation="sigmoid")],
    # The golden training cases use Keras's dense Embedding gradient (see the generator):
    # crnn's sparse_gradient=False option; tests/test_keras_users_embedding.py covers the
    # default (TensorFlow's per-row IndexedSlices).
    "train_embedding_lstm_binary": lambda: [L.Input(shape=(6,), dtype="int64"),
                                            L.Embedding(7, 3, mask_zero=True,
                                                        sparse_gradient=False), L.LSTM(3),
                                            L.Dense(1, activation="sigmoid")],
    "train_bidir_gru_mse": lambda: [L.Input(shape=(4, 2)),
                                    L.Bidirectional(L.GRU(2), merge_mode="concat"),
                                    L.Dense(1)],
    "train_logits_sparse": lambda: [L.Input(shape=(4, 2)), L.GRU(3), L.Dense(3)],
}


def _inputs(x):
    # Token ids stay integers; float inputs go in as float32 (their values are float32).
    return x if x.dtype.kind in "iu" else x.astype(np.float32)


def _build(architecture, case, prefix=""):
    model = crnn.Sequential(ARCHITECTURES[architecture]())
    expected = _weights(case, prefix)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [w.shape for w in expected], "weight list differs from Keras's"
    model.set_weights(expected)
    return model


def _names(kind):
    return sorted(name for name, (options, _) in CASES.items() if options["kind"] == kind)


@pytest.mark.parametrize("name", _names("predict"))
def test_predict_matches_keras(name):
    options, case = CASES[name]
    model = _build(options["architecture"], case)
    pred = model.predict(_inputs(case["x"]), batch_size=options["batch_size"], verbose=0)
    _assert_close("predict", pred, case["pred"])
    # Calling the model directly is the other way Keras users run it.
    _assert_close("model(x)", model(_inputs(case["x"])), case["pred"])


def _loss(identifier):
    if identifier == "sparse_from_logits":
        return crnn.losses.SparseCategoricalCrossentropy(from_logits=True)
    return identifier


@pytest.mark.parametrize("name", _names("train"))
def test_train_on_batch_matches_keras(name):
    options, case = CASES[name]
    model = _build(options["architecture"], case)
    optimizer = getattr(crnn.optimizers, options["optimizer"])(**options["optimizer_config"])
    model.compile(optimizer=optimizer, loss=_loss(options["loss"]))
    for step in range(3):
        loss = model.train_on_batch(_inputs(case[f"x{step}"]), case[f"y{step}"])
        _assert_close(f"loss of step {step + 1}", np.asarray(loss, dtype=float).reshape(()),
                      case["loss"][step])
        if step in (0, 2):
            _assert_weights_close(f"weights after step {step + 1}", model,
                                  _weights(case, f"step{step + 1}_"))


def _stateful_model():
    return crnn.Sequential([
        L.LSTM(4, stateful=True, return_sequences=True, batch_input_shape=(2, 3, 2)),
        L.LSTM(3, stateful=True),
        L.Dense(1),
    ])


def test_stateful_predict_carries_states_like_keras():
    _, case = CASES["stateful_lstm"]
    model = _stateful_model()
    model.set_weights(_weights(case))
    x = _inputs(case["x"])
    _assert_close("first predict", model.predict(x, batch_size=2, verbose=0), case["pred1"])
    _assert_close("second predict (states carried)", model.predict(x, batch_size=2, verbose=0),
                  case["pred2"])
    model.reset_states()
    _assert_close("predict after reset_states", model.predict(x, batch_size=2, verbose=0),
                  case["pred3"])
    model.reset_states()
    _assert_close("4 samples in batches of 2",
                  model.predict(_inputs(case["x4"]), batch_size=2, verbose=0), case["pred4"])


def test_stateful_train_on_batch_carries_states_like_keras():
    _, case = CASES["stateful_lstm"]
    model = _stateful_model()
    model.set_weights(_weights(case))
    model.compile(optimizer=crnn.optimizers.SGD(learning_rate=0.1), loss="mse")
    first = model.train_on_batch(_inputs(case["x"]), case["y0"])
    second = model.train_on_batch(_inputs(case["x_next"]), case["y1"])
    _assert_close("losses", np.array([first, second], dtype=float), case["loss"])
    _assert_weights_close("weights after two stateful steps", model,
                          _weights(case, "trained_"))
    # No reset: the prediction starts from the states that training left.
    _assert_close("predict after training", model.predict(_inputs(case["x"]), batch_size=2,
                                                          verbose=0), case["pred5"])
