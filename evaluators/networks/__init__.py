"""Evaluator networks: the T2M text-motion matching evaluator and the action-recognition evaluators.

Imported lazily by protocols; importing this package loads torch only (no word vectors).
"""
