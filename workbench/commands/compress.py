"""`workbench compress [MODEL] --technique ... -o OUT.keras`: write a compressed Keras model.

Training runs on the data's train split with a progress line on stderr; the written model is
a `.keras` file that `compare`, `convert`, `inspect` and `dashboard` take (give them the same
`--data`). The file is written atomically: a failed or interrupted run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.commands.arguments import add_command, add_data, add_output
from workbench.compress.config import CentroidInit, CompressConfig, Technique, WeightGranularity
from workbench.compress.training import TrainingProgress
from workbench.files import check_output, write_atomically


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "compress",
        "quantization-aware training, pruning, clustering, distillation or equalization",
        "Compress a Keras model with one technique (fine-tuning on the train split where it "
        "trains) and write the result as a .keras model to convert and compare like any other.",
        run,
    )
    parser.add_argument(
        "--technique", required=True, choices=[t.value for t in Technique], help="what to do"
    )
    parser.add_argument("--sparsity", type=float, default=0.5, help="prune: fraction of zeros")
    parser.add_argument("--structured", action="store_true", help="prune: 2:4 structured")
    parser.add_argument("--clusters", type=int, default=16, help="cluster: values per kernel")
    parser.add_argument(
        "--centroid-init", choices=[c.value for c in CentroidInit], default=CentroidInit.LINEAR
    )
    parser.add_argument(
        "--qat-weights",
        choices=[g.value for g in WeightGranularity],
        default=WeightGranularity.PER_CHANNEL.value,
        help="qat: the weight quantizers to train with (the int8 variant you will convert)",
    )
    parser.add_argument("--width", type=float, default=0.5, help="distill: student width")
    parser.add_argument("--temperature", type=float, default=2.0, help="distill: temperature")
    parser.add_argument("--alpha", type=float, default=0.5, help="distill: weight of the labels")
    parser.add_argument(
        "--no-bias-correction", action="store_true", help="equalize: skip bias correction"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--learning-rate", type=float, help="Adam's (default: 1e-3 for clustering, else 1e-4)"
    )
    parser.add_argument("--steps", type=int, help="batches per epoch (default: the whole split)")
    parser.add_argument("--seed", type=int, default=0)
    add_data(parser, "labelled training data: dataset name, .npz, image folder or its .zip")
    add_output(parser, "output .keras file (default: MODEL-TECHNIQUE.keras)")


def config_from_args(args: argparse.Namespace) -> CompressConfig:
    return CompressConfig(
        technique=args.technique,
        sparsity=args.sparsity,
        structured=args.structured,
        clusters=args.clusters,
        centroid_init=args.centroid_init,
        weights=args.qat_weights,
        width=args.width,
        temperature=args.temperature,
        alpha=args.alpha,
        bias_correction=not args.no_bias_correction,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        steps=args.steps,
        seed=args.seed,
    )


def _show(progress: TrainingProgress) -> None:
    """A one-line progress bar on stderr, redrawn in place."""
    done = int(30 * progress.fraction)
    accuracy = "" if progress.val_accuracy is None else f", val {progress.val_accuracy:.1%}"
    print(
        f"\r[{'#' * done}{'.' * (30 - done)}] epoch {progress.epoch}/{progress.epochs} "
        f"batch {progress.batch}/{progress.batches} loss {progress.loss:.4f}{accuracy}",
        end="\n" if progress.val_accuracy is not None else "",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    from workbench.models import DEFAULT_MODEL
    from workbench.session import Session

    config = config_from_args(args)
    stem = Path(args.model).stem if args.model else DEFAULT_MODEL  # here, not beside MODEL
    output = Path(args.output or f"{stem}-{config.technique.value}.keras")
    if output.suffix != ".keras":
        output = output.with_suffix(".keras")
    check_output(output, "-o")  # before training: a bad path is refused now
    session = Session(args.model, args.data, weights=args.weights)
    compression = session.compressed(config, progress=_show)
    keras_model = compression.session.model.keras_model
    write_atomically(output, keras_model.save)
    before, after = session.float_accuracy(), compression.session.float_accuracy()
    accuracy = (
        "" if before is None or after is None else f", float accuracy {before:.1%} -> {after:.1%}"
    )
    print(f"{output}: {config.label} in {compression.seconds:.0f} s{accuracy}")
    return 0
