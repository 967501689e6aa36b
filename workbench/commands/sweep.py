"""`workbench sweep MODEL...`: models x variants on Dask, one tidy row per pair.

Without `--scheduler` it starts an embedded LocalCluster of `--workers` spawned processes and
stops it at the end. Rows are written as they arrive (`--json` JSON lines, `--csv`); after a
crash or Ctrl-C, the same command with `--resume` runs only the rows that are missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path
from typing import Any

from workbench.commands.arguments import add_cluster, add_test_samples, add_weights
from workbench.commands.compare import add_variant_options, check_variant_options, configs_from_args
from workbench.errors import ModelFileError, UnsupportedError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="convert and measure models x variants on a Dask cluster",
        description=(
            "Convert every model to every variant and measure each on the LiteRT interpreter, "
            "spread over Dask workers: an embedded local cluster, or a running scheduler. "
            "Default variants: each model's seven standard ones (as in compare)."
        ),
    )
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="demo model names, architecture names (mobilenet_v2, efficientnet_b0@64, ...), "
        "model files or folders",
    )
    parser.add_argument(
        "--models-file",
        type=Path,
        metavar="FILE",
        help="a text file of models, one per line (an architecture may add --weights ...)",
    )
    add_weights(parser, "the architectures named as MODEL or in --models-file")
    parser.add_argument(
        "--data", metavar="NAME_OR_PATH", help="dataset for all models (default: a demo's own)"
    )
    add_variant_options(parser)
    add_cluster(parser, 2, "the sweep")
    parser.add_argument(
        "--memory-limit", metavar="SIZE", help="per embedded worker; restarted above it (4GiB)"
    )
    parser.add_argument(
        "--lifetime", metavar="TIME", help="restart each embedded worker after this, e.g. 20m"
    )
    add_test_samples(parser)
    parser.add_argument(
        "--shards", type=int, help="score each variant's test samples in N pieces on the workers"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="rows as JSON lines")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="rows as CSV")
    parser.add_argument(
        "--save-dir", type=Path, metavar="DIR", help="write each variant's .tflite here"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the finished rows of --json/--csv, run the rest"
    )
    parser.set_defaults(run=run)


def models_from_file(path: Path) -> list[Any]:
    """The models a models file names: one per line, `#` comments, paths relative to the file.
    An architecture name may be followed by ``--weights imagenet|none|FILE`` (a `PretrainedSpec`
    then, whose weights win over the command's)."""
    from workbench.models import DEMO_MODELS, pretrained

    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ModelFileError(f"--models-file {path}: cannot read it ({error.strerror})") from None
    models: list[Any] = []
    for number, line in enumerate(lines, start=1):
        entry, _, weights = line.split("#", 1)[0].partition(" --weights ")
        entry, weights = entry.strip(), weights.strip()
        if not entry:
            continue
        try:
            architecture = pretrained.parse_spec(entry, weights or None)
        except ModelFileError as error:
            raise ModelFileError(f"{path}:{number}: {error}") from None
        if architecture is not None:
            models.append(_with_weights(architecture, path, number) if weights else entry)
            continue
        if weights:
            raise ModelFileError(
                f"{path}:{number}: --weights is for an architecture name "
                f"({', '.join(pretrained.ARCHITECTURES)}), not {entry}"
            )
        if entry in DEMO_MODELS:
            models.append(entry)
            continue
        target = path.parent / entry
        if not target.exists():
            raise ModelFileError(
                f"{path}:{number}: {entry}: no such file or folder; fix the line or remove it"
            )
        models.append(str(target))
    return models


def _with_weights(architecture: Any, path: Path, number: int) -> Any:
    """An architecture of a models file line with its own weights (a file relative to it)."""
    if architecture.weights in ("imagenet", "none"):
        return architecture
    target = path.parent / architecture.weights
    if not target.is_file():
        raise ModelFileError(
            f"{path}:{number}: --weights {architecture.weights}: no such file; give imagenet, "
            "none or a file saved with model.save_weights()"
        )
    return dataclasses.replace(architecture, weights=str(target))


def run(args: argparse.Namespace) -> int:
    from workbench.cluster import sweep
    from workbench.files import check_distinct, check_output
    from workbench.models import DEFAULT_MODEL

    check_variant_options(args)
    check_distinct([(args.json, "--json"), (args.csv, "--csv"), (args.save_dir, "--save-dir")])
    for path, option in ((args.json, "--json"), (args.csv, "--csv")):
        check_output(path, option)  # bad output paths fail before the cluster starts
    check_output(args.save_dir, "--save-dir", folder=True)
    if args.shards is not None and args.shards < 1:
        raise UnsupportedError(f"--shards: {args.shards}; give a positive number of shards")
    if not args.scheduler and args.workers < 1:
        raise UnsupportedError(f"--workers: {args.workers}; give at least one worker process")
    models = list(args.models) + (models_from_file(args.models_file) if args.models_file else [])
    options = argparse.Namespace(
        route=args.route,
        modes=args.modes,
        granularity=args.granularity,
        keep_float=args.keep_float,
        samples=args.samples,
    )
    configs = (  # chosen per model (its standard set, its default route) unless all is given
        functools.partial(configs_from_args, options)
        if args.modes is None or args.route is None
        else configs_from_args(options, None)
    )
    try:
        table = sweep(
            models or [DEFAULT_MODEL],
            configs,
            args.data,
            weights=args.weights,
            scheduler=args.scheduler,
            workers=args.workers,
            memory_limit=args.memory_limit,
            lifetime=args.lifetime,
            shards=args.shards,
            test_samples=args.test_samples,
            json_path=args.json,
            csv_path=args.csv,
            save_dir=args.save_dir,
            resume=args.resume,
            report=lambda text: print(text, flush=True),
        )
    except KeyboardInterrupt:
        written = [str(path) for path in (args.json, args.csv) if path is not None]
        where = f"; rows so far are in {', '.join(written)}, rerun with --resume" if written else ""
        print(f"interrupted{where}", flush=True)
        return 130
    failed = sum(row["error"] is not None for row in table.rows)
    print(f"{len(table)} rows, {failed} failed")
    for path in (args.json, args.csv):
        if path is not None:
            print(f"wrote {path}")
    return 0
