"""Training continues in crnn exactly as in Keras after loading a Keras file (QA regressions).

Golden values from tests/qa_golden/make_keras_resume.py (Keras 3, TensorFlow backend): a
model trained 3 steps, saved as .keras and .h5, then 2 more Keras steps. crnn once loaded
these files uncompiled (AdamW's weight_decay, learning-rate schedules, loss configs with
``axis``/``ignore_class``) or with fresh optimizer slots (Adamax, Nadam).
"""

import json
import os
import warnings

import numpy as np
import pytest

import crnn

pytest.importorskip("h5py")

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "qa_golden", "keras_resume.npz"))
CASES = json.loads(str(GOLDEN["__meta__"]))["cases"]
OPTIMIZERS = {"adamw": "AdamW", "adamax": "Adamax", "nadam": "Nadam",
              "adam_exponential_decay": "Adam", "sgd_piecewise": "SGD",
              "cce_label_smoothing": "Adam", "scce_from_logits": "RMSprop",
              "bce_from_logits": "Adagrad"}


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("case", CASES)
def test_training_continues_as_in_keras(tmp_path, case, fmt):
    path = tmp_path / f"{case}.{fmt}"
    path.write_bytes(GOLDEN[f"{case}/{fmt}_file"].tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # compiled, optimizer state restored: no warning
        model = crnn.load_model(path)
    assert type(model.optimizer).__name__ == OPTIMIZERS[case]
    assert model.optimizer.iterations == 3
    x, y = GOLDEN[f"{case}/x"], GOLDEN[f"{case}/y"]
    losses = [model.train_on_batch(x, y) for _ in range(2)]
    losses = [loss[0] if isinstance(loss, (list, tuple)) else loss for loss in losses]
    np.testing.assert_allclose(losses, GOLDEN[f"{case}/losses"], rtol=1e-5)
    for k, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, GOLDEN[f"{case}/weight_{k}"], rtol=1e-5, atol=1e-6)
