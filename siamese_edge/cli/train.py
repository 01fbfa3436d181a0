"""``siamese-edge train``: train an embedding network (needs the ``train`` extra)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from siamese_edge.cli.options import EXIT_PARTIAL, json_option, print_json, warn


def _size(value: str | None) -> tuple[int | None, int | None]:
    if not value:
        return None, None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter("expected HxW, e.g. 28x28", param_hint="--input-size") from None
    if h < 1 or w < 1:
        raise click.BadParameter("sizes must be positive", param_hint="--input-size")
    return h, w


def _floats(value: str | None, hint: str) -> list[float] | None:
    if not value:
        return None
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter("expected numbers separated by commas, e.g. 0.5 or "
                                 "0.485,0.456,0.406", param_hint=hint) from None


#: TrainConfig fields set by an option of another name
_OPTION_OF_FIELD = {"height": "input_size", "width": "input_size"}


def _with_saved_options(options: dict, out: str) -> dict:
    """``options`` with every value not given on the command line taken from the run in
    ``out`` (its ``config.json``): a default that differs from the run's (say the margin of
    another miner) made ``--resume`` alone refuse to continue."""
    from siamese_edge.training.resume import saved_options

    saved = saved_options(out)
    if saved is None:  # nothing to resume: the trainer says so
        return options
    given = _given_options()
    return {name: value if name in ("data", "out") or name not in saved
            or _OPTION_OF_FIELD.get(name, name) in given else saved[name]
            for name, value in options.items()}


def _given_options() -> set[str]:
    """The parameters the user set (on the command line or by environment)."""
    context = click.get_current_context()
    return {name for name in context.params
            if context.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                                     ParameterSource.ENVIRONMENT)}


def _refuse_options_without_effect(config, given: set[str]) -> None:
    """Options given that this configuration would ignore: the run would look, in its
    config.json, like one that used them (and --resume would insist on them)."""
    ignored = []
    if config.loss == "contrastive":
        ignored += [(f"--{name.replace('_', '-')}", "the contrastive loss takes balanced "
                     "pairs, not mined P×K batches") for name in ("miner", "k_per_identity")
                    if name in given]
    if not config.augment:
        if "hflip" in given and config.hflip:
            ignored.append(("--hflip", "flips are part of augmentation, off with --no-augment"))
        if "instance_fraction" in given and config.instance_fraction > 0:
            ignored.append(("--instance-fraction", "its views of one image are augmentations, "
                            "identical with --no-augment"))
    if "label_means" in given and Path(config.data).suffix.lower() != ".csv":
        ignored.append(("--pairs-label-means", "DATA is not a pairs CSV"))
    if ignored:
        raise click.UsageError("; ".join(f"{option} does nothing here: {why}"
                                         for option, why in ignored))


def _as_options(message: str) -> str:
    """A TrainConfig message with its field names as the options that set them: any
    ``snake_case`` field, a one-word field that starts the message (``lr must ...``), and
    ``mean``/``std`` (words like "seed" elsewhere are prose: "the seed backbone")."""
    from siamese_edge.training.config import TrainConfig

    flags = {param.name: param.opts[0] for param in train.params}  # "label_means" and its flag

    def option(name: str) -> str:
        return flags.get(_OPTION_OF_FIELD.get(name, name), name)

    for name in TrainConfig.__dataclass_fields__:
        if "_" in name:
            message = re.sub(rf"(?<![\w-]){name}(?![\w-])", option(name), message)
        elif name not in ("mean", "std") and re.match(rf"{name} (must|is|values)\b", message):
            message = option(name) + message[len(name):]
    return re.sub(r"\b(mean and std|mean|std) (values|need|must)\b|\bboth mean and std\b",
                  lambda m: m.group(0).replace("mean", "--mean").replace("std", "--std"),
                  message)


@click.command("train")
@click.argument("data", type=click.Path(exists=True))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Run directory to write (checkpoint, config, logs).")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="IDX labels file, when DATA is an IDX images file.")
@click.option("--loss", type=click.Choice(["triplet", "contrastive"]), default="triplet",
              show_default=True)
@click.option("--miner", type=click.Choice(["batch-hard", "semi-hard", "batch-all"]),
              help="Triplet mining in the batch. [default: batch-hard; semi-hard with "
                   "--readout projection, whose scores batch-hard collapses]")
@click.option("--backbone", type=click.Choice(["small_cnn", "seed"]), default="small_cnn",
              show_default=True)
@click.option("--embedding-dim", default=64, show_default=True, type=click.IntRange(2, 4096),
              help="Length of the projection the loss trains.")
@click.option("--readout", type=click.Choice(["features", "projection"]),
              help="What the exported model outputs: the 2x2-pooled feature maps (better on "
                   "identities not trained on) or the trained projection (better on the "
                   "trained ones). [default: features; projection for --backbone seed]")
@click.option("--hog-weight", type=click.FloatRange(0.0, 10.0),
              help="Weight of a fixed histogram of oriented gradients appended to the "
                   "deployed embedding (0: none); it helps on identities not trained on. "
                   "[default: 0.3 with --readout features, 0 with projection]")
@click.option("--margin", type=float,
              help="Loss margin. [default: 0.02 batch-hard, 0.2 other miners, 1.0 contrastive]")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1))
@click.option("--steps-per-epoch", default=100, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(2),
              help="Images per batch: P×K for triplets (P at most the number of identities; "
                   "run.json records the real batch), half as many pairs for contrastive.")
@click.option("--k-per-identity", default=4, show_default=True, type=click.IntRange(2),
              help="K of the P×K triplet batches.")
@click.option("--lr", default=3e-3, show_default=True, type=float)
@click.option("--weight-decay", default=5e-4, show_default=True, type=float)
@click.option("--schedule", type=click.Choice(["onecycle", "cosine", "constant"]),
              default="onecycle", show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random shift, rotation, scale, brightness and contrast.")
@click.option("--instance-fraction", default=0.0, show_default=True,
              type=click.FloatRange(0.0, 0.9),
              help="Instance discrimination: augmented views of single images, each its "
                   "own pseudo-identity. Triplet: round(F x batch-size / K) such groups of K "
                   "views are added to each P×K batch; contrastive: this share of the "
                   "genuine pairs are two views of one image. Helped semi-hard mining on "
                   "identities never seen in training; hurts batch-hard.")
@click.option("--hflip", is_flag=True, help="Also flip images horizontally when augmenting.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--input-size", help="Resize images to HxW (default: the data's size).")
@click.option("--channels", type=click.Choice(["1", "3"]), help="1 = gray, 3 = RGB.")
@click.option("--classes", help="Comma-separated classes to train on (e.g. 0,1,2,3,4,5).")
@click.option("--mean", help="Per-channel mean in [0, 1], e.g. 0.5 or 0.485,0.456,0.406 "
                             "(default: computed from the training images).")
@click.option("--std", help="Per-channel standard deviation, like --mean.")
@click.option("--val-fraction", default=0.1, show_default=True, type=float)
@click.option("--val-split", type=click.Choice(["auto", "identity", "sample"]), default="auto",
              show_default=True, help="Hold out identities or images for validation.")
@click.option("--patience", default=0, show_default=True, type=click.IntRange(0),
              help="Stop after this many epochs without a better validation EER (0: never).")
@click.option("--pairs-label-means", "label_means", type=click.Choice(["similar", "dissimilar"]),
              default="similar", show_default=True, help="For a pairs CSV: what label 1 means.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch "
                                             "(with the run's own options).")
@click.option("--overwrite", is_flag=True, help="Replace a run already in --out.")
@json_option
def train(data: str, out: str, labels: str | None, loss: str, miner: str | None, backbone: str,
          embedding_dim: int, readout: str | None, hog_weight: float | None,
          margin: float | None, epochs: int,
          steps_per_epoch: int, batch_size: int, k_per_identity: int, lr: float,
          weight_decay: float, schedule: str, augment: bool, instance_fraction: float,
          hflip: bool, seed: int, input_size: str | None, channels: str | None,
          classes: str | None, mean: str | None, std: str | None, val_fraction: float,
          val_split: str, patience: int, label_means: str, threads: int | None, resume: bool,
          overwrite: bool,
          as_json: bool) -> None:
    """Train an embedding network on DATA and write a run directory.

    \b
    DATA is an image folder (DATA/<identity>/*.png|jpg), an IDX images file with
    --labels, or a pairs CSV (img1,img2,label; label 1 = same identity).

    \b
    Example:
      siamese-edge train train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz \\
          --out runs/fashion --epochs 10
    """
    from siamese_edge.errors import InvalidInputError

    try:
        from siamese_edge.training.config import TrainConfig
        from siamese_edge.training.trainer import threshold_caveat
        from siamese_edge.training.trainer import train as run_training
    except ImportError as exc:
        from siamese_edge.errors import MissingDependencyError

        raise MissingDependencyError(f"training needs the train extra ({exc.name} missing): "
                                     f"pip install 'siamese-edge[train]'") from None
    height, width = _size(input_size)
    options = dict(
        data=data, out=out, labels=labels, loss=loss, miner=miner, backbone=backbone,
        embedding_dim=embedding_dim, readout=readout, hog_weight=hog_weight, margin=margin,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch, batch_size=batch_size, k_per_identity=k_per_identity,
        lr=lr, weight_decay=weight_decay, schedule=schedule, augment=augment,
        instance_fraction=instance_fraction, hflip=hflip,
        seed=seed, height=height, width=width, channels=int(channels) if channels else None,
        classes=[c.strip() for c in classes.split(",") if c.strip()] if classes is not None
        else None,
        val_fraction=val_fraction, val_split=val_split, patience=patience,
        label_means=label_means, threads=threads, mean=_floats(mean, "--mean"),
        std=_floats(std, "--std"))
    if resume:  # the run's own options, apart from those given now (as --help promises)
        options = _with_saved_options(options, out)
    try:
        config = TrainConfig(**options)
        if not resume:
            config.check_new_run()
    except InvalidInputError as exc:  # a bad option value: a usage error, named as an option
        raise click.UsageError(_as_options(str(exc))) from None
    if not resume:  # a run's own options are what they are (older versions took them all)
        _refuse_options_without_effect(config, _given_options())
    interactive = sys.stderr.isatty()

    def progress(event: dict) -> None:
        if event["event"] == "step" and interactive:
            click.echo(f"\repoch {event['epoch']}/{event['epochs']} step {event['step']}/"
                       f"{event['steps']} loss {event['loss']:.4f}", err=True, nl=False)
        elif event["event"] == "epoch":
            click.echo(("\r" if interactive else "") +
                       f"epoch {event['epoch']}/{event['epochs']}  loss {event['loss']:.4f}  "
                       f"active {event['active_fraction']:.2f}"
                       + (f" (of all triplets {event['violating_fraction']:.2f})"
                          if "violating_fraction" in event else "") +
                       f"  val EER {event['val_eer']:.4f}"
                       + (f" (loss's embedding {event['val_eer_training']:.4f})"
                          if "val_eer_training" in event else "") +
                       f"  val AUC {event['val_auc']:.4f}  {event['seconds']:.1f}s"
                       + ("  *" if event["best"] else ""), err=True)
        elif event["event"] == "warning":
            click.echo(f"warning: {event['message']}", err=True)
        elif event["event"] == "status":  # reading the data, a final validation: long, quiet
            if interactive or not event.get("transient"):  # a log gets what was done
                click.echo(event["message"], err=True)
        elif event["event"] == "nothing_to_train":
            click.echo(event["message"], err=True)
        elif event["event"] == "early_stop":
            click.echo(f"early stop at epoch {event['epoch']} (best {event['best_epoch']})",
                       err=True)

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    try:
        result = run_training(config, progress, resume=resume, overwrite=overwrite)
    except KeyboardInterrupt:
        if (Path(out) / "last.pt").is_file():  # at least one epoch of this run was saved
            raise KeyboardInterrupt(f"interrupted; continue from the last finished epoch "
                                    f"with: siamese-edge train {shlex.quote(data)} --out "
                                    f"{shlex.quote(out)} --resume") from None
        raise
    info = result.info
    caveat = threshold_caveat(info)
    if as_json:
        print_json({"run_dir": str(result.run_dir), **info, "threshold_caveat": caveat,
                    "log": result.log})
    else:
        click.echo(f"wrote {result.run_dir} (best epoch {info['best_epoch']}, validation EER "
                   f"{info['val_eer']:.4f}, AUC {info['val_auc']:.4f}, threshold "
                   f"{info['threshold']:.3f}, {info['seconds']:.0f}s)")
        if caveat:
            warn(caveat)
        for line in info.get("data_warnings", []):
            warn(f"skipped {line}")
        if info.get("data_skipped"):
            warn(f"{info['data_skipped']} unreadable image(s) left out of training")
        click.echo(f"next: siamese-edge export {result.run_dir} --out model.onnx")
    if info.get("data_skipped"):  # trained on what could be read, as enroll --from-dir
        raise SystemExit(EXIT_PARTIAL)
