"""The ``crnn`` command: ``crnn convert IN OUT`` and ``crnn demo``.

``crnn convert model.keras model.crnn`` reads a Keras ``.keras``/``.h5`` file (needs h5py,
``pip install "crnn[keras]"``) or a crnn file, writes crnn's own file (which loads with
NumPy and SciPy only), prints the model summary, and checks that the written file predicts
exactly what crnn's load of the source predicts, on random input, over two calls (so that a
stateful model's carried states are checked too). Keras is not needed for the check.

``crnn demo [options]`` (or ``crnn`` with demo options, or ``python -m crnn``) runs the
forecasting demo of ``crnn.demo``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def convert(source: str | os.PathLike, target: str | os.PathLike, overwrite: bool = False,
            seed: int = 0, print_fn: Callable[[str], object] = print) -> float:
    """Convert a Keras (or crnn) model file to a crnn file and verify the result.

    What ``crnn convert SOURCE TARGET`` runs. The written file is loaded back, its summary
    printed, and its predictions compared with those of the source as crnn loads it, on
    two calls of random input (so that a stateful model's carried states are compared too).

    Args:
        source: a ``.keras``/``.h5`` Keras file (or a crnn file).
        target: the crnn file to write.
        overwrite: replace an existing ``target`` (default False).
        seed: seed of the random verification input (default 0).
        print_fn: where the summary and the check's result go, line by line (default
            ``print``).

    Returns:
        The largest absolute difference between the two models' predictions: 0.0 (any
        other difference raises).

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is False.
        FileNotFoundError: ``source`` does not exist, or ``target``'s folder does not.
        ValueError: the source can't be loaded, or the written file predicts differently.
        ImportError: a Keras file and no h5py.

    Example:
        On the command line: ``crnn convert forecaster.keras forecaster.crnn``. From
        Python, here on a crnn file (a Keras file needs h5py):

        >>> import os, tempfile
        >>> import crnn
        >>> folder = tempfile.mkdtemp()
        >>> model = crnn.Sequential([crnn.layers.GRU(3, input_shape=(None, 2))])
        >>> model.save(os.path.join(folder, "source.crnn"))
        >>> lines = []
        >>> crnn.cli.convert(os.path.join(folder, "source.crnn"),
        ...                  os.path.join(folder, "copy.crnn"), print_fn=lines.append)
        0.0
        >>> lines[-1].endswith("identical to the source's (max abs diff 0, two calls)")
        True
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crnn`` script and of ``python -m crnn``; returns the exit code.

    ``crnn convert IN OUT [--overwrite] [--seed N]`` runs :func:`convert`; ``crnn demo
    [options]``, or ``crnn`` with demo options only, runs ``crnn.demo.main``; ``-h`` or
    ``--help`` first prints the usage. A conversion error is printed to stderr.

    Args:
        argv: the command-line arguments after the program name (default None:
            ``sys.argv[1:]``).

    Returns:
        0 on success; 1 if the conversion failed (or the demo's reload check did).

    Raises:
        SystemExit: for options argparse refuses (it prints the usage; exit status 2).

    Example:
        >>> import crnn
        >>> crnn.cli.main(["--help"])
        usage: crnn convert IN OUT [--overwrite] [--seed N]
        ...
        0
    """
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
