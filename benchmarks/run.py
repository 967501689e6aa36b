"""Workbench benchmarks: every figure is a ratio of two timings taken side by side in one run.

    .venv/bin/python benchmarks/run.py [--out benchmarks/results.json]

Prints a table and writes one record per figure: name, value, target, unit, met. Absolute
times depend on the machine; the ratios are what the targets constrain (see README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
BATCH_SIZE = 256  # run_tflite's default
sys.path.insert(0, str(ROOT.parent))

from workbench.datasets import load_dataset  # noqa: E402
from workbench.engine.evaluation import ParallelRunner, default_threads  # noqa: E402
from workbench.engine.quiet import silenced  # noqa: E402
from workbench.files import write_bytes_atomically  # noqa: E402
from workbench.models import DEMO_MODELS, load_model  # noqa: E402
from workbench.qtyping import Granularity, Mode, QuantConfig, Route  # noqa: E402
from workbench.session import Session  # noqa: E402


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    target: float
    unit: str
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def record(self) -> dict[str, Any]:
        sign = ">=" if self.higher_is_better else "<="
        record = asdict(self)
        del record["higher_is_better"]
        return {**record, "value": round(self.value, 3), "target": f"{sign} {self.target:g}",
                "met": self.met}  # fmt: skip


def seconds(work: Callable[[], Any], repeats: int = 3) -> float:
    """Median wall time of `repeats` calls."""
    return statistics.median(_times(work) for _ in range(repeats))


def best(work: Callable[[], Any], repeats: int) -> float:
    """Best wall time of `repeats` calls (as timeit advises: other load only adds time)."""
    return min(_times(work) for _ in range(repeats))


def _times(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def ratio(slow: Callable[[], Any], fast: Callable[[], Any], repeats: int) -> float:
    """Best time of `slow` / best time of `fast`, run alternately so that load hits both."""
    pairs = [(_times(slow), _times(fast)) for _ in range(repeats)]
    return min(s for s, _ in pairs) / min(f for _, f in pairs)


def guide_interpreter(data: bytes) -> Any:
    """An interpreter set up as the TFLite guide does it (default options, batch 1)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    return interpreter


