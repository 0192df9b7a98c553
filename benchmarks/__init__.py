"""Benchmarks of the companion against its baselines (``make bench``)."""

# Before any module here imports neural_tangents: the package defers its TensorFlow port.
import companion  # noqa: F401
