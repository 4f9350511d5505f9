"""Registered methods: one folder per method, each registering its class with ``@register_method``.

The method folders are imported on the first lookup (:func:`get_method`, :func:`list_methods`),
not when this package is imported, so that :mod:`methods.base` (the capabilities protocols
code against) can be imported without loading every model.
"""

from methods.registry import get_method, list_methods, register_method

__all__ = ["get_method", "list_methods", "register_method"]
