"""``unlearn predict`` (ask a model) and ``unlearn evaluate`` (score it on an imported
dataset), both on what the model serves now. They load the model, so torch is imported inside
the commands only."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
from rich.markup import escape
from rich.table import Table

from service.cli.common import AsJson, dump_views, fail, open_service, out, user_errors

if TYPE_CHECKING:
    from service.core import Service
    from service.usecases.evaluate import Evaluation
    from service.views import Prediction

SHOWN_CHARS = 60  # of each input, in the table (--json has them all)
ModelOption = Annotated[int, typer.Option("--model", help="the model to ask (its id)")]


class RouteLike(Protocol):
    @property
    def shard(self) -> int: ...
    @property
    def sequence(self) -> int | None: ...
    @property
    def depth(self) -> int: ...


def predict(
    model: ModelOption,
    texts: Annotated[
        list[str] | None, typer.Argument(help="texts to classify, one argument each")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="one input per line ('-': standard input); a line holding a JSON array is "
            "a feature vector, any other non-blank line a text",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Label and per-label probabilities of each input, from what the model serves now (the
    routing version and each shard's served depth are printed with them)."""
    inputs: list[object] = list(texts or [])
    if file is not None:
        if inputs:
            fail("give the inputs as arguments or in --file, not both")
        inputs = read_inputs(file)
    if not inputs:
        fail("nothing to predict: give texts as arguments or --file")
    with user_errors():
        answer = serving(open_service()).predict(model, inputs)
    if as_json:
        dump_views(answer)
        return
    print_prediction(model, inputs, answer)


def evaluate(
    model: ModelOption,
    dataset: Annotated[str, typer.Option(help="an imported dataset with the model's labels")],
    as_json: AsJson = False,
) -> None:
    """Score what the model serves now on a dataset's active records: accuracy, per-label
    precision, recall and F1, and the confusion matrix (rows: true label)."""
    with user_errors():
        result = serving(open_service()).evaluate(model, dataset)
    if as_json:
        dump_views(result)
        return
    print_evaluation(result)


def serving(svc: Service) -> Service:
    """The service with a model server of its own (this process loads the model)."""
    from service.serving import ModelServer

    if svc.predictor is None:
        svc.predictor = ModelServer(svc)
    return svc


def read_inputs(path: Path) -> list[object]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    inputs: list[object] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            try:
                inputs.append(json.loads(line))
                continue
            except json.JSONDecodeError:
                pass  # a text that starts with a bracket
        inputs.append(line)
    return inputs


def served_line(routing_version: int, routes: Sequence[RouteLike]) -> str:
    shards = "; ".join(
        f"shard {r.shard} "
        + ("dead" if r.sequence is None else f"seq {r.sequence} depth {r.depth}")
        for r in routes
    )
    return f"routing version {routing_version}" + (f", served: {shards}" if shards else "")


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return escape(text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…")


def print_prediction(model: int, inputs: Sequence[object], answer: Prediction) -> None:
    table = Table(title=f"model {model}: {served_line(answer.routing_version, answer.routes)}")
    table.add_column("input")
    if answer.completions is not None:
        table.add_column("completion")
        for x, completion in zip(inputs, answer.completions, strict=True):
            table.add_row(_shown(x), escape(completion))
    else:
        names = answer.label_names or []
        table.add_column("label")
        for name in names:
            table.add_column(f"p({escape(name)})", justify="right")
        for x, label, probs in zip(inputs, answer.labels, answer.probabilities, strict=True):
            table.add_row(_shown(x), escape(label), *[f"{p:.4f}" for p in probs])
    out.print(table)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_evaluation(e: Evaluation) -> None:
    out.print(
        f"model {e.model} on {escape(e.dataset)}: accuracy {e.accuracy:.4f} "
        f"({e.n_correct}/{e.n_records}), {served_line(e.routing_version, e.routes)}",
        soft_wrap=True,
    )
    if e.model_version is not None:
        out.print(f"  live version {e.model_version}")
    scores = Table(title="per label")
    for col in ("label", "support", "predicted", "precision", "recall", "F1"):
        scores.add_column(col, justify="left" if col == "label" else "right")
    for c in e.per_class:
        scores.add_row(
            escape(c.label),
            str(c.support),
            str(c.predicted),
            _num(c.precision),
            _num(c.recall),
            _num(c.f1),
        )
    out.print(scores)
    confusion = Table(title="confusion (rows: true label, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for name in e.label_names:
        confusion.add_column(escape(name), justify="right")
    for name, row in zip(e.label_names, e.confusion, strict=True):
        confusion.add_row(escape(name), *map(str, row))
    out.print(confusion)
