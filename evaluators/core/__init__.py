"""The ground floor every other layer stands on: config composition and validation, name lookup,
io, safe loading, seeding, distributed helpers, precision, threads.

Nothing here imports another part of the project (``lint-imports`` checks it), so any layer may
import it without creating a loop.
"""
