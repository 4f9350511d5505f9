"""Utilities shared by every method: config loading, seeding, distributed helpers, the train loop.

Not a method package (``methods/__init__.py`` skips it). Import the submodules directly::

    from evaluators.core.config import load_config
    from methods.common.training import train, seed_everything
    from evaluators.core.distributed import shard_indices, gather_concat
"""
