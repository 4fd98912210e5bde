"""Generate tests/layers_golden/layers_golden.npz: Keras 3 predictions of small models.

Run by hand (needs keras + tensorflow; the test suite does not):
    python tests/layers_golden/make_layers_golden.py

For each case, the model is built in Keras with random weights; the file keeps the
input, Keras's get_weights() list and Keras's predictions. tests/test_layers.py builds the
same architecture in crnn, sets Keras's weights and compares predictions, which checks the
weight order/shapes and the maths of every layer and the mask propagation.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

# Each case: (name, input kind, input shape, list of (layer class, kwargs)).
# Written as plain data so that the test can rebuild the same stack with crnn.layers.
CASES = [
    ("lstm_seq_dense", "float", (3, 5, 4), [
        ("LSTM", {"units": 6, "return_sequences": True}),
        ("Dense", {"units": 2, "activation": "tanh"})]),
    ("gru_reset_after", "float", (3, 5, 4), [("GRU", {"units": 5})]),
    ("gru_reset_before", "float", (3, 5, 4), [("GRU", {"units": 5, "reset_after": False})]),
    ("simple_rnn_relu_back", "float", (3, 5, 4), [
        ("SimpleRNN", {"units": 4, "activation": "relu", "go_backwards": True,
                       "return_sequences": True})]),
    ("lstm_no_bias_hard", "float", (2, 6, 3), [
        ("LSTM", {"units": 3, "use_bias": False, "recurrent_activation": "hard_sigmoid"})]),
    ("bidir_concat", "float", (3, 5, 4), [
        ("Bidirectional", {"layer": ("LSTM", {"units": 4, "return_sequences": True})}),
        ("TimeDistributed", {"layer": ("Dense", {"units": 1})})]),
    ("bidir_sum_gru", "float", (3, 5, 4), [
        ("Bidirectional", {"layer": ("GRU", {"units": 3}), "merge_mode": "sum"})]),
    ("bidir_mul", "float", (3, 5, 4), [
        ("Bidirectional", {"layer": ("SimpleRNN", {"units": 3, "return_sequences": True}),
                           "merge_mode": "mul"})]),
    ("bidir_ave", "float", (3, 5, 4), [
        ("Bidirectional", {"layer": ("LSTM", {"units": 3}), "merge_mode": "ave"})]),
    ("embedding_mask_lstm", "int", (4, 6), [
        ("Embedding", {"input_dim": 7, "output_dim": 3, "mask_zero": True}),
        ("LSTM", {"units": 4, "return_sequences": True}),
        ("LSTM", {"units": 2})]),
    ("embedding_mask_bidir", "int", (4, 6), [
        ("Embedding", {"input_dim": 7, "output_dim": 3, "mask_zero": True}),
        ("Bidirectional", {"layer": ("GRU", {"units": 2, "return_sequences": True})}),
        ("Dense", {"units": 2, "activation": "softmax"})]),
    ("masking_gru", "masked", (3, 6, 2), [
        ("Masking", {"mask_value": 0.0}),
        ("GRU", {"units": 3, "return_sequences": True}),
        ("TimeDistributed", {"layer": ("Dense", {"units": 2})})]),
    ("masking_zero_output", "masked", (3, 6, 2), [
        ("Masking", {}),
        ("SimpleRNN", {"units": 3, "return_sequences": True, "zero_output_for_mask": True})]),
    ("stacked_dropout_inference", "float", (2, 4, 3), [
        ("LSTM", {"units": 4, "return_sequences": True, "dropout": 0.5}),
        ("Dropout", {"rate": 0.5}),
        ("GRU", {"units": 2}),
        ("Activation", {"activation": "sigmoid"})]),
]


def make_layer(class_name, kwargs):
    kwargs = dict(kwargs)
    if "layer" in kwargs:
        kwargs["layer"] = make_layer(*kwargs["layer"])
    return getattr(keras.layers, class_name)(**kwargs)


def main():
    rng = np.random.default_rng(1234)
    out = {"__meta__": meta_array(__file__, [keras], cases=CASES)}
    for name, kind, shape, stack in CASES:
        if kind == "int":
            x = rng.integers(1, 7, size=shape)
            for row, n_pad in enumerate([0, 2, 5, 1]):
                x[row, shape[1] - n_pad:] = 0       # trailing padding
            x[3, 0] = 0                              # and one leading pad
            x = x.astype("int32")
        else:
            x = rng.standard_normal(shape).astype("float32")
            if kind == "masked":
                x[0, 4:] = 0.0
                x[1, :2] = 0.0
                x[2, 3] = 0.0
        keras.utils.set_random_seed(7)
        model = keras.Sequential([keras.Input(shape=shape[1:], dtype=x.dtype.name)]
                                 + [make_layer(c, k) for c, k in stack])
        weights = model.get_weights()
        # Make biases non-zero so that bias order/shape errors show.
        weights = [w + rng.uniform(-0.3, 0.3, w.shape).astype(w.dtype) if w.ndim == 1
                   or (w.ndim == 2 and w.shape[0] == 2) else w for w in weights]
        model.set_weights(weights)
        y = model.predict(x, verbose=0)
        out[f"{name}/x"] = x
        out[f"{name}/y"] = y
        out[f"{name}/n_weights"] = np.array(len(weights))
        for k, w in enumerate(weights):
            out[f"{name}/w{k}"] = w
    path = os.path.join(os.path.dirname(__file__), "layers_golden.npz")
    np.savez_compressed(path, **out)
    print("wrote", path, "with", len(CASES), "cases; keras", keras.__version__)


if __name__ == "__main__":
    main()
