"""mapreg: the Bayesian view of regularization, executable.

A Gaussian prior N(0, sigma^2) on the weights is ridge / weight decay with
lam = sigma_eps^2 / sigma^2; a Laplace prior Laplace(0, b) is the lasso with
lam = sigma_eps^2 / b (canonical objective 1/2 ||y - Xw - c||^2 + lam P(w)).
``compare`` shows it on numbers: the MAP from Pyro's log joint and the penalized optimum
from an independent solver.
"""

# The two independent sides (bayes, penalized) and the bridges between them.
from .audit import AuditResult, audit
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
from .bayes.gibbs import GibbsResult, bayesian_lasso_gibbs
from .bayes.hierarchical import HierarchicalResult, sample_hierarchical
from .bayes.quadrature import QuadratureResult, posterior_moments_quadrature
from .compare import CompareResult, compare
from .compare_glm import GLMCompareResult
from .conventions import CONVENTIONS, all_conventions, convert
from .datasets import Dataset, d2l_weight_decay, default_dataset, load_dataset
from .dropout import DropoutResult, dropout_as_prior, dropout_prior_sigma
from .errors import ConvergenceError, ConvergenceWarning
from .hierarchical import LambdaChoices, lambda_choices
from .lagrange import (
    BoxPicture,
    LagrangePicture,
    box_picture,
    lagrangian_picture,
    prior_from_radius,
    radius_from_prior,
)
from .lagrange_plots import (
    plot_balls,
    plot_l1_vs_l2,
    plot_lagrangian,
    plot_path,
    plot_posterior,
)
from .optim import (
    ImpliedPrior,
    implied_prior,
    implied_prior_for,
    implied_prior_from_penalty,
    implied_prior_sgdw,
)
from .penalized import (
    ConstrainedResult,
    DropoutRidgeResult,
    DropoutTrainResult,
    GLMResult,
    PenalizedResult,
    TrainResult,
    canonical_objective,
    constrained_l1,
    constrained_l2,
    constrained_linf,
    dropout_penalty_weights,
    dropout_ridge,
    elastic_net,
    glm_lam_max,
    glm_objective,
    lam_from_radius,
    lasso,
    lasso_lam_max,
    penalized_glm,
    radius_from_lam,
    ridge,
    train_dropout,
    train_penalized,
)
from .training_plots import (
    L1TrainingComparison,
    l1_subgradient_vs_prox,
    plot_dropout_as_prior,
    plot_l1_subgradient_vs_prox,
)

__version__ = "0.1.0"

__all__ = [
    "GibbsResult", "bayesian_lasso_gibbs", "HierarchicalResult", "sample_hierarchical",
    "QuadratureResult", "posterior_moments_quadrature", "LambdaChoices", "lambda_choices",
    "BoxPicture",
    "box_picture",
    "plot_balls",
    "AuditResult",
    "ImpliedPrior",
    "audit",
    "constrained_linf",
    "implied_prior",
    "implied_prior_for",
    "implied_prior_from_penalty",
    "implied_prior_sgdw",
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
    "L1TrainingComparison",
    "l1_subgradient_vs_prox",
    "plot_l1_subgradient_vs_prox",
    "DropoutResult",
    "DropoutRidgeResult",
    "DropoutTrainResult",
    "dropout_as_prior",
    "dropout_penalty_weights",
    "dropout_prior_sigma",
    "dropout_ridge",
    "train_dropout",
    "plot_dropout_as_prior",
]
