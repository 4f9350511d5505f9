"""The application: the run command, the demo, ``--estimate``, experiment help.

The only package that imports the method registry and the leaderboards; everything below it
(datasets, metrics, networks, protocols, records) sees a method only through the capabilities
of :mod:`methods.base`.
"""
