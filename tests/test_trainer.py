"""The trainer's loops: the callback order during fit's validation, compile's arguments."""

import numpy as np
import pytest

import crnn
from crnn import callbacks, layers
from crnn.models import Sequential


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")

            def record(*args):
                logs = args[-1] if args and isinstance(args[-1], dict) else None
                calls.append((name, args[0] if args and not isinstance(args[0], dict)
                              else None, logs))
            return record
        return object.__getattribute__(self, name)


def _model():
    model = Sequential([layers.SimpleRNN(2, input_shape=(3, 1)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


def _data(n):
    x = np.linspace(-1, 1, n * 3, dtype=np.float32).reshape(n, 3, 1)
    return x, x[:, -1, :] * 0.5


def test_fit_validation_fires_the_test_hooks_in_keras_order():
    model = _model()
    x, y = _data(8)
    vx, vy = _data(5)
    rec = Recorder()
    model.fit(x, y, batch_size=4, epochs=1, validation_data=(vx, vy), verbose=0,
              callbacks=[rec], shuffle=False)
    names = [c[0] for c in rec.calls]
    assert names == [
        "on_train_begin", "on_epoch_begin",
        "on_train_batch_begin", "on_train_batch_end",
        "on_train_batch_begin", "on_train_batch_end",
        "on_test_begin",
        "on_test_batch_begin", "on_test_batch_end",      # 4 validation samples
        "on_test_batch_begin", "on_test_batch_end",      # 1 validation sample
        "on_test_end",
        "on_epoch_end", "on_train_end",
    ]
    test_end = rec.calls[names.index("on_test_end")][2]
    epoch_end = rec.calls[names.index("on_epoch_end")][2]
    # on_test_end gets the validation logs under their own names, as in Keras;
    # on_epoch_end gets them with the "val_" prefix.
    assert set(test_end) == {"loss", "mae"}
    assert test_end["loss"] == pytest.approx(epoch_end["val_loss"])
    assert test_end["mae"] == pytest.approx(epoch_end["val_mae"])
    # and they are the validation loss, not the training loss
    assert test_end["loss"] == pytest.approx(model.evaluate(vx, vy, verbose=0)[0])


def test_fit_without_validation_fires_no_test_hooks():
    model = _model()
    rec = Recorder()
    model.fit(*_data(4), epochs=2, verbose=0, callbacks=[rec])
    assert not any(name.startswith("on_test") for name, _, _ in rec.calls)


def test_fit_validation_keeps_the_progress_bar_quiet(capsys):
    model = _model()
    model.fit(*_data(8), batch_size=4, epochs=1, validation_split=0.5, verbose=2)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "val_loss" in out


@pytest.mark.parametrize("key, value", [("loss_weights", [0.5, 0.5]), ("loss_weights", 2),
                                        ("weighted_metrics", "mae")])
def test_compile_refuses_bad_loss_weights_and_weighted_metrics(key, value):
    model = _model()
    before = model.optimizer
    with pytest.raises((ValueError, TypeError), match=key):
        model.compile(optimizer="adam", loss="mae", **{key: value})
    assert model.optimizer is before       # a failed call changes nothing


@pytest.mark.parametrize("key, value", [("loss_weights", None), ("weighted_metrics", None),
                                        ("weighted_metrics", []), ("run_eagerly", True),
                                        ("jit_compile", False)])
def test_compile_accepts_no_op_keras_arguments(key, value):
    model = _model()
    model.compile(optimizer="adam", loss="mae", **{key: value})
    assert type(model.optimizer).__name__ == "Adam"


def test_streaming_is_a_lazy_submodule():
    assert crnn.streaming.__name__ == "crnn.streaming"
    assert "streaming" in dir(crnn)


def test_fit_on_an_iterable_with_array_validation_data():
    # batches from a generator leave no batch size; array validation runs in batches of 32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 5, 3)).astype("float32")
    y = rng.standard_normal((70, 1)).astype("float32")
    model = crnn.Sequential([crnn.layers.LSTM(4, input_shape=(5, 3)), crnn.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")

    def batches():
        while True:
            for i in range(0, 70, 10):
                yield x[i:i + 10], y[i:i + 10]

    history = model.fit(batches(), steps_per_epoch=7, validation_data=(x, y), epochs=2,
                        verbose=0)
    assert len(history.history["val_loss"]) == 2
    np.testing.assert_allclose(history.history["val_loss"][-1],
                               model.evaluate(x, y, verbose=0), rtol=1e-5)
