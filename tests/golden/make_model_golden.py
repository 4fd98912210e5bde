"""Generate tests/golden/model_golden.npz: Keras 3 Sequential-model golden values.

Run once, by hand, from the repository root (needs keras>=3 with TensorFlow):

    python tests/golden/make_model_golden.py

tests/test_golden_models.py builds the same architectures with crnn's Keras-like API, loads
the stored weights with ``set_weights`` and compares; it never imports Keras.

Keras runs in float64 here (``keras.config.set_floatx("float64")``) so that the stored values
are the exact answer, while every stored input and weight is a float32 number: a crnn model
in its default float32 receives exactly the same numbers and must land within float32
rounding of the result.

Three kinds of case, each under keys ``"<case>/<name>"``:

* ``predict``: ``x``, the initial weights ``w00, w01, ...`` (``model.get_weights()`` order)
  and ``pred = model.predict(x, batch_size)``.
* ``train``: ``x0..x2``, ``y0..y2`` (three batches), initial weights ``w..``; ``loss``
  (3,): the values ``train_on_batch`` returned for the three steps; ``step1_w..`` and
  ``step3_w..``: the weights after the first and after the third step.
* ``stateful``: see ``stateful_case``.

Embedding gradients: on TensorFlow, Keras hands the optimizer an ``Embedding``'s gradient as
``tf.IndexedSlices``, one row per token occurrence, duplicates not summed. Adam, RMSprop and
Adagrad then square each occurrence's row separately (sum of squares instead of the square
of the sum), and clipnorm measures the norm of the unsummed rows. That is a TensorFlow
artefact: on the JAX and PyTorch backends, and in the optimizers' documented formulas, the
gradient is the dense array. The training cases here use the dense gradient
(``dense_gradients``), so they show the documented Keras update on every backend. For
SGD the two agree.

``"__meta__"`` is a JSON string (0-d unicode array, loadable with ``allow_pickle=False``)
with each case's kind, batch size, optimizer and loss, and the generator and library
versions (``tests/golden_meta.py``).
"""

import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_golden.npz")


def case_seed(name):
    """A seed per case name, so adding a case leaves the others' data unchanged."""
    return zlib.crc32(name.encode())


