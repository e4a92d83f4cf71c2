"""``python -m benchmarks``: run every benchmark and rewrite BENCHMARKS.md (see run_all.py)."""

import sys

from benchmarks.run_all import main

sys.exit(main())
