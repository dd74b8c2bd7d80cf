"""The Bayesian side: priors, likelihoods, Pyro models, the MAP engine and the evidence.

Nothing here imports :mod:`mapreg.penalized` (and the penalized side never imports this
package or Pyro): the two halves of every comparison are computed independently.
``tests/test_layout.py`` enforces it.
"""

from .engine import ModelMapResult, map_model
from .evidence import EvidenceResult, log_evidence, maximize_evidence
from .likelihoods import GaussianNoise
from .map import MapResult, Optimality, map_estimate, map_optimality, neg_log_joint
from .models import linear_model, pyro_session
from .priors import PRIORS, Gaussian, Laplace, Prior, make_prior

__all__ = [
    "PRIORS",
    "EvidenceResult",
    "Gaussian",
    "GaussianNoise",
    "Laplace",
    "MapResult",
    "ModelMapResult",
    "Optimality",
    "Prior",
    "linear_model",
    "log_evidence",
    "make_prior",
    "map_estimate",
    "map_model",
    "map_optimality",
    "maximize_evidence",
    "neg_log_joint",
    "pyro_session",
]
