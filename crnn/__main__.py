"""``python -m crnn`` runs the demo (see crnn/demo.py)."""

from crnn.demo import main

raise SystemExit(main())
