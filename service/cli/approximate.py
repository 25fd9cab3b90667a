"""Approximate models from the shell: ``unlearn train-approximate`` registers and trains one,
``unlearn requests resolve`` decides a deletion whose unlearned version was flagged for review.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer

from models.approximate.names import FAMILY_HELP, METHOD_HELP, FamilyName
from models.approximate.thresholds import DEFAULT_THRESHOLDS, EvidenceThresholds
from models.config import help_of
from service.cli.common import (
    AsJson,
    Progress,
    dump_views,
    fail,
    open_service,
    out,
    progress_bars,
    user_errors,
)
from service.cli.models import finish_model
from service.cli.printers import print_unlearning

if TYPE_CHECKING:
    from service.approximate.review import Action

Pairs = Annotated[
    list[str] | None,
    typer.Option(metavar="KEY=VALUE", help="method hyperparameter (repeat)"),
]


def threshold_option(name: str, *, upper: float | None = None) -> Any:
    """A non-negative option with the help text of ``EvidenceThresholds`` field ``name``."""
    return typer.Option(min=0, max=upper, help=help_of(EvidenceThresholds, name))


def pairs(items: list[str] | None, option: str, *, numbers_only: bool) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict: ints, then floats; without ``numbers_only`` also
    ``true``/``false`` and plain strings (a method's optimiser name, say)."""
    found: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key or not text:
            fail(f"{option} takes KEY=VALUE, got {item!r}")
        if key in found:
            fail(f"{option} {key} is given twice")
        found[key] = _value(text, numbers_only, f"{option} {item!r}")
    return found


def _value(text: str, numbers_only: bool, where: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        if numbers_only:
            fail(f"{where}: {text!r} is not a number")
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text
    if not math.isfinite(number):
        fail(f"{where}: the value must be a finite number")
    return number


def train_approximate(
    dataset: Annotated[str, typer.Option(help="name of an imported dataset")],
    family: Annotated[FamilyName, typer.Option(help=FAMILY_HELP)],
    eval_dataset: Annotated[
        str,
        typer.Option(help="imported held-out dataset the evidence compares the forget set with"),
    ],
    method: Annotated[str | None, typer.Option(help=METHOD_HELP)] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="family hyperparameter, a number (repeat)"),
    ] = None,
    method_param: Pairs = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
    auc_margin: Annotated[
        float, threshold_option("auc_margin", upper=0.5)
    ] = DEFAULT_THRESHOLDS.auc_margin,
    auc_z: Annotated[float, threshold_option("auc_z")] = DEFAULT_THRESHOLDS.auc_z,
    max_test_drop: Annotated[
        float, threshold_option("max_test_drop")
    ] = DEFAULT_THRESHOLDS.max_test_drop,
    max_retain_nll_rise: Annotated[
        float, threshold_option("max_retain_nll_rise")
    ] = DEFAULT_THRESHOLDS.max_retain_nll_rise,
    wait: Annotated[
        bool, typer.Option(help="train now in this process (embedded) or wait for a worker")
    ] = True,
    progress: Progress = True,
    as_json: AsJson = False,
) -> None:
    """Register an approximate model (trained on all its data at once) and train it."""
    family_params = pairs(param, "--param", numbers_only=True)
    method_params = pairs(method_param, "--method-param", numbers_only=False)
    with user_errors():
        from service.approximate.registry import ApproximateSpec
        from service.views import ApproximateStatus

        spec = ApproximateSpec(
            family=family,
            eval_dataset=eval_dataset,
            method=method,
            family_params=family_params,
            method_params=method_params,
            seed=seed,
            auc_margin=auc_margin,
            auc_z=auc_z,
            max_test_drop=max_test_drop,
            max_retain_nll_rise=max_retain_nll_rise,
        )
        svc = open_service()
        model_id = svc.create_approximate_model(dataset, spec)
        if wait:
            finish_model(svc, model_id, progress)
        view = svc.model_status(model_id)
    if as_json:
        dump_views(view)
        return
    if not isinstance(view, ApproximateStatus):
        fail(f"model {model_id} is not an approximate model")
    live = view.live_version
    out.print(
        f"model {model_id} ({view.family}, unlearns with {view.method}): {view.status}, "
        f"live version {live if live is not None else 'none yet'}"
    )
    if not wait:
        out.print("  training is queued: `unlearn worker` runs it")


def requests_resolve(
    request_id: Annotated[str, typer.Argument(help="request id (in state needs_review)")],
    accept: Annotated[
        bool, typer.Option("--accept", help="publish the flagged version as it is")
    ] = False,
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="retrain from scratch on the remaining data (exact)"),
    ] = False,
    method: Annotated[
        str | None,
        typer.Option(help="unlearn again from the live version with this method (e.g. FT)"),
    ] = None,
    method_param: Pairs = None,
    wait: Annotated[
        bool, typer.Option(help="run the new jobs now in this process (embedded) or wait")
    ] = True,
    progress: Progress = True,
    as_json: AsJson = False,
) -> None:
    """Decide a request in needs_review: accept, another method, or the exact retrain."""
    chosen = [
        name
        for name, given in (("--accept", accept), ("--retrain", retrain), ("--method", method))
        if given
    ]
    if len(chosen) != 1:
        got = f" (got {' and '.join(chosen)})" if chosen else ""
        fail(f"give exactly one of --accept, --retrain or --method NAME{got}")
    overrides = pairs(method_param, "--method-param", numbers_only=False)
    if overrides and method is None:
        fail("--method-param goes with --method NAME")
    action: Action = "accept" if accept else "retrain" if retrain else "method"
    with user_errors():
        svc = open_service()
        view = svc.resolve(request_id, action, method, overrides or None)
        if wait and view.state == "unlearning":
            view = svc.finish_request(request_id, lambda: progress_bars(progress))
    if as_json:
        dump_views(view)
        return
    print_unlearning(view)
