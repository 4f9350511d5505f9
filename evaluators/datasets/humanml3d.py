"""The HumanML3D representation under its published name (DESIGN.md "Dataset functions"); the
code is :mod:`evaluators.datasets.motion.humanml3d`."""

from evaluators.datasets.motion.humanml3d import *  # noqa: F401,F403
from evaluators.datasets.motion.humanml3d import extract_features, recover_from_ric  # noqa: F401
