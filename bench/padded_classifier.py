"""Issue 12's padded-sequence classifier, crnn against Keras 3 on TensorFlow, over 3 seeds.

``Embedding(mask_zero=True)`` -> ``Bidirectional(LSTM(32))`` -> ``Dense(1, sigmoid)``, Adam,
on a synthetic sentiment task (a few tokens carry a polarity, the label is the sign of their
sum; sequences of 5-80 tokens, pre-padded to 80). Trains Keras (TensorFlow backend), crnn with
its default Embedding gradient (TensorFlow's per-occurrence rows) and crnn with
``sparse_gradient=False`` (summed, as Keras on JAX/PyTorch), and prints the test accuracies.
Not part of the test suite (needs TensorFlow, takes minutes).

Usage: python bench/padded_classifier.py [--epochs 4] [--seeds 0 1 2]
"""

import argparse
import os
import platform
import sys
import time

# Run from the source tree: import the crnn built in place next to this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

VOCAB, MAXLEN, N_TRAIN, N_TEST = 300, 80, 4000, 2000


def make_data(seed=1234):
    rng = np.random.default_rng(seed)
    polarity = np.zeros(VOCAB + 1)
    signal = rng.choice(np.arange(1, VOCAB + 1), 40, replace=False)
    polarity[signal] = rng.standard_normal(40)

    def split(n):
        x = np.zeros((n, MAXLEN), dtype=np.int64)
        for i in range(n):
            length = rng.integers(5, MAXLEN + 1)
            x[i, MAXLEN - length:] = rng.integers(1, VOCAB + 1, length)
        y = (polarity[x].sum(axis=1) > 0).astype("float32")[:, None]
        return x, y

    return split(N_TRAIN), split(N_TEST)


def run_keras(data, seed, epochs):
    import keras

    keras.utils.set_random_seed(seed)
    (x, y), (xt, yt) = data
    model = keras.Sequential([keras.Input((MAXLEN,), dtype="int64"),
                              keras.layers.Embedding(VOCAB + 1, 32, mask_zero=True),
                              keras.layers.Bidirectional(keras.layers.LSTM(32)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model.evaluate(xt, yt, verbose=0)[1]


def run_crnn(data, seed, epochs, sparse_gradient):
    import crnn
    from crnn import layers as L

    crnn.utils.set_random_seed(seed)
    (x, y), (xt, yt) = data
    model = crnn.Sequential([L.Input(shape=(MAXLEN,), dtype="int64"),
                             L.Embedding(VOCAB + 1, 32, mask_zero=True, sparse_gradient=sparse_gradient),
                             L.Bidirectional(L.LSTM(32)), L.Dense(1, activation="sigmoid")])
    model.compile(crnn.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model.evaluate(xt, yt, verbose=0)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    data = make_data()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{N_TRAIN} train / {N_TEST} test, {args.epochs} epochs")
    rows = {"keras (tensorflow)": [], "crnn (default, sparse rows)": [], "crnn (sparse_gradient=False)": []}
    for seed in args.seeds:
        for name, fn, extra in (("keras (tensorflow)", run_keras, ()),
                                ("crnn (default, sparse rows)", run_crnn, (True,)),
                                ("crnn (sparse_gradient=False)", run_crnn, (False,))):
            start = time.perf_counter()
            acc = float(fn(data, seed, args.epochs, *extra))
            rows[name].append(acc)
            print(f"seed {seed}  {name:30s} test accuracy {acc:.4f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    print()
    for name, accs in rows.items():
        print(f"{name:30s} mean {np.mean(accs):.4f}  min {np.min(accs):.4f}  max {np.max(accs):.4f}")


if __name__ == "__main__":
    main()
