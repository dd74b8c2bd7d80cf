"""Command line: a thin layer over :func:`mapreg.compare`, :func:`mapreg.convert` and the
figure functions.

    mapreg compare --prior laplace --b 0.5 [--noise 2] [--dataset d2l] [--convention NAME]
                   [--plot FILE.png] [--json] [--train] [--strict]
    mapreg lagrange --prior laplace --b 0.05 --out fig.png [--view posterior|l1-vs-l2|balls]
    mapreg path --prior laplace --b 0.5 --out path.svg
    mapreg posterior --prior laplace --b 0.5 --out post.png [--likelihood ...] [--draws N]
                     [--warmup N] [--chains K] [--seed S] [--dataset NAME] [--level 0.9]
    mapreg convert 8 --from canonical --to sklearn_lasso --prior laplace --n 20
    mapreg optim --optimizer adam --weight-decay 0.01 --loss mse --reduction mean --n 20 \
                 --sigma-eps 0.5     (what prior did my training assume?)
    mapreg --version
    python -m mapreg ...        (the same)

Errors in the input become one line on stderr, ``mapreg: error: ...``, and exit code 2; a
solver that misses its tolerance prints one line ``mapreg: warning: ...`` on stderr (stdout,
e.g. ``--json``, stays clean), or with ``--strict`` is an error with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .conventions import ALIASES, CONVENTIONS, LIKELIHOOD_NAMES
from .datasets import DATASETS
from .errors import ConvergenceError, ConvergenceWarning
from .penalized.optimizers import LOSSES, OPTIMIZERS, REDUCTIONS


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``mapreg: error: ...`` and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"mapreg: error: {message} (see: {self.prog} --help)\n")


def _version() -> str:
    """The installed distribution's version, else the package's ``__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mapreg")
    except PackageNotFoundError:
        from . import __version__

        return __version__


#: The priors the CLI offers (mapreg.bayes.priors.PRIORS, listed here to keep --help fast).
PRIOR_CHOICES = ("gaussian", "laplace", "elasticnet")
BALL_CHOICES = ("gaussian", "laplace")  # the priors with one constraint ball (lagrange, path)


def _prior_args(parser: argparse.ArgumentParser, mark: bool = False,
                required: bool = True, choices: tuple[str, ...] = PRIOR_CHOICES) -> None:
    """--prior, --sigma, --b, --noise: shared by the subcommands."""
    what = "mark this" if mark else ""
    parser.add_argument("--prior", required=required, choices=list(choices))
    parser.add_argument("--sigma", type=float,
                        help=f"{what} Gaussian (or elastic-net) prior scale sigma".strip())
    parser.add_argument("--b", type=float,
                        help=f"{what} Laplace (or elastic-net) prior scale b".strip())
    parser.add_argument("--noise", type=float, help="noise scale sigma_eps of the Gaussian "
                        "likelihood (default: the data's)")


