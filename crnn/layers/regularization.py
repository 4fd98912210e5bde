"""``SpatialDropout1D``: drops whole feature channels of ``(batch, steps, features)`` inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn.layers.core import Dropout

__all__ = ["SpatialDropout1D"]


class SpatialDropout1D(Dropout):
    """Dropout of entire features: one keep/drop draw per (sample, feature), shared by every
    step, kept values scaled by ``1 / (1 - rate)``; the identity at inference (Keras 3).

    Args:
        rate: fraction of the features to drop, a float in [0, 1).
        seed: seed of the layer's own random generator, a non-negative int. Default None:
            drawn from ``crnn.utils``'s global generator.
        **kwargs: base ``Layer`` arguments (a ``noise_shape``, as Keras configs hold, is
            ignored: it is always ``(batch, 1, features)``).

    Call arguments:
        inputs: a 3-D array ``(batch, steps, features)``.
        training: drop only when True (``fit``). Default False: the identity.

    Input shape:
        3-D array ``(batch_size, steps, features)``.

    Output shape:
        The same as the input.

    Raises:
        ValueError: if ``rate`` is not in [0, 1) or ``seed`` is not a non-negative int;
            in training, if the inputs are not 3-D.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import SpatialDropout1D
        >>> layer = SpatialDropout1D(0.5, seed=0)
        >>> y = layer(np.ones((2, 5, 3), "float32"), training=True)
        >>> y.shape
        (2, 5, 3)
        >>> bool((y == y[:, :1, :]).all())      # the same features dropped at every step
        True
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, noise_shape=(None, 1, None), seed=seed, **kwargs)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        if training and self.rate and getattr(x, "ndim", 3) != 3:
            raise ValueError(f"SpatialDropout1D {self.name!r} needs 3-D inputs (batch, steps, "
                             f"features), received shape {x.shape}")
        return super().forward(x, training=training, mask=mask)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("noise_shape", None)
        return config