def f32(a):
    """Round to float32 values, stored as float64 for Keras."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def token_ids():
    # 0 is the padding id: leading zeros (row 1), a gap (row 0), trailing zeros (row 2).
    return np.array([[3, 1, 0, 0, 5, 2],
                     [0, 0, 4, 6, 1, 3],
                     [2, 5, 6, 1, 0, 0]], dtype=np.int64)


def masked_floats(rng, shape):
    """Float inputs where some whole timesteps are 0.0, for ``Masking(mask_value=0.0)``."""
    x = f32(rng.standard_normal(shape))
    x[0, 2] = 0.0
    x[1, :2] = 0.0
    x[2, 4:] = 0.0
    return x


# --------------------------------------------------------------------------- architectures
# Each builder takes the keras module and returns an unbuilt list of layers after an Input.
# tests/test_golden_models.py has the crnn twin of every one of them, under the same name.


def architectures(k):
    L = k.layers
    return {
        "lstm_seq_dense": lambda: [k.Input((5, 2)), L.LSTM(4, return_sequences=True),
                                   L.Dense(1)],
        "gru_softmax": lambda: [k.Input((4, 2)), L.GRU(3), L.Dense(2, activation="softmax")],
        "simple_rnn_stacked": lambda: [k.Input((5, 3)),
                                       L.SimpleRNN(3, activation="relu", return_sequences=True),
                                       L.SimpleRNN(2), L.Dense(1)],
        "gru_reset_before_backwards": lambda: [k.Input((5, 2)),
                                               L.GRU(3, reset_after=False, go_backwards=True),
                                               L.Dense(1)],
        "lstm_options": lambda: [k.Input((4, 3)),
                                 L.LSTM(3, activation="relu",
                                        recurrent_activation="hard_sigmoid", use_bias=False,
                                        go_backwards=True, return_sequences=True),
                                 L.Dense(2, activation="tanh")],
        "lstm_dropout_inference": lambda: [k.Input((4, 2)),
                                           L.LSTM(3, dropout=0.5, recurrent_dropout=0.3,
                                                  return_sequences=True),
                                           L.Dropout(0.5), L.Dense(1)],
        "bidir_lstm_concat": lambda: [k.Input((5, 2)),
                                      L.Bidirectional(L.LSTM(3, return_sequences=True),
                                                      merge_mode="concat"),
                                      L.Dense(1)],
        "bidir_gru_sum": lambda: [k.Input((4, 3)),
                                  L.Bidirectional(L.GRU(2), merge_mode="sum"), L.Dense(1)],
        "bidir_simple_rnn_mul": lambda: [k.Input((4, 2)),
                                         L.Bidirectional(L.SimpleRNN(2, return_sequences=True),
                                                         merge_mode="mul")],
        "bidir_lstm_ave": lambda: [k.Input((4, 2)),
                                   L.Bidirectional(L.LSTM(2), merge_mode="ave")],
        "embedding_mask_lstm": lambda: [k.Input((6,), dtype="int64"),
                                        L.Embedding(7, 3, mask_zero=True), L.LSTM(4),
                                        L.Dense(1)],
        "embedding_mask_lstm_sequences": lambda: [k.Input((6,), dtype="int64"),
                                                  L.Embedding(7, 3, mask_zero=True),
                                                  L.LSTM(3, return_sequences=True),
                                                  L.TimeDistributed(L.Dense(2))],
        "embedding_mask_bidir_lstm": lambda: [k.Input((6,), dtype="int64"),
                                              L.Embedding(7, 2, mask_zero=True),
                                              L.Bidirectional(
                                                  L.LSTM(2, return_sequences=True)),
                                              L.Dense(1)],
        "masking_gru": lambda: [k.Input((6, 2)), L.Masking(mask_value=0.0),
                                L.GRU(3, return_sequences=True), L.Dense(1)],
        "masking_simple_rnn_backwards": lambda: [k.Input((6, 2)), L.Masking(mask_value=0.0),
                                                 L.SimpleRNN(3, go_backwards=True),
                                                 L.Dense(1)],
        "time_distributed_dense_lstm": lambda: [k.Input((5, 3)),
                                                L.TimeDistributed(L.Dense(4, activation="tanh")),
                                                L.LSTM(2), L.Dense(1)],
        # Training architectures.
        "train_lstm_mse": lambda: [k.Input((4, 2)), L.LSTM(3, return_sequences=True),
                                   L.Dense(1)],
        "train_gru_categorical": lambda: [k.Input((4, 2)), L.GRU(3),
                                          L.Dense(3, activation="softmax")],
        "train_simple_rnn_sparse": lambda: [k.Input((4, 2)), L.SimpleRNN(3),
                                            L.Dense(3, activation="softmax")],
        "train_lstm_binary": lambda: [k.Input((4, 2)), L.LSTM(3),
                                      L.Dense(1, activation="sigmoid")],
        "train_embedding_lstm_binary": lambda: [k.Input((6,), dtype="int64"),
                                                L.Embedding(7, 3, mask_zero=True), L.LSTM(3),
                                                L.Dense(1, activation="sigmoid")],
        "train_bidir_gru_mse": lambda: [k.Input((4, 2)),
                                        L.Bidirectional(L.GRU(2), merge_mode="concat"),
                                        L.Dense(1)],
        "train_logits_sparse": lambda: [k.Input((4, 2)), L.GRU(3), L.Dense(3)],
    }


PREDICT_CASES = [
    # (architecture, x kind, batch size for predict)
    ("lstm_seq_dense", (3, 5, 2), 2),
    ("gru_softmax", (3, 4, 2), 3),
    ("simple_rnn_stacked", (3, 5, 3), 2),
    ("gru_reset_before_backwards", (2, 5, 2), 2),
    ("lstm_options", (3, 4, 3), 2),
    ("lstm_dropout_inference", (3, 4, 2), 2),
    ("bidir_lstm_concat", (3, 5, 2), 2),
    ("bidir_gru_sum", (3, 4, 3), 3),
    ("bidir_simple_rnn_mul", (2, 4, 2), 2),
    ("bidir_lstm_ave", (3, 4, 2), 2),
    ("embedding_mask_lstm", "tokens", 3),
    ("embedding_mask_lstm_sequences", "tokens", 2),
    ("embedding_mask_bidir_lstm", "tokens", 3),
    ("masking_gru", "masked", 3),
    ("masking_simple_rnn_backwards", "masked", 2),
    ("time_distributed_dense_lstm", (3, 5, 3), 2),
]

# (case name, architecture, optimizer class name, optimizer kwargs, loss, compile kwargs)
TRAIN_CASES = [
    ("sgd_momentum_mse", "train_lstm_mse", "SGD",
     dict(learning_rate=0.1, momentum=0.9), "mse"),
    ("sgd_nesterov_clipnorm_mse", "train_lstm_mse", "SGD",
     dict(learning_rate=0.1, momentum=0.5, nesterov=True, clipnorm=0.05), "mse"),
    ("sgd_plain_global_clipnorm_mse", "train_bidir_gru_mse", "SGD",
     dict(learning_rate=0.2, global_clipnorm=0.1), "mse"),
    ("adam_categorical", "train_gru_categorical", "Adam",
     dict(learning_rate=0.05), "categorical_crossentropy"),
    ("adam_global_clipnorm_categorical", "train_gru_categorical", "Adam",
     dict(learning_rate=0.05, global_clipnorm=0.05), "categorical_crossentropy"),
    ("adam_clipnorm_embedding_binary", "train_embedding_lstm_binary", "Adam",
     dict(learning_rate=0.02, beta_1=0.8, beta_2=0.99, clipnorm=0.05),
     "binary_crossentropy"),
    ("sgd_momentum_embedding_binary", "train_embedding_lstm_binary", "SGD",
     dict(learning_rate=0.5, momentum=0.9), "binary_crossentropy"),
    ("rmsprop_global_clipnorm_embedding_binary", "train_embedding_lstm_binary", "RMSprop",
     dict(learning_rate=0.01, global_clipnorm=0.05), "binary_crossentropy"),
    ("rmsprop_sparse", "train_simple_rnn_sparse", "RMSprop",
     dict(learning_rate=0.01), "sparse_categorical_crossentropy"),
    ("rmsprop_momentum_centered_clipnorm_sparse", "train_simple_rnn_sparse", "RMSprop",
     dict(learning_rate=0.01, momentum=0.5, centered=True, clipnorm=0.1),
     "sparse_categorical_crossentropy"),
    ("adagrad_binary", "train_lstm_binary", "Adagrad",
     dict(learning_rate=0.1), "binary_crossentropy"),
    ("adagrad_global_clipnorm_binary", "train_lstm_binary", "Adagrad",
     dict(learning_rate=0.1, global_clipnorm=0.05), "binary_crossentropy"),
    ("sgd_clipvalue_mse", "train_lstm_mse", "SGD",
     dict(learning_rate=0.1, clipvalue=0.02), "mse"),
    ("adam_sparse_from_logits", "train_logits_sparse", "Adam",
     dict(learning_rate=0.05), "sparse_from_logits"),
]


def make_inputs(rng, kind):
    if kind == "tokens":
        return token_ids()
    if kind == "masked":
        return masked_floats(rng, (3, 6, 2))
    return f32(rng.standard_normal(kind))


def build(keras, arch, rng):
    model = keras.Sequential(architectures(keras)[arch]())
    weights = [f32(0.6 * rng.standard_normal(w.shape)) for w in model.get_weights()]
    model.set_weights(weights)
    return model, weights


def put_weights(arrays, prefix, weights):
    for k, w in enumerate(weights):
        arrays[f"{prefix}w{k:02d}"] = np.asarray(w)


def predict_case(keras, name, kind, batch_size, seed, arrays):
    rng = np.random.default_rng(seed)
    model, weights = build(keras, name, rng)
    x = make_inputs(rng, kind)
    arrays[f"{name}/x"] = x
    put_weights(arrays, f"{name}/", weights)
    arrays[f"{name}/pred"] = model.predict(x, batch_size=batch_size, verbose=0)
    return dict(kind="predict", architecture=name, batch_size=batch_size)


def train_targets(rng, loss, batch, output_shape):
    if loss == "mse":
        return f32(rng.standard_normal((batch,) + output_shape))
    if loss == "categorical_crossentropy":
        return np.eye(output_shape[-1])[rng.integers(0, output_shape[-1], batch)]
    if loss in ("sparse_categorical_crossentropy", "sparse_from_logits"):
        return rng.integers(0, output_shape[-1], batch).astype(np.int64)
    return rng.integers(0, 2, (batch, 1)).astype(np.float64)


def dense_gradients(optimizer):
    """Make ``optimizer`` receive dense gradients, even for an Embedding's table."""
    import tensorflow as tf

    apply = optimizer.apply

    def apply_dense(grads, trainable_variables=None):
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        return apply(grads, trainable_variables)

    optimizer.apply = apply_dense
    return optimizer