def _conventions_epilog() -> str:
    rows = [textwrap.fill(f"{name:<19} ({', '.join(c.priors)}; {', '.join(c.likelihoods)}): "
                          f"{c.objective}", width=96,
                          initial_indent="  ", subsequent_indent=" " * 22)
            for name, c in CONVENTIONS.items()]
    aliases = ", ".join(f"{a} = {b}" for a, b in ALIASES.items())
    return "conventions (see mapreg.conventions for every formula):\n" + "\n".join(rows) + \
        f"\n  aliases: {aliases}"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mapreg",
        description="MAP under a Pyro prior equals the penalized optimum: see it on numbers.",
    )
    parser.add_argument("--version", action="version", version=f"mapreg {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    datasets = ", ".join(DATASETS)

    cmp_ = sub.add_parser(
        "compare",
        help="MAP (Pyro) vs ridge/lasso optimum on the built-in data",
        description="Solve the same problem as MAP (Pyro log joint) and as penalized "
        "least squares, and print both side by side.",
    )
    _prior_args(cmp_)
    cmp_.add_argument("--likelihood", default="gaussian", choices=list(LIKELIHOOD_NAMES),
                      help="gaussian (linear regression, default), bernoulli (logistic), "
                      "categorical (softmax) or poisson (log link)")
    cmp_.add_argument("--dataset", help=f"built-in data: {datasets} (default: the "
                      "likelihood's own data set)")
    cmp_.add_argument("--convention", help="also print lambda in this convention "
                      f"({', '.join(CONVENTIONS)})")
    cmp_.add_argument("--plot", metavar="FILE", help="write the coefficient figure; the format "
                      "follows the extension (png, svg, pdf, ...)")
    cmp_.add_argument("--json", action="store_true", help="print a JSON result instead")
    cmp_.add_argument("--train", action="store_true", help="also train nn.Linear the d2l way")
    cmp_.add_argument("--strict", action="store_true", help="non-convergence is an error "
                      "(exit code 1)")

    lag = sub.add_parser(
        "lagrange",
        help="draw the constrained-vs-penalized (or posterior) picture of a 2-feature problem",
        description="Draw the Lagrangian picture (loss contours, the constraint ball of the "
        "computed radius, the tangency point = penalized optimum = MAP) on the built-in "
        "two-feature data. The file format follows the extension of --out.",
    )
    _prior_args(lag, required=False, choices=BALL_CHOICES)
    lag.add_argument("--view", default="lagrange",
                     choices=["lagrange", "posterior", "l1-vs-l2", "balls"],
                     help="balls adds AdamW's l_inf box (--weight-decay) to l1-vs-l2; "
                     "l1-vs-l2 draws both priors (needs no --prior; uses --sigma and --b, "
                     "default 0.5 / 0.05)")
    lag.add_argument("--weight-decay", dest="weight_decay", type=float,
                     help="AdamW's weight_decay for --view balls (the box radius is "
                     "1/weight_decay; default: a box that binds)")
    lag.add_argument("--out", required=True, metavar="FILE", help="png, svg, pdf, ...")

    path = sub.add_parser(
        "path",
        help="draw the regularization path (MAP and penalized optimum vs lambda)",
        description="Coefficients vs lambda from the exact solver and the Pyro MAP, with the "
        "prior scale on a second axis. The file format follows the extension of --out.",
    )
    _prior_args(path, mark=True, choices=BALL_CHOICES)
    path.add_argument("--dataset", default="default", help=f"built-in data: {datasets}")
    path.add_argument("--out", required=True, metavar="FILE", help="png, svg, pdf, ...")

    names = [*CONVENTIONS, *ALIASES]
    _posterior_parser(sub, datasets)

    conv = sub.add_parser(
        "convert",
        help="convert lambda between conventions",
        description="Convert a regularization strength between conventions.",
        epilog=_conventions_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    conv.add_argument("value", type=float)
    conv.add_argument("--from", dest="from_", required=True, choices=names, metavar="FROM",
                      help="convention of VALUE (one of the names below)")
    conv.add_argument("--to", required=True, choices=names, metavar="TO",
                      help="target convention (one of the names below)")
    conv.add_argument("--prior", required=True, choices=["gaussian", "laplace"])
    conv.add_argument("--likelihood", default="gaussian", choices=list(LIKELIHOOD_NAMES),
                      help="the loss the conventions refer to (default gaussian)")
    conv.add_argument("--n", type=int, help="number of samples (mean-type conventions)")
    conv.add_argument("--noise", type=float, help="noise scale sigma_eps (prior scales, nll)")
    conv.add_argument("--sd-y", dest="sd_y", type=float, help="1/n standard deviation of y "
                      "(makes glmnet's ridge lambda exact)")

    opt = sub.add_parser(
        "optim",
        help="what prior did my training assume? (a torch optimizer's weight decay, or a "
        "penalty term in the loss)",
        description="Print the prior whose MAP the training's fixed point is, for a torch "
        "optimizer with weight_decay (coupled: a Gaussian prior; AdamW's decoupled decay: no "
        "prior, a box ||w||_inf <= 1/weight_decay), decoupled SGD decay with momentum "
        "(--optimizer sgdw) or an explicit --l1/--l2 term in the loss.",
    )
    opt.add_argument("--optimizer", default="sgd", choices=[*OPTIMIZERS, "sgdw"],
                     help="torch optimizer (default sgd); sgdw: decoupled, lr-scaled SGD decay")
    opt.add_argument("--weight-decay", dest="weight_decay", type=float, default=0.0,
                     help="the optimizer's weight_decay (default 0)")
    opt.add_argument("--l2", type=float, help="instead of weight decay: loss + L2/2 ||w||^2 "
                     "(also Paddle's L2Decay(L2))")
    opt.add_argument("--l1", type=float, help="instead of weight decay: loss + L1 ||w||_1")
    opt.add_argument("--loss", default="mse", choices=list(LOSSES),
                     help="the training loss (default mse: torch's MSELoss, r^2 not r^2/2)")
    opt.add_argument("--reduction", default="mean", choices=list(REDUCTIONS),
                     help="the loss's reduction (default mean: needs --n)")
    opt.add_argument("--n", type=int, help="number of training samples (reduction mean)")
    opt.add_argument("--sigma-eps", dest="sigma_eps", type=float,
                     help="noise scale sigma_eps (mse: gives sigma in the weights' units)")
    opt.add_argument("--momentum", type=float, help="SGD / RMSprop momentum")
    opt.add_argument("--dampening", type=float, help="SGD dampening")
    opt.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    opt.add_argument("--decoupled", action="store_true",
                     help="Adam(decoupled_weight_decay=True), i.e. AdamW")
    opt.add_argument("--lr", type=float, help="learning rate (sgdw without lr scaling)")
    opt.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return parser


def _save(fig, path: str) -> None:
    fig.savefig(path, dpi=150)
    print(f"figure written to {path}")


def _run_compare(args: argparse.Namespace) -> int:
    from .compare import compare
    from .conventions import from_canonical
    from .plotting import check_figure_path

    if args.plot:
        check_figure_path("--plot", args.plot)
    result = compare(
        args.prior,
        sigma=args.sigma,
        b=args.b,
        noise=args.noise,
        dataset=args.dataset,
        train=args.train,
        strict=args.strict,
        likelihood=args.likelihood,
    )
    extra = None
    if args.convention:
        n = int(result.X.shape[0])
        gaussian = args.likelihood == "gaussian"
        sd_y = float(result.y.std(correction=0)) if gaussian else None
        extra = from_canonical(
            result.lam, args.convention, prior=result.prior.name, n=n,
            noise=result.noise if gaussian else None, likelihood=args.likelihood,
            sd_y=sd_y or None,
        )
    if args.json:
        if args.plot:
            result.plot().savefig(args.plot, dpi=150)
        out = result.to_dict()
        if extra is not None:
            out["requested_convention"] = {"name": args.convention, "value": extra}
        if args.plot:
            out["plot"] = args.plot
        print(json.dumps(out, indent=2))
        return 0
    print(result)
    if extra is not None:
        print(f"lam in convention {args.convention!r}: {extra:.10g}")
    if args.plot:
        _save(result.plot(), args.plot)
    return 0


def _run_lagrange(args: argparse.Namespace) -> int:
    from .lagrange_plots import plot_balls, plot_l1_vs_l2, plot_lagrangian, plot_posterior
    from .plotting import check_figure_path

    check_figure_path("--out", args.out)
    if args.weight_decay is not None and args.view != "balls":
        raise ValueError(f"--weight-decay is for --view balls (AdamW's box); got --view "
                         f"{args.view}")
    if args.view in ("l1-vs-l2", "balls"):
        scales = {"sigma": args.sigma if args.sigma is not None else 0.5,
                  "b": args.b if args.b is not None else 0.05, "noise": args.noise}
        fig = (plot_l1_vs_l2(**scales) if args.view == "l1-vs-l2"
               else plot_balls(weight_decay=args.weight_decay, **scales))
    else:
        if args.prior is None:
            raise ValueError(f"--prior (gaussian or laplace) is required for --view {args.view}")
        draw = plot_lagrangian if args.view == "lagrange" else plot_posterior
        fig = draw(args.prior, sigma=args.sigma, b=args.b, noise=args.noise)
    _save(fig, args.out)
    return 0


def _run_path(args: argparse.Namespace) -> int:
    from .lagrange_plots import plot_path
    from .plotting import check_figure_path

    check_figure_path("--out", args.out)
    fig = plot_path(args.prior, sigma=args.sigma, b=args.b, noise=args.noise,
                    dataset=args.dataset)
    _save(fig, args.out)
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    from .conventions import convert

    value = convert(args.value, args.from_, args.to, prior=args.prior, n=args.n, noise=args.noise,
                    likelihood=args.likelihood, sd_y=args.sd_y)
    print(f"{value:.12g}")
    return 0


def _run_optim(args: argparse.Namespace) -> int:
    from .optim import implied_prior_for, implied_prior_from_penalty, implied_prior_sgdw

    context = {"loss": args.loss, "reduction": args.reduction, "n": args.n,
               "noise_scale": args.sigma_eps}
    terms = [flag for flag in ("l1", "l2") if getattr(args, flag) is not None]
    if len(terms) > 1 or (terms and args.weight_decay):
        raise ValueError("give one of --weight-decay, --l1 and --l2; got "
                         + ", ".join(f"--{t}" for t in terms + (["weight-decay"]
                                                                  if args.weight_decay else [])))
    if terms:
        result = implied_prior_from_penalty(getattr(args, terms[0]), terms[0], **context)
    elif args.optimizer == "sgdw":
        extra = {k: v for k in ("momentum", "dampening", "lr")
                 if (v := getattr(args, k)) is not None}
        result = implied_prior_sgdw(args.weight_decay, lr_scaled=args.lr is None, **extra,
                                    **context)
    else:
        extra = {k: v for k in ("momentum", "dampening") if (v := getattr(args, k)) is not None}
        if args.nesterov:
            extra["nesterov"] = True
        if args.decoupled:
            extra["decoupled_weight_decay"] = True
        if args.lr is not None:
            extra["lr"] = args.lr
        result = implied_prior_for(args.optimizer, weight_decay=args.weight_decay, **extra,
                                   **context)
    print(result.table("markdown") if args.markdown else result)
    return 0


def _posterior_parser(sub, datasets: str) -> None:
    """The ``posterior`` subcommand's arguments (NUTS next to the MAP)."""
    post = sub.add_parser(
        "posterior",
        help="sample the posterior behind the penalty with Pyro's NUTS; MAP for reference",
        description="Run Pyro's NUTS on the model the MAP engine maximises, print a summary "
        "table (MAP, posterior mean, median, sd, credible interval, R-hat, ESS) and write "
        "the marginal posteriors with the MAP and the penalized optimum marked (two "
        "features and the gaussian likelihood: the posterior contours with the draws "
        "instead). The file format follows the extension of --out.",
    )
    _prior_args(post)
    post.add_argument("--likelihood", default="gaussian", choices=list(LIKELIHOOD_NAMES),
                      help="gaussian (default), bernoulli, categorical or poisson")
    post.add_argument("--dataset", help=f"built-in data: {datasets}")
    post.add_argument("--out", metavar="FILE", help="write the figure here")
    post.add_argument("--draws", type=int, default=1000, help="draws kept per chain "
                      "(default 1000)")
    post.add_argument("--warmup", type=int, default=500, help="warm-up steps per chain "
                      "(default 500)")
    post.add_argument("--chains", type=int, help="chains (default min(4, CPU count))")
    post.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    post.add_argument("--level", type=float, default=0.9, help="credible level (default 0.9)")


def _run_posterior(args: argparse.Namespace) -> int:
    from .plotting import check_figure_path
    from .posterior import posterior
    from .posterior_plots import plot_marginals, plot_posterior_draws

    if args.out:
        check_figure_path("--out", args.out)
    result = posterior(args.prior, sigma=args.sigma, b=args.b, noise=args.noise,
                       dataset=args.dataset, likelihood=args.likelihood,
                       num_samples=args.draws, warmup_steps=args.warmup,
                       num_chains=args.chains, seed=args.seed, level=args.level)
    print(result)
    if args.out:
        two = args.likelihood == "gaussian" and result.map_coef.numel() == 2
        _save((plot_posterior_draws if two else plot_marginals)(result), args.out)
    return 0


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Collect the warnings raised inside and print each distinct one as one line on
    stderr (``mapreg: warning: ...``) instead of Python's two-line source-quoting form."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = " ".join(str(w.message).split())
                if not issubclass(w.category, ConvergenceWarning):
                    text = f"{w.category.__name__}: {text}"
                if text not in seen:
                    seen.add(text)
                    print(f"mapreg: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mapreg`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    run = {"compare": _run_compare, "lagrange": _run_lagrange, "path": _run_path,
           "convert": _run_convert, "optim": _run_optim,
           "posterior": _run_posterior}[args.command]
    try:
        with _warnings_as_lines():
            return run(args)
    except (ValueError, OSError) as exc:  # bad input; an unwritable file
        return _fail(exc, 2)
    except ConvergenceError as exc:  # only with --strict
        return _fail(exc, 1)


def _fail(exc: BaseException, code: int) -> int:
    print(f"mapreg: error: {' '.join(str(exc).split())}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
