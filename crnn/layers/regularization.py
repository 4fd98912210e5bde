"""``SpatialDropout1D``: drops whole feature channels of ``(batch, steps, features)`` inputs."""

import numpy as np  # noqa: F401 (the docstring example)

from crnn.layers.core import Dropout

__all__ = ["SpatialDropout1D"]


class SpatialDropout1D(Dropout):
    """Dropout of entire features: one keep/drop draw per (sample, feature), shared by every
    step, kept values scaled by ``1 / (1 - rate)``; the identity at inference (Keras 3).

    Args:
        rate: fraction of the features to drop, in [0, 1).
        seed: seed of the layer's own random generator (None: from ``crnn.utils``).
        **kwargs: base ``Layer`` arguments.

    Example:
        >>> y = SpatialDropout1D(0.5, seed=0)(np.ones((1, 4, 6)), training=True)
        >>> bool((y == y[:, :1, :]).all())      # the same features dropped at every step
        True
    """

    def __init__(self, rate, seed=None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, noise_shape=(None, 1, None), seed=seed, **kwargs)

    def forward(self, x, training=False, mask=None):
        if training and self.rate and getattr(x, "ndim", 3) != 3:
            raise ValueError(f"SpatialDropout1D {self.name!r} needs 3-D inputs (batch, steps, "
                             f"features), received shape {x.shape}")
        return super().forward(x, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape", None)
        return config