def train_case(keras, name, arch, opt_name, opt_kwargs, loss, seed, arrays):
    rng = np.random.default_rng(seed)
    model, weights = build(keras, arch, rng)
    optimizer = dense_gradients(getattr(keras.optimizers, opt_name)(**opt_kwargs))
    keras_loss = loss
    if loss == "sparse_from_logits":
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=keras_loss)
    put_weights(arrays, f"{name}/", weights)
    batch = 3
    kind = "tokens" if "embedding" in arch else (batch, 4, 2)
    losses = []
    for step in range(3):
        x = make_inputs(rng, kind)
        if kind == "tokens":
            x = rng.permutation(x, axis=0)
        y = train_targets(rng, loss, batch, tuple(model.output_shape[1:]))
        arrays[f"{name}/x{step}"] = x
        arrays[f"{name}/y{step}"] = y
        losses.append(float(model.train_on_batch(x, y)))
        if step in (0, 2):
            put_weights(arrays, f"{name}/step{step + 1}_", model.get_weights())
    arrays[f"{name}/loss"] = np.array(losses)
    return dict(kind="train", architecture=arch, optimizer=opt_name, optimizer_config=opt_kwargs,
                loss=loss)


def stateful_case(keras, seed, arrays):
    """Stateful LSTM, batch shape (2, 3, 2).

    Stores ``x`` (2, 3, 2), ``x4`` (4, 3, 2), weights ``w..`` and: ``pred1``, ``pred2``: two
    consecutive ``predict(x)`` (states carry); ``pred3``: ``predict(x)`` after
    ``reset_states``; ``pred4``: after another reset, ``predict(x4, batch_size=2)`` (state
    carries from the first batch of two into the second); then, after a reset,
    ``train_on_batch`` on (x, y0) then (x_next, y1) with SGD(0.1): ``loss`` (2,) and
    ``trained_w..``; finally ``pred5 = predict(x)`` without a reset (states left by training).
    """
    name = "stateful_lstm"
    rng = np.random.default_rng(seed)
    L = keras.layers
    model = keras.Sequential([keras.Input(batch_shape=(2, 3, 2)),
                              L.LSTM(4, stateful=True, return_sequences=True),
                              L.LSTM(3, stateful=True), L.Dense(1)])
    weights = [f32(0.6 * rng.standard_normal(w.shape)) for w in model.get_weights()]
    model.set_weights(weights)

    def reset():
        for layer in model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    x = f32(rng.standard_normal((2, 3, 2)))
    x_next = f32(rng.standard_normal((2, 3, 2)))
    x4 = f32(rng.standard_normal((4, 3, 2)))
    y0, y1 = f32(rng.standard_normal((2, 1))), f32(rng.standard_normal((2, 1)))
    put_weights(arrays, f"{name}/", weights)
    arrays.update({f"{name}/x": x, f"{name}/x_next": x_next, f"{name}/x4": x4,
                   f"{name}/y0": y0, f"{name}/y1": y1})
    arrays[f"{name}/pred1"] = model.predict(x, batch_size=2, verbose=0)
    arrays[f"{name}/pred2"] = model.predict(x, batch_size=2, verbose=0)
    reset()
    arrays[f"{name}/pred3"] = model.predict(x, batch_size=2, verbose=0)
    reset()
    arrays[f"{name}/pred4"] = model.predict(x4, batch_size=2, verbose=0)
    reset()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    losses = [float(model.train_on_batch(x, y0)), float(model.train_on_batch(x_next, y1))]
    arrays[f"{name}/loss"] = np.array(losses)
    put_weights(arrays, f"{name}/trained_", model.get_weights())
    arrays[f"{name}/pred5"] = model.predict(x, batch_size=2, verbose=0)
    return name, dict(kind="stateful", architecture=name, batch_size=2, optimizer="SGD",
                      optimizer_config=dict(learning_rate=0.1), loss="mse")


def main():
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.config.set_floatx("float64")
    keras.utils.set_random_seed(0)

    arrays, meta = {}, {}
    for name, kind, batch_size in PREDICT_CASES:
        meta[name] = predict_case(keras, name, kind, batch_size, case_seed(name), arrays)
    for name, arch, opt, kwargs, loss in TRAIN_CASES:
        meta[name] = train_case(keras, name, arch, opt, kwargs, loss, case_seed(name), arrays)
    name, info = stateful_case(keras, case_seed("stateful_lstm"), arrays)
    meta[name] = info

    arrays["__meta__"] = meta_array(__file__, (keras, tf), cases=meta)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {len(meta)} cases, {len(arrays)} arrays to {OUT} "
          f"({os.path.getsize(OUT) / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
