"""Companion package for "Peer-to-Peer Learning Dynamics of Wide Neural Networks".

Importing the package switches JAX to float64: the book's exactness claims (closed form
equals training to 1e-10) are statements about float64 arithmetic and fail in float32.
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
