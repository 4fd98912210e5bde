"""``python -m crnn`` runs the demo (see crnn/demo.py); ``python -m crnn convert IN OUT``
converts a Keras model file (see crnn/cli.py)."""

from crnn.cli import main

raise SystemExit(main())
