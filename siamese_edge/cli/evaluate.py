"""``siamese-edge evaluate``: verification accuracy of a model on labelled data."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from siamese_edge.cli.options import (
    EXIT_PARTIAL, backend_options, batch_option, json_option, model_option, open_embedder,
    print_json, warn,
)

if TYPE_CHECKING:
    from siamese_edge.confidence import ConfidenceIntervals
    from siamese_edge.error_breakdown import ErrorBreakdown
    from siamese_edge.evaluation import EvaluationReport


def error_lines(errors: ErrorBreakdown) -> list[str]:
    """Text lines of the error breakdown; none when the threshold makes no errors."""
    lines = []
    if errors.false_rejects:
        lines.append("most falsely rejected: " + ", ".join(
            f"{e.identity} {e.frr:.3g} ({e.false_rejects}/{e.genuine_pairs})"
            for e in errors.false_rejects))
    if errors.false_accepts:
        lines.append("most confused pairs:   " + ", ".join(
            f"{p.first}~{p.second} {p.far:.3g} ({p.false_accepts}/{p.impostor_pairs})"
            for p in errors.false_accepts))
    if lines:
        lines.insert(0, f"errors at threshold {errors.threshold:.4f} ({errors.basis}):")
    return lines


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _bounds(bounds: list[float] | None) -> str:
    return "n/a" if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _span(bounds: list[float] | None) -> str:
    return "" if bounds is None else "  " + _bounds(bounds)


def confidence_lines(ci: ConfidenceIntervals) -> list[str]:
    """What the bracketed intervals mean, and the error rates' spread at the threshold."""
    if not ci.replicates:
        return [f"no confidence intervals: {'; '.join(ci.notes)}"]
    notes = f" ({'; '.join(ci.notes)})" if ci.notes else ""
    lines = [f"{ci.level:.0%} intervals in brackets: {ci.replicates} resamples of the "
             f"identities{notes}"]
    if ci.threshold is not None:
        lines.append(f"at threshold {ci.threshold:.4f}: FAR {_bounds(ci.far_at_threshold)}, "
                     f"FRR {_bounds(ci.frr_at_threshold)}")
    return lines


@click.command("evaluate")
@model_option
@click.argument("data", type=click.Path(exists=True))
@click.option("--labels", type=click.Path(dir_okay=False, exists=True),
              help="IDX labels file, when DATA is an IDX images file.")
@click.option("--classes", help="Comma-separated class names/ids to evaluate on (e.g. 6,7,8,9).")
@click.option("--far", "target_far", default=1e-3, show_default=True, type=float,
              help="Target false accept rate for the calibrated threshold.")
@click.option("--n-way", default=5, show_default=True, type=click.IntRange(2, 1000),
              help="N of the N-way 1-shot test (capped at the number of identities).")
@click.option("--plots", type=click.Path(file_okay=False),
              help="Write roc.png and scores.png into this folder.")
@click.option("--write-threshold", is_flag=True,
              help="Store the threshold reaching --far in the model's metadata.")
@click.option("--bootstrap", default=200, show_default=True, type=click.IntRange(0, 10000),
              help="Resamples of identities for 95% confidence intervals (0: none).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option("--pairs-label-means", "label_means", type=click.Choice(["similar", "dissimilar"]),
              default="similar", show_default=True,
              help="When DATA is a pairs CSV: what its label 1 means.")
