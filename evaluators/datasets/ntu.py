"""NTU RGB+D reader under its published name (DESIGN.md "Dataset functions"); the loader is
:mod:`evaluators.datasets.skeleton.ntu`."""

from evaluators.datasets.skeleton.ntu import *  # noqa: F401,F403
from evaluators.datasets.skeleton.ntu import read_skeleton  # noqa: F401
