"""Everything that turns a trained method into numbers: datasets, metrics, protocols, records."""

from evaluators.core import threads as _threads

_threads.configure()  # OpenMP wait policy / thread count before torch loads (evaluators/core/threads.py)
