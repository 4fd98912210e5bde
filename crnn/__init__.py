"""crnn: a Cython-accelerated CPU engine for recurrent neural networks.

``crnn.ops`` is the functional API (whole-sequence LSTM/GRU/SimpleRNN, forward and
backward); ``crnn.reference`` holds the same maths in plain NumPy.
"""

from crnn import ops, reference

__version__ = "0.1.0"
