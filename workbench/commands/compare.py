"""`workbench compare [MODEL]`: convert and measure several variants, print one table.

With no options: the default demo model on its dataset and the seven standard variants on the
converter route. `--json` writes the `VariantResult` records, `--save-dir` the `.tflite` files;
both are written atomically.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import Any

from workbench.commands.arguments import (
    add_calibration_samples,
    add_measured_model,
    add_quiet,
    add_test_samples,
    names,
)
from workbench.display import bounds_text
from workbench.errors import UnsupportedError
from workbench.qtyping import Granularity, Mode, QuantConfig, Route, VariantResult
from workbench.statistics import Estimate

COLUMNS = ("variant", "size", "ratio", "accuracy", "drop", "agreement", "latency")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="convert and measure several quantized variants side by side",
        description=(
            "Convert a model to several quantized variants, evaluate each on the test split "
            "and print size, accuracy, agreement with float and latency. Default: the seven "
            "standard variants (float32, dynamic, float16, int8 per-channel and per-tensor, "
            "int16x8, int8 with the most sensitive layer kept float)."
        ),
    )
    add_measured_model(parser)
    add_variant_options(parser)
    add_test_samples(parser)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--save-dir", metavar="DIR", help="write each variant's .tflite here")
    add_quiet(parser)
    parser.set_defaults(run=run)


def add_variant_options(parser: argparse.ArgumentParser) -> None:
    """--route, --modes, --granularity, --keep-float and --samples (see `configs_from_args`)."""
    parser.add_argument(
        "--route",
        metavar="R1,R2",
        help="converter, litert (default: converter; litert for a .tflite file)",
    )
    parser.add_argument(
        "--modes",
        metavar="M1,M2",
        help=f"modes to compare: {', '.join(m.value for m in Mode)} (default: the standard set)",
    )
    parser.add_argument(
        "--granularity",
        metavar="G1,G2",
        help="per-channel, per-tensor (with --modes; default per-channel)",
    )
    parser.add_argument(
        "--keep-float", metavar="L1,L2", default="", help="layers kept float32 in int8 variants"
    )
    add_calibration_samples(parser)


def check_variant_options(args: argparse.Namespace) -> None:
    """Fail on a bad --route, --modes or --granularity before any model is loaded."""
    for text, kind, argument in (
        (args.route, Route, "--route"),
        (args.modes, Mode, "--modes"),
        (args.granularity, Granularity, "--granularity"),
    ):
        _items(text, kind, argument)
    if args.granularity is not None and args.modes is None:
        raise UnsupportedError(
            "--granularity: applies to the modes named with --modes (the standard set has its "
            "own granularities); add --modes, e.g. --modes int8"
        )


def _items(text: str | None, kind: type, argument: str) -> list[Any]:
    values = names(text)
    try:
        return [kind(value) for value in values]
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise UnsupportedError(f"{argument}: {text!r} is not a list of {choices}") from None


def configs_from_args(args: argparse.Namespace, session: Any) -> list[QuantConfig]:
    """The configurations the options ask for, float32 first and without duplicates; without
    --route, on the session's default route (`session` may be None when --route is given)."""
    routes = _items(args.route, Route, "--route") or [session.default_route]
    keep = frozenset(names(args.keep_float))
    configs: list[QuantConfig] = []
    for route in routes:
        if args.modes is None:
            configs += session.standard_configs(route)
            continue
        modes = _items(args.modes, Mode, "--modes")
        if not modes:
            raise UnsupportedError("--modes: give at least one mode")
        for mode in modes:
            granularities = _items(args.granularity, Granularity, "--granularity")
            for granularity in granularities or [Granularity.PER_CHANNEL]:
                configs.append(QuantConfig(route=route, mode=mode, granularity=granularity))
    configs = [
        c.replace(keep_float=sorted(keep | c.keep_float), calibration_samples=args.samples)
        if c.mode is Mode.INT8
        else c.replace(calibration_samples=args.samples)
        for c in configs
    ]
    floats = [c for c in configs if c.mode is Mode.FLOAT32][:1]  # one float32 baseline
    return list(dict.fromkeys(floats + [c for c in configs if c.mode is not Mode.FLOAT32]))


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024 or unit == "MB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def format_heading(session: Any) -> str:
    """The model, the data, how many of its test samples the numbers rest on, and how 8-bit
    data was made its inputs when the model has its own way (see `ModelSource.preprocessing`)."""
    if session.data is None:
        return f"{session.model.name} on no data"
    measured, available = len(session.data.test), session.test_samples_available
    of = f"the first {measured} of {available}; --test-samples all for every one"
    samples = f"{measured} test samples" + (f" ({of})" if measured < available else "")
    from workbench.models.source import SourceKind
    from workbench.tflite_file import quantized_weights

    given = ""
    if session.model.kind is SourceKind.TFLITE:  # a .tflite file may be quantized already
        quantized = quantized_weights(session.float_bytes)
        if quantized:
            types = ", ".join(quantized)
            given = f" (already quantized, {types} weights: the float32 row is the file as given)"
    inputs = session.data.preprocessing  # 8-bit data the model's way, when it has one
    own = f", inputs: {inputs.description}" if inputs == session.model.preprocessing else ""
    return f"{session.model.name}{given} on {session.data.name}, {samples}{own}"


