"""Companion package for "Peer-to-Peer Learning Dynamics of Wide Neural Networks".

Importing the package switches JAX to float64: the book's exactness claims (closed form
equals training to 1e-10) are statements about float64 arithmetic and fail in float32.

It also defers neural-tangents' TensorFlow port. ``import neural_tangents`` executes
``neural_tangents.experimental``, which imports TensorFlow: about 5 seconds and a screen of
absl start-up lines ("oneDNN custom operations are on", "Could not find cuda drivers") in
every process, which no environment variable silences, for a module the companion never
uses. A placeholder stands in for it and imports the real module, TensorFlow included, the
first time one of its names is used. The book's environment has no TensorFlow at all
(neural-tangents is installed without its declared dependencies), so there ``import
neural_tangents`` works only after ``import companion``, and a name of the port raises an
AttributeError that says what to install.
"""

import importlib
import importlib.util
import sys
import types

import jax

_PORT = "neural_tangents.experimental"


class _DeferredPort(types.ModuleType):
    """``neural_tangents.experimental`` until one of its names is asked for."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        del sys.modules[_PORT]
        try:
            real = importlib.import_module(_PORT)
        except ImportError as error:
            sys.modules[_PORT] = self  # still deferred: the next use says the same
            raise AttributeError(
                f"{_PORT}.{attr} needs TensorFlow and tf2jax ({error}), which the book's "
                "environment leaves out; to use neural-tangents' TensorFlow port, install "
                "them: pip install tensorflow tf2jax"
            ) from error
        vars(sys.modules["neural_tangents"])["experimental"] = real
        return getattr(real, attr)


def _defer_tensorflow_port() -> None:
    if _PORT in sys.modules or importlib.util.find_spec("neural_tangents") is None:
        return
    sys.modules[_PORT] = _DeferredPort(_PORT)


_defer_tensorflow_port()
jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
