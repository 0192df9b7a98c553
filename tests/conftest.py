"""Small float64 problems shared by the dynamics, simulation and stability tests.

Models are defined here in pure JAX (not `companion.models`) so that these tests pin down
the closed forms independently of the model code; the NTK is the plain Jacobian product.
Model functions live at module level so the compiled training scan is reused across tests.

Helpers reach tests as fixtures, never through `from conftest import ...` (pytest runs with
`--import-mode=importlib`, under which conftest modules are not importable by name).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from jax.flatten_util import ravel_pytree

from companion import graphs, stability
from companion.problem import Problem

# Equinox's convention: an implicit broadcast between arrays of different ranks is a bug.
jax.config.update("jax_numpy_rank_promotion", "raise")

NUM_AGENTS = 5
NUM_SAMPLES = 14
NUM_TEST = 6
IN_DIM = 3
OUT_DIM = 2


def mlp_apply(params, x):
    """Two-layer tanh MLP; 1/sqrt(fan_in) scaling keeps the NTK of order one."""
    hidden = jnp.tanh(x @ params["w1"] / np.sqrt(x.shape[-1]) + params["b1"][None, :])
    return hidden @ params["w2"] / np.sqrt(hidden.shape[-1]) + params["b2"][None, :]


def affine_apply(params, x):
    """The affine model f(x) = x A + b."""
    return x @ params["a"] + params["b"][None, :]


def mlp_params(seed: int = 0, width: int = 16) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    return {
        "w1": jax.random.normal(keys[0], (IN_DIM, width)),
        "b1": 0.1 * jax.random.normal(keys[1], (width,)),
        "w2": jax.random.normal(keys[2], (width, OUT_DIM)),
        "b2": 0.1 * jax.random.normal(keys[3], (OUT_DIM,)),
    }


def affine_params(seed: int = 0) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(seed), 2)
    return {
        "a": jax.random.normal(keys[0], (IN_DIM, OUT_DIM)),
        "b": jax.random.normal(keys[1], (OUT_DIM,)),
    }


def jacobian(apply_fn, params, x) -> np.ndarray:
    """Jacobian (n*C, P) of the flattened outputs, sample-major (row i*C + c)."""
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.jacrev(lambda p: apply_fn(unravel(p), x).ravel())(flat))


def uneven_partition(num_samples: int, num_agents: int, seed: int) -> list[np.ndarray]:
    """Random disjoint, covering partition with distinct sizes where possible."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, num_samples), num_agents - 1, replace=False))
    return [np.sort(p) for p in np.split(rng.permutation(num_samples), cuts)]


def mixing_for(name: str, num_agents: int = NUM_AGENTS, seed: int = 0) -> np.ndarray:
    if name == "random_geometric":
        for trial in range(100):  # first connected draw
            graph = graphs.topology(name, num_agents, seed=seed + trial, radius=0.6)
            if nx.is_connected(graph):
                return graphs.mixing_matrix(graph)
    return graphs.mixing_matrix(graphs.topology(name, num_agents, seed=seed))


def stable_lr(algorithm: str, problem, mixing: np.ndarray, fraction: float = 0.7) -> float:
    """A fraction of a cheap stable step size: exact for DGD, the sufficient bound otherwise
    (the exact ATC/CTA threshold costs a bisection over eigendecompositions)."""
    if algorithm == "dgd":
        return fraction * stability.max_stable_lr(problem, "dgd", mixing)
    return fraction * stability.sufficient_lr_bound(problem, mixing, algorithm=algorithm)


def make_problem(
    model: str = "mlp",
    seed: int = 0,
    num_agents: int = NUM_AGENTS,
    num_samples: int = NUM_SAMPLES,
    partition=None,
) -> Problem:
    """A small problem whose kernel is the plain Jacobian product J J^T."""
    rng = np.random.default_rng(seed)
    apply_fn, params = (
        (mlp_apply, mlp_params(seed)) if model == "mlp" else (affine_apply, affine_params(seed))
    )
    inputs = rng.normal(size=(num_samples, IN_DIM))
    inputs_test = rng.normal(size=(NUM_TEST, IN_DIM))
    labels = rng.integers(0, OUT_DIM, num_samples + NUM_TEST)
    onehot = np.eye(OUT_DIM)[labels]
    jac, jac_test = jacobian(apply_fn, params, inputs), jacobian(apply_fn, params, inputs_test)
    return Problem(
        targets=onehot[:num_samples],
        partition=partition or uneven_partition(num_samples, num_agents, seed),
        kernel=jac @ jac.T,
        f0=np.asarray(apply_fn(params, inputs)),
        inputs=inputs,
        apply_fn=apply_fn,
        params=params,
        inputs_test=inputs_test,
        targets_test=onehot[num_samples:],
        kernel_test=jac_test @ jac.T,
        f0_test=np.asarray(apply_fn(params, inputs_test)),
    )


#: What TensorFlow and absl print when neural-tangents' TensorFlow port loads; the package
#: defers that port, so none of it may reach a user's terminal or a chapter's log.
START_UP_NOISE = ("absl::InitializeLog", "oneDNN", "cuda drivers", "TqdmWarning", "I0000")


def start_up_noise(stderr: str) -> list[str]:
    """The start-up noise lines in ``stderr``."""
    return [line for line in stderr.splitlines() if any(n in line for n in START_UP_NOISE)]


def synthetic_confirmation(predicted, observed, *, messages: int = 4):
    """A tuning confirmation with one array of scores per seed in ``predicted`` and
    ``observed`` (final losses; messages to target are ``messages`` times them), whose
    rivals' columns rank the configurations by their index: the step size and the spectral
    gap fall with it, the fraction grows with it."""
    from companion import tune

    n = len(predicted[0])
    configs = tuple(
        tune.Configuration("cycle", "lazy", "dgd", 0.1 * (i + 1), 8, 4) for i in range(n)
    )
    columns = {
        "lr": np.arange(n, 0, -1.0),
        "lr_fraction": 0.1 * np.arange(1, n + 1),
        "spectral_gap": np.arange(n, 0, -1.0),
        "messages_per_step": np.full(n, messages),
    }
    frames = [
        pd.DataFrame({"final_loss": p, "messages_to_target": messages * p, **columns})
        for p in predicted
    ]
    seen = [pd.DataFrame({"final_loss": o, "messages_to_target": messages * o}) for o in observed]
    seeds = len(predicted)
    return tune.Confirmation(
        configs,
        tuple(range(seeds)),
        tuple(frames),
        tuple(seen),
        (1.0,) * seeds,
        (60.0,) * seeds,
        12,
    )


@pytest.fixture(scope="session", name="start_up_noise")
def _start_up_noise_fixture():
    return start_up_noise


@pytest.fixture(scope="session", name="synthetic_confirmation")
def _synthetic_confirmation_fixture():
    return synthetic_confirmation


@pytest.fixture(scope="session", name="make_problem")
def _make_problem_fixture():
    return make_problem


@pytest.fixture(scope="session", name="mixing_for")
def _mixing_for_fixture():
    return mixing_for


@pytest.fixture(scope="session", name="stable_lr")
def _stable_lr_fixture():
    return stable_lr


@pytest.fixture(scope="session")
def mlp_problem() -> Problem:
    return make_problem("mlp")


@pytest.fixture(scope="session")
def affine_problem() -> Problem:
    return make_problem("affine")
