"""The penalized side: ridge, lasso, elastic net, penalized GLMs, constrained problems and
d2l-style training.

Written against the loss formulas with torch/numpy/scipy only: nothing here imports Pyro or
:mod:`mapreg.bayes`, so agreement with the MAP is evidence, not an identity.
``tests/test_layout.py`` enforces it.
"""

from .batchnorm import (
    NormRecursionResult,
    ScaleInvarianceResult,
    scale_invariance_check,
    scale_invariant_parameters,
    sgd_norm_recursion,
)
from .constrained import (
    ConstrainedResult,
    constrained_l1,
    constrained_l2,
    constrained_linf,
    lam_from_radius,
    radius_from_lam,
    solve_constrained,
)
from .dropout import (
    DropoutRidgeResult,
    DropoutTrainResult,
    dropout_expected_loss,
    dropout_penalty_weights,
    dropout_ridge,
    train_dropout,
)
from .glm import GLMResult, glm_lam_max, glm_objective, penalized_glm
from .linear import (
    PenalizedResult,
    canonical_objective,
    elastic_net,
    lasso,
    lasso_lam_max,
    ridge,
    solve_penalized,
)
from .networks import NetworkTrainResult, mlp, network_objective, stationarity, train_network
from .training import TrainResult, train_penalized

__all__ = [
    "ConstrainedResult",
    "DropoutRidgeResult",
    "DropoutTrainResult",
    "dropout_expected_loss",
    "dropout_penalty_weights",
    "dropout_ridge",
    "train_dropout",
    "GLMResult",
    "PenalizedResult",
    "TrainResult",
    "canonical_objective",
    "constrained_l1",
    "constrained_l2",
    "constrained_linf",
    "elastic_net",
    "glm_lam_max",
    "glm_objective",
    "lam_from_radius",
    "lasso",
    "lasso_lam_max",
    "penalized_glm",
    "radius_from_lam",
    "ridge",
    "solve_constrained",
    "solve_penalized",
    "train_penalized",
    "NormRecursionResult",
    "ScaleInvarianceResult",
    "scale_invariance_check",
    "scale_invariant_parameters",
    "sgd_norm_recursion",
    "NetworkTrainResult",
    "mlp",
    "network_objective",
    "stationarity",
    "train_network",
]
