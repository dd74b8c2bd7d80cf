"""The Bayesian side: priors, likelihoods, Pyro models, the MAP engine and the evidence.

Nothing here imports :mod:`mapreg.penalized` (and the penalized side never imports this
package or Pyro): the two halves of every comparison are computed independently.
``tests/test_layout.py`` enforces it.
"""

from .engine import ModelMapResult, map_model
from .evidence import EvidenceResult, log_evidence, maximize_evidence
from .glm_map import glm_neg_log_joint, map_glm
from .likelihoods import (
    LIKELIHOODS,
    Bernoulli,
    Categorical,
    GaussianNoise,
    Poisson,
    make_likelihood,
)
from .map import MapResult, Optimality, map_estimate, map_optimality, neg_log_joint
from .models import glm_model, linear_model, pyro_session
from .networks import NetworkModel, lift_network, network_log_joint_grad
from .priors import PRIORS, ElasticNet, Gaussian, Laplace, Prior, make_prior

__all__ = [
    "PRIORS",
    "LIKELIHOODS",
    "Bernoulli",
    "Categorical",
    "ElasticNet",
    "EvidenceResult",
    "Gaussian",
    "GaussianNoise",
    "Laplace",
    "MapResult",
    "ModelMapResult",
    "Optimality",
    "Poisson",
    "Prior",
    "glm_model",
    "glm_neg_log_joint",
    "linear_model",
    "log_evidence",
    "make_likelihood",
    "make_prior",
    "map_estimate",
    "map_glm",
    "map_model",
    "map_optimality",
    "maximize_evidence",
    "neg_log_joint",
    "pyro_session",
    "NetworkModel",
    "lift_network",
    "network_log_joint_grad",
]
