"""Utilities: seeding, the progress bar, and the data utilities Keras users look for here.

- ``crnn.utils.seeding``: ``set_random_seed``, ``get_rng``, ``make_rng`` (crnn draws every
  random number from one global ``numpy.random.Generator``);
- ``crnn.utils.progbar``: ``Progbar``, the Keras-style progress bar of ``fit``,
  ``evaluate`` and ``predict``;
- the data utilities of ``crnn.preprocessing`` (``to_categorical``, ``pad_sequences``,
  ``timeseries_dataset_from_array``...), re-exported here as Keras has them.

Example:

>>> import crnn
>>> crnn.utils.set_random_seed(0)
>>> crnn.utils.to_categorical([0, 2], num_classes=3).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""

from crnn.preprocessing import (
    StatefulOrderReport,
    TimeseriesBatches,
    check_stateful_order,
    pad_sequences,
    stateful_batches,
    timeseries_dataset_from_array,
    to_categorical,
)
from crnn.utils.progbar import Progbar
from crnn.utils.seeding import get_rng, make_rng, set_random_seed

__all__ = [
    "set_random_seed", "get_rng", "make_rng", "Progbar",
    "to_categorical", "pad_sequences", "timeseries_dataset_from_array", "TimeseriesBatches",
    "stateful_batches", "check_stateful_order", "StatefulOrderReport",
]