def guide_loop(interpreter: Any, x: np.ndarray) -> np.ndarray:
    """The TFLite guide's evaluation loop: one set_tensor / invoke / get_tensor per sample."""
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    outputs = []
    for sample in x:
        value = sample[None]
        if source["dtype"] in (np.int8, np.uint8):
            scale, zero_point = source["quantization"]
            value = value / scale + zero_point
        interpreter.set_tensor(source["index"], value.astype(source["dtype"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0])
    return np.stack(outputs)


def naive_convert(model: Any, config: QuantConfig, x: np.ndarray, keep: list[str]) -> bytes:
    """A fresh TFLiteConverter call per variant, calibrating again for every integer mode."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    converter = tf.lite.TFLiteConverter.from_keras_model(model.keras_model)
    if config.mode is not Mode.FLOAT32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if config.mode is Mode.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if config.mode.needs_calibration:
        samples = x[: config.calibration_samples]
        converter.representative_dataset = lambda: ([row[None]] for row in samples)
    if config.mode is Mode.INT16X8:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    converter._experimental_disable_per_channel = (  # noqa: SLF001
        config.granularity is Granularity.PER_TENSOR
    )
    if not config.keep_float:
        with silenced():
            return converter.convert()
    converter._experimental_calibrate_only = True  # noqa: SLF001
    with silenced():
        calibrated = converter.convert()
        return convert.mlir_quantize(calibrated, denylisted_nodes=keep)


def eval_throughput(name: str, target: float, repeats: int) -> Figure:
    """The engine's evaluation of the int8 variant vs the guide's per-sample loop."""
    session = Session(name)
    data = session.variant(QuantConfig(mode=Mode.INT8)).tflite
    x = session.data.test.x
    runner, interpreter = ParallelRunner(data), guide_interpreter(data)  # each with its defaults
    batched, looped = runner.run(x, BATCH_SIZE)[0], guide_loop(interpreter, x)  # both warmed up
    assert np.mean(np.argmax(batched, 1) == np.argmax(looped, 1)) > 0.99, "not the same model"
    value = ratio(lambda: guide_loop(interpreter, x), lambda: runner.run(x, BATCH_SIZE), repeats)
    return Figure(f"eval throughput vs per-sample loop, {name} int8", value, target, "x")


def standard_variants(
    dataset: Any,
    route: Route,
    load: Callable[[], Any] = lambda: load_model("shapes_mobilenet"),
    target: float = 5.0,
) -> Figure:
    """Seven standard variants: Session.compare vs fresh converter calls + per-sample loops.

    Each side starts from a freshly loaded model (`load()`), so neither reuses the other's
    conversions.
    """
    from workbench.engine.routes.layers import ops_of_layers

    model = load()
    naive_convert(model, QuantConfig(mode=Mode.FLOAT32), dataset.calibration.x, [])  # warm-up
    model = load()
    start = time.perf_counter()
    session = Session(model, dataset)
    configs = session.standard_configs(route)
    session.compare(configs)
    engine = time.perf_counter() - start
    print(f"  engine: {engine:.1f} s, {len(configs)} variants, route {route.value}", flush=True)

    model = load()
    start = time.perf_counter()
    for config in configs:
        keep = []
        if config.keep_float:
            names = [layer.name for layer in model.keras_model.layers]
            found = ops_of_layers(session.float_bytes, config.keep_float, names)
            keep = [tensor for tensors in found.values() for tensor in tensors]
        data = naive_convert(model, config, dataset.calibration.x, keep)
        try:
            interpreter = guide_interpreter(data)
        except RuntimeError:  # the runtime refuses the variant (the engine reports it unavailable)
            continue
        guide_loop(interpreter, dataset.test.x)
    naive = time.perf_counter() - start
    label = (
        f"7 standard variants vs naive, {model.name}, engine on route {route.value} "
        f"({engine:.1f} s vs {naive:.1f} s)"
    )
    return Figure(label, naive / engine, target, "x")


def overhead_and_cache(model: Any, dataset: Any) -> list[Figure]:
    """One fresh dynamic variant: engine vs raw converter (alternating); then a cached request."""
    config = QuantConfig(mode=Mode.DYNAMIC)
    sessions: list[Session] = []

    def engine() -> None:
        sessions.append(Session(model, dataset))
        sessions[-1].variant(config)

    naive_convert(model, config, dataset.calibration.x, [])  # warm-up: TF's first trace is slow
    value = ratio(engine, lambda: naive_convert(model, config, dataset.calibration.x, []), 5)
    first = statistics.median(s.variant(config).convert_s for s in sessions)
    cached = best(lambda: sessions[0].variant(config), repeats=20)
    return [
        Figure(f"engine overhead over a raw converter call, {model.name} dynamic",
               100.0 * (value - 1.0), 15.0, "%", higher_is_better=False),
        Figure(f"cached request vs first conversion, {model.name}", first / cached, 100.0, "x"),
    ]  # fmt: skip


def granularity_switch(model: Any, dataset: Any) -> Figure:
    """int8 per-tensor after per-channel (calibration reused) vs a fresh calibrated conversion."""
    session = Session(model, dataset)
    session.variant(QuantConfig(mode=Mode.INT8))
    switch = seconds(
        lambda: session.variant(QuantConfig(mode=Mode.INT8, granularity=Granularity.PER_TENSOR)),
        repeats=1,
    )
    per_tensor = QuantConfig(mode=Mode.INT8, granularity=Granularity.PER_TENSOR)
    fresh = seconds(lambda: naive_convert(model, per_tensor, dataset.calibration.x, []), 1)
    return Figure(f"granularity switch vs fresh conversion, {model.name}", fresh / switch, 3.0, "x")


def activation_ranges_cost(model: Any, dataset: Any) -> Figure:
    """B's streaming activation ranges vs one float forward pass over the same batches."""
    from workbench.inspection import activation_ranges

    x, keras_model = dataset.calibration.x, model.keras_model

    def forward() -> None:
        for start in range(0, len(x), 128):
            np.asarray(keras_model(x[start : start + 128], training=False))

    forward()
    activation_ranges(model, x)  # warm-up: both trace their graphs once
    value = ratio(lambda: activation_ranges(model, x), forward, repeats=3)
    return Figure(f"activation ranges vs one forward pass, {model.name}", value, 1.5, "x",
                  higher_is_better=False)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with silenced():
        shapes_model = load_model("shapes_mobilenet")
        shapes = load_dataset(DEMO_MODELS["shapes_mobilenet"])
    figures = [
        eval_throughput("digits_cnn", 5.0, repeats=200),
        eval_throughput("shapes_mobilenet", 2.5, repeats=25),
        standard_variants(shapes, Route.CONVERTER),
        standard_variants(shapes, Route.LITERT),
        *overhead_and_cache(shapes_model, shapes),
        granularity_switch(shapes_model, shapes),
        activation_ranges_cost(shapes_model, shapes),
    ]
    status = report(figures, args.out)
    print(f"total {time.perf_counter() - start:.0f} s, {default_threads()} interpreter threads")
    return status


def report(figures: list[Figure], out: Path) -> int:
    """Print one line per figure, write the records to `out`; 1 when a target was missed."""
    width = max(len(f.name) for f in figures)
    for figure in figures:
        mark = "ok " if figure.met else "MISS"
        target = figure.record()["target"]
        print(f"{mark} {figure.name:<{width}}  {figure.value:9.2f} {figure.unit:<2} ({target})")
    records = [figure.record() for figure in figures]
    write_bytes_atomically(out, (json.dumps(records, indent=2) + "\n").encode())
    return 0 if all(figure.met for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
