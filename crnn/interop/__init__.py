"""Models from other frameworks, read without those frameworks.

* ``crnn.interop.keras``: Keras 3 ``.keras`` archives and legacy Keras 2 / ``tf.keras``
  ``.h5`` files of Sequential models (``crnn.load_model`` calls it for such files). Needs
  h5py: ``pip install "crnn[keras]"``.
* ``crnn.interop.torch``: PyTorch ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (+ ``nn.Linear``)
  ``state_dict``s to crnn layers and back. Needs neither torch nor h5py.

Neither module imports Keras, TensorFlow or PyTorch.
"""

__all__ = ["keras", "torch"]
