"""`workbench inspect [MODEL] [--data NAME_OR_PATH] [--json FILE]`: what is in a model.

Prints the per-layer table (and activation ranges when data is given); `--json` writes the
full statistics (per-tensor and per-channel weight statistics, activation ranges) atomically.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from workbench.commands.arguments import add_data, add_model, add_quiet
from workbench.errors import RuntimeRefusal, UnsupportedError
from workbench.files import check_output, write_bytes_atomically
from workbench.qtyping import Unavailable


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="per-layer table, weight statistics and activation ranges of a model",
        description=(
            "Print the per-layer table of a model (parameters, bytes at float32 / float16 / "
            "int8) and write weight statistics per tensor and per channel, and activation "
            "ranges from data, as JSON."
        ),
    )
    add_model(
        parser, "demo model name, .keras, .h5 or .tflite file (default: the default demo model)"
    )
    add_data(parser, "dataset name, .npz, image folder or its .zip")
    parser.add_argument("--json", metavar="FILE", help="write all statistics here")
    add_quiet(parser)
    parser.set_defaults(run=run)


def _kib(count: int) -> str:
    return f"{count / 1024:.1f}"


def format_layers(rows: list[Any]) -> str:
    """The per-layer table as aligned text, with a total line."""
    header = ("layer", "type", "params", "KiB f32", "KiB f16", "KiB int8", "note")
    lines = [header]
    for row in rows:
        note = f"folded into {row.folded_into}" if row.folded_into else (row.dtype or "")
        lines.append(
            (
                row.name[:48],
                row.type,
                str(row.params),
                _kib(row.bytes_float32),
                _kib(row.bytes_float16),
                _kib(row.bytes_int8),
                note,
            )
        )
    totals = [sum(getattr(r, f) for r in rows) for f in ("params", "bytes_float32")]
    totals += [sum(getattr(r, f) for r in rows) for f in ("bytes_float16", "bytes_int8")]
    lines.append(("total", "", str(totals[0]), *(_kib(t) for t in totals[1:]), ""))
    return _aligned(lines)


def format_activations(ranges: list[Any]) -> str:
    lines = [("activation", "type", "min", "max", "p0.1", "p99.9")]
    for item in ranges:
        p = item.percentiles
        lines.append(
            (
                item.layer[:48],
                item.type,
                *(f"{v:.4g}" for v in (item.min, item.max, p[0.1], p[99.9])),
            )
        )
    return _aligned(lines)


def _aligned(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < 2 or i == len(line) - 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def _runtime(model: Any) -> Any:
    """Where the ops of a `.tflite` model run (None for other models: they are not converted)."""
    if model.tflite_bytes is None:
        return None
    from workbench.engine.kernels import runtime_report

    return runtime_report(model.tflite_bytes)


def format_runtime(report: Any) -> str:
    """The kernels summary and the ops that leave XNNPACK, one per line."""
    lines = [f"runtime: {report.summary()}"]
    lines += [f"  {op.opcode} ({(op.layer or '')[:60]}): {op.reason}" for op in report.on_reference]
    return "\n".join(lines)


def _tensors(model: Any) -> list[dict[str, Any]] | None:
    """Every tensor of a `.tflite` model: dtype, shape, scales, zero points (None for Keras)."""
    if model.tflite_bytes is None:
        return None
    from workbench.tflite_file import read_tflite

    return [tensor.to_dict() for tensor in read_tflite(model.tflite_bytes).tensors]


def run(args: argparse.Namespace) -> int:
    from workbench import inspection
    from workbench.commands.progress import Progress
    from workbench.datasets import load_for_model
    from workbench.engine.quiet import silenced
    from workbench.models import DEFAULT_MODEL, load_model

    json_path = check_output(args.json, "--json")
    with Progress(quiet=args.quiet) as progress:
        progress.step("loading the model")
        with silenced():  # importing TensorFlow prints start-up chatter
            model = load_model(args.model or DEFAULT_MODEL, weights=args.weights)
            dataset = None if args.data is None else load_for_model(args.data, model)
        x = None
        if dataset is not None:
            if model.input_count == 1:  # several inputs: checked per input as they are read
                dataset.check_fits(model.input_shape, model.num_classes)
            x = dataset.calibration.x
        progress.step("weight statistics")
        rows = inspection.layer_table(model)
        weights = inspection.weight_stats(model)
        ranges, refused = None, None
        if x is not None:
            progress.step("activation ranges")
            try:
                ranges = inspection.activation_ranges(model, x)
            except RuntimeRefusal as refusal:  # the rest of the report is still worth printing
                refused = Unavailable("activation ranges", refusal.reason)
            except UnsupportedError as error:  # e.g. a model with several inputs
                refused = Unavailable("activation ranges", str(error))
    print(f"{model.name} ({model.kind.value}, input {model.input_shape})")
    print(format_layers(rows))
    runtime = _runtime(model)
    if runtime is not None:
        print()
        print(format_runtime(runtime))
    if ranges is not None:
        print()
        print(format_activations(ranges))
    if refused is not None:
        print(f"\n{refused}")
    if json_path is not None:
        record = {
            "model": model.name,
            "kind": model.kind.value,
            "data": args.data,
            "layers": [row.to_dict() for row in rows],
            "weights": [stats.to_dict() for stats in weights],
            "activations": (
                {"unavailable": refused.reason}
                if refused is not None
                else None
                if ranges is None
                else [r.to_dict() for r in ranges]
            ),
            "tensors": _tensors(model),
            "runtime": None if runtime is None else runtime.to_dict(),
        }
        write_bytes_atomically(json_path, json.dumps(record).encode())
        print(f"\nstatistics written to {json_path}")
    return 0
