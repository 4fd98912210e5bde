"""Generate irnn.keras and irnn_golden.npz: a Keras IRNN (SimpleRNN(relu) whose recurrent
kernel starts as Identity) saved by Keras 3, with Keras's predictions and its initial
recurrent kernel. Run once with Keras installed: python tests/qa_golden/make_irnn_golden.py
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((5, 3)),
        keras.layers.SimpleRNN(4, activation="relu",
                               recurrent_initializer=keras.initializers.Identity(gain=0.5)),
        keras.layers.Dense(2),
    ])
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype("float32")
    model.save(os.path.join(HERE, "irnn.keras"))
    np.savez(os.path.join(HERE, "irnn_golden.npz"), x=x, y=model.predict(x, verbose=0),
             recurrent_kernel=model.layers[0].get_weights()[1],
             __meta__=meta_array(__file__, (keras, tf)))


if __name__ == "__main__":
    main()
