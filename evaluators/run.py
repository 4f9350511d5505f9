"""``python -m evaluators.run +experiment=METHOD_DATASET [overrides]``: the runner's command line.

The runner itself lives in :mod:`evaluators.runner`; this name is kept because commands
(``torchrun ... -m evaluators.run``, SLURM scripts) are written against it.
"""

from evaluators.runner.run import main

if __name__ == "__main__":
    main()
