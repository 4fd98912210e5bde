"""Demo: a stateful LSTM forecaster of monthly airline passengers (``crnn-demo``).

The data ships with the package (``crnn/data/airline_passengers.csv``: 144 monthly totals,
1949-1960). The model reads the series one month after another and predicts next month's
change of log(passengers); being stateful, it carries what it has seen (trend, the
position in the yearly cycle) from one 12-month chunk to the next, so it is trained with
``shuffle=False`` and a ``ResetStatesCallback`` that restarts the series at each epoch.

The last 24 months are held out. They are forecast one month ahead, feeding the true
months as they arrive, and compared with the naive forecast "next month = this month".
Finally the model is saved, reloaded, and checked to give bit-identical forecasts.

Run (after ``pip install .``):
    crnn-demo                 # or, outside the source checkout: python -m crnn
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

import crnn
from crnn import callbacks, layers, optimizers

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["load_airline_passengers", "run", "main"]

CHUNK = 12          # months per sample (timesteps)
TEST_MONTHS = 24


def load_airline_passengers() -> tuple[list[str], np.ndarray]:
    """The built-in series: ``(months, passengers)``, 144 monthly values from 1949-01.

    Returns:
        A list of "YYYY-MM" strings and a float64 array of passenger counts (thousands).

    Example:
        >>> import crnn.demo
        >>> months, passengers = crnn.demo.load_airline_passengers()
        >>> months[0], months[-1], passengers.shape
        ('1949-01', '1960-12', (144,))
        >>> passengers[:3].tolist()
        [112.0, 118.0, 132.0]
    """
    text = resources.files("crnn").joinpath("data", "airline_passengers.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    return [r["month"] for r in rows], np.array([float(r["passengers"]) for r in rows])


def _chunks(values):
    """(n_chunks, CHUNK, 1) float32 array from a 1-D series whose length is a multiple."""
    return values.reshape(-1, CHUNK, 1).astype("float32")


def run(epochs: int = 150, seed: int = 0, verbose: int = 1,
        save_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train, evaluate against the naive baseline, save and reload. Returns a dict of results.

    Sets crnn's global random seed (``crnn.utils.set_random_seed(seed)``) first.

    Args:
        epochs: training epochs (each is one pass over the 1949-1958 months). Default 150.
        seed: random seed for ``crnn.utils.set_random_seed``. Default 0.
        verbose: 0 silent, 1 (the default) progress bar and summary, 2 one line per epoch
            and the summary.
        save_path: where to save the model (default None: a temporary file, removed
            after).

    Returns:
        A dict: ``model_mae`` and ``naive_mae`` (mean absolute errors of the 24 held-out
        one-month-ahead forecasts, thousands of passengers), ``improvement`` (``1 -
        model_mae / naive_mae``), ``first_loss`` and ``last_loss`` (training loss of the
        first and last epoch), ``reload_identical`` (whether the saved and reloaded model
        forecasts bit-identically, states included), ``train_seconds``, ``file_bytes``
        (the saved file's size), ``test_months`` (first and last held-out month), and the
        arrays ``forecast`` and ``actual``.

    Example:
        >>> import crnn.demo
        >>> results = crnn.demo.run(epochs=1, verbose=0)     # 150 epochs: a few seconds
        >>> results["reload_identical"], results["test_months"], results["forecast"].shape
        (True, ('1959-01', '1960-12'), (24,))
    """
    crnn.utils.set_random_seed(seed)
    months, passengers = load_airline_passengers()
    # Month-over-month change of log(passengers): stationary, strongly seasonal.
    change = np.diff(np.log(passengers))                       # 143 values
    n_train = len(change) - TEST_MONTHS - 1                    # 118 -> 120 usable below
    n_train = (n_train // CHUNK) * CHUNK                       # whole 12-month chunks
    scale = change[: n_train + 1].std()
    series = change / scale
    # Inputs: change at month t; targets: change at month t + 1.
    x_train = _chunks(series[:n_train])
    y_train = _chunks(series[1: n_train + 1])

    model = crnn.Sequential([
        layers.LSTM(32, stateful=True, return_sequences=True,
                    batch_input_shape=(1, CHUNK, 1)),
        layers.TimeDistributed(layers.Dense(1)),
    ], name="airline_forecaster")
    model.compile(optimizer=optimizers.Adam(learning_rate=0.005), loss="mse")
    if verbose:
        model.summary()
        print(f"\nTraining on {n_train} months ({months[1]} .. {months[n_train]}), "
              f"{epochs} epochs, stateful, batch of 1 x {CHUNK} months")
    start = time.time()
    history = model.fit(x_train, y_train, epochs=epochs, verbose=verbose,
                        callbacks=[callbacks.ResetStatesCallback(at_epoch_end=True)])
    train_seconds = time.time() - start

    # Replay the training months to rebuild the state, then forecast the held-out months
    # one step ahead, chunk by chunk, with the true values as inputs.
    model.reset_states()
    model.predict(x_train, verbose=0)
    n_rest = len(series) - n_train
    n_rest_chunks = -(-n_rest // CHUNK)
    rest = np.zeros(n_rest_chunks * CHUNK)
    rest[:n_rest] = series[n_train:]
    pred_change = model.predict(_chunks(rest), verbose=0).reshape(-1)[:n_rest] * scale
    state_before_save = [s.copy() for s in model.layers[0].states]

    # pred_change[k] forecasts change[n_train + k + 1], i.e. the step from
    # passengers[n_train + k + 1] to passengers[n_train + k + 2].
    first = len(passengers) - TEST_MONTHS                      # first held-out month
    k = np.arange(first - n_train - 2, len(passengers) - n_train - 2)
    previous = passengers[n_train + k + 1]
    forecast = previous * np.exp(pred_change[k])
    actual = passengers[first:]
    naive = previous
    model_mae = float(np.mean(np.abs(forecast - actual)))
    naive_mae = float(np.mean(np.abs(naive - actual)))

    # Save, reload, check bit-identical forecasts (including the carried states).
    cleanup = save_path is None
    if cleanup:
        handle, save_path = tempfile.mkstemp(suffix=".crnn")
        os.close(handle)
    try:
        model.save(save_path)
        reloaded = crnn.load_model(save_path)
        same_states = all(np.array_equal(a, b) for a, b in
                          zip(state_before_save, reloaded.layers[0].states))
        probe = _chunks(rest)[:1]
        identical = same_states and np.array_equal(model.predict(probe, verbose=0),
                                                   reloaded.predict(probe, verbose=0))
        size = os.path.getsize(save_path)
    finally:
        if cleanup:
            os.remove(save_path)

    results = {
        "model_mae": model_mae, "naive_mae": naive_mae,
        "improvement": 1 - model_mae / naive_mae,
        "first_loss": history.history["loss"][0], "last_loss": history.history["loss"][-1],
        "reload_identical": bool(identical), "train_seconds": train_seconds,
        "file_bytes": size, "test_months": (months[first], months[-1]),
        "forecast": forecast, "actual": actual,
    }
    if verbose:
        print(f"\nOne-month-ahead forecasts for {months[first]} .. {months[-1]} "
              f"(thousands of passengers):")
        print("  month     actual  forecast  naive")
        for m, a, f, n in list(zip(months[first:], actual, forecast, naive))[-6:]:
            print(f"  {m}  {a:7.0f}  {f:8.1f}  {n:5.0f}")
        print("\nSummary")
        print(f"  training loss       {results['first_loss']:.4f} -> {results['last_loss']:.4f}"
              f"  ({train_seconds:.1f} s)")
        print(f"  mean absolute error {model_mae:6.1f}  stateful LSTM")
        print(f"                      {naive_mae:6.1f}  naive (next month = this month)")
        print(f"  improvement         {100 * results['improvement']:.0f}% lower error than naive")
        reload = "bit-identical forecasts and states" if identical else "MISMATCH"
        print(f"  save + reload       {reload}"
              f" ({size / 1024:.0f} KiB, one file)")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """The ``crnn-demo`` command (and ``crnn demo``, ``python -m crnn``): runs :func:`run`.

    Options: ``--epochs N`` (default 150), ``--seed N`` (default 0), ``--verbose {0,1,2}``
    (default 1), ``--save PATH`` (keep the trained model there).

    Args:
        argv: the command-line arguments (default None: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 if the saved and reloaded model forecasts bit-identically, else 1.

    Raises:
        SystemExit: for options argparse refuses, or ``--help`` (after printing the usage).

    Example:
        >>> import crnn.demo
        >>> crnn.demo.main(["--epochs", "1", "--verbose", "0"])
        0
    """
    parser = argparse.ArgumentParser(prog="crnn-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument("--save", default=None, help="keep the trained model at this path")
    args = parser.parse_args(argv)
    results = run(epochs=args.epochs, seed=args.seed, verbose=args.verbose, save_path=args.save)
    return 0 if results["reload_identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
