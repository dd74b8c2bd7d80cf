"""mapreg: the Bayesian view of regularization, executable.

A Gaussian prior N(0, sigma^2) on the weights is ridge / weight decay with
lam = sigma_eps^2 / sigma^2; a Laplace prior Laplace(0, b) is the lasso with
lam = sigma_eps^2 / b (canonical objective 1/2 ||y - Xw - c||^2 + lam P(w)).
``compare`` shows it on numbers: the MAP from Pyro's log joint and the penalized optimum
from an independent solver.
"""

# The two independent sides ...
from .bayes import (
    LIKELIHOODS,
    PRIORS,
    Bernoulli,
    Categorical,
    ElasticNet,
    EvidenceResult,
    Gaussian,
    GaussianNoise,
    Laplace,
    MapResult,
    ModelMapResult,
    Optimality,
    Poisson,
    Prior,
    glm_model,
    lift_network,
    linear_model,
    log_evidence,
    make_likelihood,
    make_prior,
    map_estimate,
    map_glm,
    map_model,
    map_optimality,
    maximize_evidence,
    neg_log_joint,
)

# ... and the bridges between them.
from .compare import CompareResult, compare
from .compare_glm import GLMCompareResult
from .conventions import CONVENTIONS, all_conventions, convert
from .datasets import Dataset, d2l_weight_decay, default_dataset, load_dataset
from .errors import ConvergenceError, ConvergenceWarning
from .lagrange import LagrangePicture, lagrangian_picture, prior_from_radius, radius_from_prior
from .lagrange_plots import plot_l1_vs_l2, plot_lagrangian, plot_path, plot_posterior
from .networks import NetworkCompareResult, compare_network
from .penalized import (
    ConstrainedResult,
    GLMResult,
    PenalizedResult,
    TrainResult,
    canonical_objective,
    constrained_l1,
    constrained_l2,
    elastic_net,
    glm_lam_max,
    glm_objective,
    lam_from_radius,
    lasso,
    lasso_lam_max,
    penalized_glm,
    radius_from_lam,
    ridge,
    scale_invariance_check,
    scale_invariant_parameters,
    sgd_norm_recursion,
    train_network,
    train_penalized,
)

__version__ = "0.1.0"

__all__ = [
    "penalized_glm",
    "glm_objective",
    "glm_lam_max",
    "elastic_net",
    "GLMResult",
    "GLMCompareResult",
    "map_glm",
    "make_likelihood",
    "glm_model",
    "Poisson",
    "ElasticNet",
    "Categorical",
    "Bernoulli",
    "LIKELIHOODS",
    "CONVENTIONS",
    "PRIORS",
    "CompareResult",
    "ConstrainedResult",
    "LagrangePicture",
    "ConvergenceError",
    "ConvergenceWarning",
    "Dataset",
    "EvidenceResult",
    "Gaussian",
    "GaussianNoise",
    "Laplace",
    "MapResult",
    "ModelMapResult",
    "Optimality",
    "PenalizedResult",
    "Prior",
    "TrainResult",
    "all_conventions",
    "canonical_objective",
    "compare",
    "constrained_l1",
    "constrained_l2",
    "lagrangian_picture",
    "lam_from_radius",
    "plot_l1_vs_l2",
    "plot_lagrangian",
    "plot_path",
    "plot_posterior",
    "prior_from_radius",
    "radius_from_lam",
    "radius_from_prior",
    "convert",
    "d2l_weight_decay",
    "default_dataset",
    "lasso",
    "lasso_lam_max",
    "linear_model",
    "log_evidence",
    "maximize_evidence",
    "load_dataset",
    "make_prior",
    "map_estimate",
    "map_model",
    "map_optimality",
    "neg_log_joint",
    "ridge",
    "train_penalized",
    "NetworkCompareResult",
    "compare_network",
    "lift_network",
    "scale_invariance_check",
    "scale_invariant_parameters",
    "sgd_norm_recursion",
    "train_network",
]
