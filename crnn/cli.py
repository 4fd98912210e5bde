"""The ``crnn`` command: ``crnn convert IN OUT`` and ``crnn demo``.

``crnn convert model.keras model.crnn`` reads a Keras ``.keras``/``.h5`` file (needs h5py,
``pip install "crnn[keras]"``) or a crnn file, writes crnn's own file (which loads with
NumPy and SciPy only), prints the model summary, and checks that the written file predicts
exactly what crnn's load of the source predicts, on random input, over two calls (so that a
stateful model's carried states are checked too). Keras is not needed for the check.

``crnn demo [options]`` (or ``crnn`` with demo options, or ``python -m crnn``) runs the
forecasting demo of ``crnn.demo``.
"""

import argparse
import os
import sys

import numpy as np

__all__ = ["convert", "main"]


def _random_input(model, rng):
    """Two batches of random input that fit ``model`` (indices for an Embedding model)."""
    from crnn.layers import Embedding

    shape = list(model.input_shape)
    shape[0] = shape[0] or 4
    if len(shape) > 1 and shape[1] is None:
        shape[1] = 8
    first = model.layers[0]
    if isinstance(first, Embedding):
        return [rng.integers(0, first.input_dim, shape) for _ in range(2)]
    dtype = model.layers[0].dtype
    return [rng.standard_normal(shape).astype(dtype) for _ in range(2)]


def convert(source, target, overwrite=False, seed=0, print_fn=print):
    """Convert a Keras (or crnn) model file to a crnn file and verify the result.

    Args:
        source: a ``.keras``/``.h5`` Keras file (or a crnn file).
        target: the crnn file to write.
        overwrite: replace an existing ``target`` (default False).
        seed: seed of the random verification input.
        print_fn: where the summary and the check's result go.

    Returns:
        The largest absolute difference between the two models' predictions (0.0 when the
        conversion is exact, which it is).

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is False.
        ValueError: the source can't be loaded, or the written file predicts differently.
        ImportError: a Keras file and no h5py.

    Example:
        ``crnn convert forecaster.keras forecaster.crnn`` on the command line, or
        ``crnn.cli.convert("forecaster.keras", "forecaster.crnn")``.
    """
    from crnn.saving import load_model

    if not overwrite and os.path.exists(target):
        raise FileExistsError(f"{os.fspath(target)!r} exists; pass --overwrite to replace it")
    model = load_model(source)
    model.save(target, overwrite=True)
    converted = load_model(target)
    converted.summary(print_fn=print_fn)
    rng = np.random.default_rng(seed)
    diff = 0.0
    for x in _random_input(model, rng):
        expected = model.predict(x, verbose=0)
        got = converted.predict(x, verbose=0)
        if expected.shape != got.shape:
            raise ValueError(f"the converted model outputs shape {got.shape}, the source "
                             f"{expected.shape}")
        diff = max(diff, float(np.max(np.abs(expected.astype(np.float64) - got))))
    if diff != 0.0:
        raise ValueError(f"the converted model's predictions differ from the source's by up "
                         f"to {diff:.3g}; {os.fspath(target)!r} is not a faithful copy")
    print_fn(f"Converted {os.fspath(source)!r} -> {os.fspath(target)!r}: predictions on "
             f"random input identical to the source's (max abs diff {diff:.1g}, "
             f"two calls{', states carried' if model.get_states() else ''})")
    return diff


_HELP = """usage: crnn convert IN OUT [--overwrite] [--seed N]
       crnn demo [--epochs N] [--seed N] [--verbose {0,1,2}] [--save PATH]

  convert   turn a Keras .keras/.h5 model file into a crnn file (NumPy + SciPy only to load),
            print its summary and verify its predictions against the source
  demo      train and evaluate the stateful forecasting demo (the default)
"""


def main(argv=None):
    """Entry point of the ``crnn`` script and of ``python -m crnn``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_HELP)
        return 0
    if not argv or argv[0] != "convert":
        from crnn import demo
        return demo.main(argv[1:] if argv and argv[0] == "demo" else argv)
    parser = argparse.ArgumentParser(prog="crnn convert",
                                     description="Convert a Keras model file to a crnn file "
                                                 "and verify it.")
    parser.add_argument("source", help="the .keras or .h5 file")
    parser.add_argument("target", help="the crnn file to write (e.g. model.crnn)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target")
    parser.add_argument("--seed", type=int, default=0, help="seed of the verification input")
    args = parser.parse_args(argv[1:])
    try:
        convert(args.source, args.target, overwrite=args.overwrite, seed=args.seed)
    except (ValueError, ImportError, OSError) as error:
        print(f"crnn convert: error: {error}", file=sys.stderr)
        return 1
    return 0