@backend_options
@batch_option
@json_option
def evaluate(model: str, data: str, labels: str | None, classes: str | None, target_far: float,
             n_way: int, plots: str | None, write_threshold: bool, bootstrap: int, seed: int,
             label_means: str, backend: str, engine: str | None, require_gpu: bool,
             rebuild_stale: bool, batch_size: int, as_json: bool) -> None:
    """Measure MODEL's verification accuracy on DATA's identities.

    \b
    Examples:
      siamese-edge evaluate -m model.onnx people/
      siamese-edge evaluate -m model.onnx t10k-images-idx3-ubyte.gz \\
          --labels t10k-labels-idx1-ubyte.gz --classes 6,7,8,9 --far 1e-3 --write-threshold

    Reports ROC AUC, EER, TAR at FAR 1e-2/1e-3/1e-4, rank-1 identification and N-way 1-shot
    accuracy, and the threshold that reaches the target FAR. Intervals come from resampling
    identities, not pairs: pairs of one identity are not independent.

    A pairs CSV (img1,img2,label) is a protocol: exactly its pairs are scored, for the ROC,
    EER, TAR@FAR and threshold; it names no identities, so there is no rank-1 or N-way, and
    the intervals resample the identities the list implies (images its genuine pairs join).
    """
    from siamese_edge.errors import InvalidInputError, SiameseEdgeError
    from siamese_edge.runtime.workflows import evaluate_model
    from siamese_edge.runtime.workflows import write_threshold as store_threshold

    if not 0 < target_far < 1:
        raise click.BadParameter("must be between 0 and 1", param_hint="--far")
    if bootstrap == 1:
        raise click.BadParameter("0 (none) or at least 2", param_hint="--bootstrap")
    wanted = [c.strip() for c in classes.split(",") if c.strip()] if classes is not None else None
    if wanted == []:
        raise click.BadParameter("names no class", param_hint="--classes")

    interactive = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        # a terminal gets one line rewritten; a log file the final count only, not a run of
        # carriage returns
        if not as_json and (interactive or done == total):
            click.echo(f"\rembedding {done}/{total}" if interactive
                       else f"embedding {done}/{total}", err=True, nl=done == total)

    with open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale) as embedder:
        report, genuine, impostor = evaluate_model(embedder, data, labels, wanted, target_far,
                                                   n_way, seed, progress, bootstrap,
                                                   label_means)
    doc = {**report.to_dict(), "backend": embedder.device_description}
    plot_error = None
    if plots:
        from siamese_edge.plots import save_evaluation_plots

        try:
            # operating_threshold, not ``or``: a calibrated threshold of 0.0 is one
            doc["plots"] = save_evaluation_plots(plots, genuine, impostor,
                                                 report.operating_threshold())
        except OSError as exc:  # the numbers are still printed; the error comes after them
            plot_error = f"--plots {plots}: cannot write the plots ({exc.strerror or exc})"
    calibration_error = None
    if write_threshold and report.threshold_at_target is None:
        from siamese_edge.evaluation import far_key

        # the numbers are still printed (they were computed); the refusal comes after them
        calibration_error = (f"too few impostor pairs to calibrate at FAR {target_far:g}: "
                             f"{report.far_notes.get(far_key(target_far), '')}; the model "
                             f"is unchanged")
    elif write_threshold:
        try:
            store_threshold(model, report.threshold_at_target, target_far,
                            report.tar_at_target, data, report.impostor_pairs,
                            classes=report.extras["classes"] if wanted else None)
            doc["threshold_written"] = report.threshold_at_target
        except (OSError, SiameseEdgeError) as exc:  # the numbers first, then why it failed
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            calibration_error = f"{model}: cannot write the threshold ({detail})"
    if write_threshold and calibration_error:
        doc["threshold_written"] = None
    if calibration_error or plot_error:  # the document says why the exit status is 1
        doc["error"] = calibration_error or plot_error
    if as_json:
        print_json(doc)
    else:
        _print_report(report, doc, target_far, write_threshold and not calibration_error)
    if calibration_error or plot_error:
        raise InvalidInputError(calibration_error or plot_error)
    skipped = report.extras["skipped_count"]
    if skipped:  # measured on what could be read; like embed, exit 3 says it was not all
        if not as_json:
            for line in report.extras["skipped"]:
                warn(f"skipped {line}")
            warn(f"{skipped} unreadable file(s) left out of every number")
        raise SystemExit(EXIT_PARTIAL)


def _print_report(report: EvaluationReport, doc: dict, target_far: float,
                  write_threshold: bool) -> None:
    listed = report.extras.get("protocol") == "listed pairs"
    click.echo(f"{report.num_images} images, "
               + ("" if listed else f"{report.num_identities} identities, ")
               + f"{report.genuine_pairs} genuine / {report.impostor_pairs} impostor pairs"
               + (" (as listed)" if listed else "") + f", backend {doc['backend']}")
    ci = report.confidence
    click.echo(f"ROC AUC   {report.auc:.4f}{_span(ci and ci.auc)}")
    click.echo(f"EER       {report.eer:.4f}{_span(ci and ci.eer)}  "
               f"(threshold {report.eer_threshold:.4f})")
    for far, tar in report.tar_at_far.items():
        note = f"  ({report.far_notes[far]})" if far in report.far_notes else ""
        span = _span(ci.tar_at_far.get(far)) if ci else ""
        click.echo(f"TAR@FAR={far:<5} {_fmt(tar)}{span}{note}")
    if listed:
        click.echo(f"not measured: {report.extras['not_measured']}")
    else:
        click.echo(f"rank-1    {_fmt(report.rank1)}  (one template per identity)")
        click.echo(f"{report.n_way}-way 1-shot {_fmt(report.n_way_one_shot)}")
    if report.threshold_at_target is not None:
        click.echo(f"threshold at FAR {target_far:g}: {report.threshold_at_target:.4f} "
                   f"(TAR {report.tar_at_target:.4f})"
                   + ("  -> written to model" if write_threshold else ""))
    if ci is not None:
        for line in confidence_lines(ci):
            click.echo(line)
    if report.errors is not None:
        for line in error_lines(report.errors):
            click.echo(line)
    for path in doc.get("plots", []):
        click.echo(f"plot: {path}")
