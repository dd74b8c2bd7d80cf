"""The whole posterior, not just its mode: Pyro's own NUTS on the model the MAP engine uses.

:func:`run_nuts` runs ``pyro.infer.MCMC(NUTS(model))`` on a Pyro model of this package
(:func:`~mapreg.bayes.models.linear_model` or :func:`~mapreg.bayes.models.glm_model`, the
flat intercept ``c ~ ImproperUniform(real)`` included), chain after chain, and returns the
draws of the weight site ``"w"`` and the intercept site ``"c"`` grouped by chain, with
NUTS's own diagnostics (divergent transitions, acceptance rate, adapted step size).
:func:`chain_diagnostics` computes split R-hat and the effective sample size per coordinate
with :func:`pyro.ops.stats.split_gelman_rubin` and
:func:`pyro.ops.stats.effective_sample_size`.

Chains run one after another in this process, each with its own seed drawn from
``numpy.random.SeedSequence(seed).spawn(num_chains)`` and its own starting point. Pyro's
``MCMC(num_chains=K)`` would decide by itself, from ``os.cpu_count()``, whether to run the
chains in worker processes or sequentially, and the draws differ between the two paths:
running each chain as its own single-chain ``MCMC`` makes the draws a function of
``(seed, num_chains)`` only, on any machine. (On the 2-core machine this was written on,
Pyro's multiprocessing path is not taken for more than one chain anyway: it reserves one
core for the main process.)

The flat intercept has no distribution to sample a starting point from (Pyro's default
``init_to_uniform`` calls ``ImproperUniform.sample``, which raises), so every chain starts
at a caller-given point: the bridge passes the MAP plus a seeded uniform jitter, a
different one per chain (overdispersed starts, so that split R-hat can see chains that have
not mixed).

Every run happens inside :func:`~mapreg.bayes.models.pyro_session` (one thread at a time,
a private param-store scope) and inside :func:`rng_scope`, which restores the global
torch, numpy and ``random`` generator states on exit: the draws are reproducible and the
caller's random streams are left as they were.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_value
from pyro.ops.stats import effective_sample_size, split_gelman_rubin

from .._results import FrozenResult
from .models import INTERCEPT_SITE, WEIGHT_SITE, pyro_session, rng_scope

__all__ = ["NutsRun", "chain_diagnostics", "chain_seeds", "rng_scope",
           "run_nuts"]


def chain_seeds(seed: int, num_chains: int) -> list[int]:
    """One independent 32-bit seed per chain, from ``numpy.random.SeedSequence(seed)``."""
    children = np.random.SeedSequence(seed).spawn(num_chains)
    return [int(child.generate_state(1)[0]) for child in children]


@dataclass(frozen=True, eq=False)
class NutsRun(FrozenResult):
    """Draws and NUTS diagnostics of :func:`run_nuts`.

    Attributes
    ----------
    coef, intercept
        Draws of the sites ``"w"`` and ``"c"`` grouped by chain: shapes
        (chains, draws, *w.shape) and (chains, draws, *c.shape), float64.
    divergences
        Divergent transitions after warm-up, per chain (NUTS's own count).
    accept_rate
        Pyro's "acceptance rate" diagnostic after warm-up, per chain.
    step_size
        The adapted step size of each chain.
    seeds
        The seed each chain ran with.
    wall_time
        Seconds for all chains, warm-up included.
    """

    coef: torch.Tensor
    intercept: torch.Tensor
    divergences: tuple[int, ...]
    accept_rate: tuple[float, ...]
    step_size: tuple[float, ...]
    seeds: tuple[int, ...]
    wall_time: float = field(compare=False)


def run_nuts(
    model: Callable[..., torch.Tensor],
    args: tuple,
    inits: list[dict[str, torch.Tensor]],
    *,
    num_samples: int,
    warmup_steps: int,
    seed: int,
    progress: bool = False,
    jit_compile: bool = False,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
) -> NutsRun:
    """Run ``pyro.infer.MCMC(NUTS(model))`` once per chain, chains one after another.

    Parameters
    ----------
    model, args
        A Pyro model with the sample sites ``"w"`` and ``"c"`` (and an observed ``"y"``),
        and the arguments to call it with, e.g. ``(X, y)``.
    inits
        One starting point ``{"w": ..., "c": ...}`` per chain (the number of chains).
    num_samples, warmup_steps
        Draws kept per chain, and warm-up iterations (step size and diagonal mass matrix
        adaptation, Pyro's defaults) discarded before them.
    seed
        Seeds the chains (:func:`chain_seeds`); the caller's RNG states are restored.
    progress
        Show Pyro's progress bar.
    jit_compile, target_accept_prob, max_tree_depth
        Passed to :class:`pyro.infer.NUTS`. With ``jit_compile=True`` the potential energy
        and its gradient are traced by ``torch.jit`` once per chain; build the model from
        mapreg's models (they read ``X.shape`` as ints, so tracing bakes the shapes in).

    The inputs are validated by the caller (:func:`mapreg.posterior`).
    """
    coefs, intercepts, div, acc, steps = [], [], [], [], []
    seeds = chain_seeds(seed, len(inits))
    start = time.perf_counter()
    for init, chain_seed in zip(inits, seeds, strict=True):
        with pyro_session(), rng_scope(chain_seed), warnings.catch_warnings():
            if jit_compile:  # tracing notes Python-level shape reads; harmless here
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace. is deprecated",
                                        category=DeprecationWarning)
            kernel = NUTS(model, target_accept_prob=target_accept_prob,
                          max_tree_depth=max_tree_depth, full_mass=False,
                          jit_compile=jit_compile, ignore_jit_warnings=True,
                          max_plate_nesting=1,  # the "data" plate; Pyro's guess would
                          # run the model unconditioned and sample the flat intercept
                          init_strategy=init_to_value(values=init))
            mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup_steps,
                        num_chains=1, disable_progbar=not progress)
            mcmc.run(*args)
            samples = mcmc.get_samples()
            diag = mcmc._diagnostics[0]  # NUTS's per-chain record (public: .diagnostics())
        coefs.append(samples[WEIGHT_SITE].detach().to(torch.float64))
        intercepts.append(samples[INTERCEPT_SITE].detach().to(torch.float64))
        div.append(len(diag.get("divergences", [])))
        acc.append(float(diag.get("acceptance rate", float("nan"))))
        steps.append(float(kernel.step_size))
    wall = time.perf_counter() - start
    return NutsRun(torch.stack(coefs), torch.stack(intercepts), tuple(div), tuple(acc),
                   tuple(steps), tuple(seeds), wall)


def chain_diagnostics(draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split R-hat and effective sample size of every coordinate.

    ``draws`` has shape (chains, draws, *event); returns two tensors of shape ``event``
    from :func:`pyro.ops.stats.split_gelman_rubin` and
    :func:`pyro.ops.stats.effective_sample_size` (both on the (chains, draws) array of each
    coordinate). R-hat is NaN for fewer than 4 draws per chain (each half needs 2).
    """
    flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
    if draws.shape[1] < 4:
        rhat = torch.full(flat.shape[2:], float("nan"), dtype=torch.float64)
    else:
        rhat = split_gelman_rubin(flat, chain_dim=0, sample_dim=1)
    ess = effective_sample_size(flat, chain_dim=0, sample_dim=1)
    event = draws.shape[2:]
    return rhat.reshape(event).to(torch.float64), ess.reshape(event).to(torch.float64)