def format_table(results: Sequence[VariantResult]) -> str:
    """A plain-text table, one row per variant; accuracy and drop with their 95 % intervals,
    and ≈ after a drop whose interval includes 0 (within the noise of the test samples)."""

    def accuracy(result: VariantResult) -> str:
        if result.accuracy is None:
            return "-"
        return f"{100 * result.accuracy:.2f} %" + _interval(result.accuracy_estimate)

    def drop(result: VariantResult) -> str:
        if result.accuracy_drop is None:
            return "-"
        if result.config.mode is Mode.FLOAT32:  # the baseline itself
            return f"{result.accuracy_drop:+.2f} pt  "
        estimate = result.drop_estimate
        noisy = estimate is not None and estimate.low < estimate.high and estimate.contains(0.0)
        noise = " ≈" if noisy else "  "
        return f"{result.accuracy_drop:+.2f} pt" + _interval(estimate) + noise

    def measured(result: VariantResult, measurement: str, text: str) -> str:
        return "unavailable" if result.missing(measurement) else text

    rows = [COLUMNS] + [
        (
            r.label,
            measured(r, "conversion", _size(r.size_bytes)),
            measured(r, "conversion", f"{r.size_ratio:.2f}x"),
            measured(r, "evaluation", accuracy(r)),
            measured(r, "evaluation", drop(r)),
            measured(r, "evaluation", "-" if r.agreement is None else f"{100 * r.agreement:.1f} %"),
            measured(r, "latency", f"{r.latency_ms:.3f} ms"),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                  enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(row[4].endswith("≈") for row in rows):
        lines.append(
            "≈: the drop is within the noise of the test samples (its 95 % interval includes 0)"
        )
    return "\n".join(lines)


def _interval(estimate: Estimate | None) -> str:
    return "" if estimate is None else f" {bounds_text(estimate)}"


def format_outputs(results: Sequence[VariantResult]) -> str:
    """Agreement with float per output (SNR, cosine, max abs error), for models with several
    outputs or outputs that are not class scores; empty otherwise."""
    shown = [r for r in results if len(r.outputs) > 1 or any(not o.classes for o in r.outputs)]
    lines = [
        f"{r.label}  {o.name[:40]} {list(o.shape)}: SNR {o.snr_db:.1f} dB, cosine "
        f"{o.cosine:.4f}, max abs error {o.max_abs_error:.4g}"
        for r in shown
        for o in r.outputs
    ]
    return "\n".join(["agreement with float per output:", *lines]) if lines else ""


def format_kernels(results: Sequence[VariantResult], session: Any) -> str:
    """Where each variant's ops run (XNNPACK or reference kernels): what explains its latency."""
    from workbench.engine.kernels import runtime_report

    names = session.layer_names
    lines = [
        f"{r.label}: {runtime_report(session.variant(r.config).tflite, names).summary()}"
        for r in converted(results)
    ]
    return "\n".join(["kernels (from the file, checked on the interpreter):", *lines])


def converted(results: Sequence[VariantResult]) -> list[VariantResult]:
    """The results whose conversion was not refused (the others have no `.tflite`)."""
    return [r for r in results if not r.missing("conversion")]


def format_notes(results: Sequence[VariantResult], session: Any) -> str:
    """What the runtime refused to measure, and how the most sensitive layer was chosen."""
    lines = [f"{r.label}: {u}" for r in results for u in r.unavailable]
    for route in dict.fromkeys(r.config.route for r in results):
        int8 = session.cached_result(QuantConfig(route=route, mode=Mode.INT8))
        if int8 is None or not any(u.measurement.startswith("layer") for u in int8.unavailable):
            continue
        layer, unmeasured = session.sensitivity(route)  # measured already: a cache lookup
        lines.append(
            f"most sensitive layer ({route.value}): {layer}, chosen among the layers the runtime "
            f"could measure ({len(unmeasured)} could not be)"
            if layer is not None
            else f"most sensitive layer ({route.value}): none could be measured, so the variant "
            "keeping it float is left out"
        )
    return "\n".join(lines)


def file_name(model_name: str, config: QuantConfig) -> str:
    """A file name for a variant: model, label words and the config key."""
    words = re.sub(r"[^A-Za-z0-9]+", "-", f"{model_name} {config.label}").strip("-").lower()
    return f"{words}-{config.key[:8]}.tflite"


def run(args: argparse.Namespace) -> int:
    from workbench.commands.progress import Progress
    from workbench.engine.routes.layers import check_layer_names
    from workbench.files import bytes_writer, check_distinct, check_output, write_all_atomically
    from workbench.session import Session

    check_variant_options(args)  # bad options fail before the model is loaded
    check_distinct([(args.json, "--json"), (args.save_dir, "--save-dir")])
    json_path = check_output(args.json, "--json")
    save_dir = check_output(args.save_dir, "--save-dir", folder=True)
    with Progress(quiet=args.quiet) as progress:
        progress.step("loading the model and data")
        session = Session(
            args.model, args.data, weights=args.weights, test_samples=args.test_samples
        )
        check_layer_names(names(args.keep_float), session.layer_names, "--keep-float")
        with progress.watch(session):
            configs = configs_from_args(args, session)  # may measure int8 to find a layer
            results = session.compare(configs)
    print(format_heading(session))
    print(format_table(results))
    kernels = format_kernels(results, session)
    for text in (format_outputs(results), kernels, format_notes(results, session)):
        if text:
            print(text)
    outputs = []
    if json_path is not None:
        records = [session.record(result.config) for result in results]
        text = json.dumps(records, indent=2, allow_nan=False) + "\n"
        outputs.append((json_path, bytes_writer(text.encode())))
    if save_dir is not None:
        for result in converted(results):
            path = save_dir / file_name(session.model.name, result.config)
            outputs.append((path, bytes_writer(session.variant(result.config).tflite)))
    write_all_atomically(outputs)  # all or nothing: no JSON left when a .tflite fails
    if json_path is not None:
        print(f"wrote {json_path}")
    if save_dir is not None:
        print(f"wrote {len(converted(results))} .tflite files to {save_dir}")
    return 0
