"""`workbench convert [MODEL] --mode ... -o OUT.tflite`: write one quantized variant.

The file is written to a temporary name in the target folder and renamed into place, so a
failed conversion leaves nothing behind.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.commands.arguments import (
    add_command,
    add_data,
    add_output,
    add_quiet,
    names,
    positive,
)
from workbench.files import check_output, write_bytes_atomically
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "convert",
        "convert a model to one quantized .tflite variant",
        "Convert a model to .tflite with one quantization configuration (route, mode, "
        "granularity, I/O type, layers kept float) and write it atomically.",
        run,
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.INT8.value)
    parser.add_argument(
        "--granularity",
        choices=[g.value for g in Granularity],
        default=Granularity.PER_CHANNEL.value,
    )
    parser.add_argument(
        "--route",
        choices=[r.value for r in Route],
        help="default: converter; litert for a .tflite file",
    )
    parser.add_argument(
        "--io-type", choices=[t.value for t in IOType], default=IOType.FLOAT32.value
    )
    parser.add_argument(
        "--keep-float", metavar="L1,L2", default="", help="layers to keep in float32"
    )
    parser.add_argument(
        "--samples", type=positive, default=200, help="calibration samples (int8, int16x8)"
    )
    add_data(
        parser,
        "calibration data: dataset name, .npz, image folder or its .zip (default: the demo's "
        "dataset)",
    )
    add_output(parser, "output file (default: MODEL-MODE.tflite here)")
    add_quiet(parser)


def config_from_args(args: argparse.Namespace) -> QuantConfig:
    keep = names(args.keep_float)
    return QuantConfig(
        route=args.route or Route.CONVERTER,
        mode=args.mode,
        granularity=args.granularity,
        io_type=args.io_type,
        calibration_samples=args.samples,
        keep_float=frozenset(keep),
    )


def run(args: argparse.Namespace) -> int:
    from workbench.commands.progress import Progress
    from workbench.session import Session

    config = config_from_args(args)  # a bad option fails before the model loads
    output = check_output(args.output, "-o")
    with Progress(quiet=args.quiet) as progress:
        progress.step("loading the model and data")
        session = Session(args.model, args.data, weights=args.weights)
        if args.route is None:
            config = config.replace(route=session.default_route)
        if output is None:
            default = f"{session.model.name}-{config.mode.value}.tflite"
            output = check_output(default, "output")
        with progress.watch(session):
            variant = session.variant(config)
        progress.stage(config, "done")
    write_bytes_atomically(output, variant.tflite)
    ratio = len(variant.tflite) / len(session.float_bytes)
    print(
        f"{output}: {config.label}, {len(variant.tflite) / 1024:.1f} KiB "
        f"({ratio:.2f} of float32), converted in {variant.convert_s:.1f} s"
    )
    return 0
