"""Running and scoring `.tflite` bytes on the LiteRT interpreter.

Evaluation only sees bytes and arrays, so a converted variant and a file the user brought are
scored by the same code. Inference is batched: the samples run in equal batches (the last one
padded), not invoked sample by sample, on all the cores (see `ParallelRunner`).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.datasets.base import Split
from workbench.errors import DataError, ModelFileError, UnsupportedError
from workbench.inputs import check_inputs, quantize_inputs
from workbench.metrics import cosine_similarity, snr_db, top1_agreement, top1_correct

WARMUP_INVOKES = 5


def default_threads() -> int:
    """Interpreter threads: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


_RUNTIME_ANNOUNCED = threading.Event()


def make_interpreter(data: bytes, *, threads: int | None = None, **options: Any) -> Any:
    """A LiteRT interpreter for `data`; `ModelFileError` when the runtime cannot load it."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(
            model_content=bytes(data), num_threads=threads or default_threads(), **options
        )
        if not _RUNTIME_ANNOUNCED.is_set():
            from workbench.engine.quiet import silenced

            with silenced():  # the first allocation prints the CPU delegate's banner, once
                interpreter.allocate_tensors()
            _RUNTIME_ANNOUNCED.set()
        return interpreter
    except (ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            f"tflite data: the LiteRT interpreter cannot load it ({first})"
        ) from None


@dataclass(frozen=True)
class _Io:
    """Quantization of one input or output tensor (scale 0 = float)."""

    index: int
    dtype: type
    scale: float
    zero_point: int

    @classmethod
    def of(cls, detail: dict[str, Any]) -> _Io:
        scale, zero_point = detail["quantization"]
        return cls(detail["index"], detail["dtype"], float(scale), int(zero_point))

    def encode(self, x: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.dtype, np.integer) and self.scale > 0:
            return quantize_inputs(x, self.dtype, self.scale, self.zero_point)
        return x.astype(self.dtype, copy=False)

    def decode(self, y: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.dtype, np.integer) and self.scale > 0:
            return ((y.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)
        return y.astype(np.float32, copy=False)


class BatchRunner:
    """One interpreter that runs arrays in batches; resized only when the batch size changes."""

    def __init__(self, data: bytes, *, threads: int | None = None, **options: Any) -> None:
        self.interpreter = make_interpreter(data, threads=threads, **options)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise UnsupportedError(
                f"model input: {len(inputs)} input tensors; the workbench evaluates models with "
                "exactly one input"
            )
        self.input = _Io.of(inputs[0])
        self.output = _Io.of(self.interpreter.get_output_details()[0])
        self.sample_shape = tuple(int(d) for d in inputs[0]["shape"][1:])
        signature = inputs[0].get("shape_signature", inputs[0]["shape"])
        # a file exported with a fixed batch (shape signature not -1) cannot be resized
        self.fixed_batch = int(inputs[0]["shape"][0]) if signature[0] != -1 else None
        self._batch = 0

    def resize(self, batch: int) -> None:
        if self.fixed_batch is not None:
            if self._batch == 0:
                self.interpreter.allocate_tensors()
                self._batch = self.fixed_batch
        elif batch != self._batch:
            self.interpreter.resize_tensor_input(
                self.input.index, [batch, *self.sample_shape], strict=False
            )
            self.interpreter.allocate_tensors()
            self._batch = batch

    def invoke(self, x: np.ndarray, size: int | None = None) -> np.ndarray:
        """Run one batch, padded to `size` rows (fixed-batch models: their batch), and return
        the float32 output of the real rows."""
        count = len(x)
        size = self.fixed_batch or size or count
        if count < size:
            x = np.concatenate([x, np.repeat(x[-1:], size - count, axis=0)])
        self.resize(len(x))
        self.interpreter.set_tensor(self.input.index, self.input.encode(x))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output.index)
        if len(y) != len(x):
            raise UnsupportedError(
                f"model output: batch {len(y)} for an input batch of {len(x)}; the model has a "
                "fixed batch size"
            )
        return self.output.decode(y[:count])

    def run(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Outputs for `x` in equal batches of at most `batch_size` (the last one padded), so
        the interpreter is resized once, not twice per call."""
        x = check_inputs(x, (None, *self.sample_shape))
        if len(x) == 0:
            raise DataError("x: no samples to run")
        size = self.fixed_batch or -(-len(x) // -(-len(x) // batch_size))
        parts = [self.invoke(x[i : i + size], size) for i in range(0, len(x), size)]
        return np.concatenate(parts)


class ParallelRunner:
    """Runs arrays on all cores, the way that suits the model's kernels.

    Float, float16 and int8 models run on the CPU delegate (XNNPACK), which spreads a batch over
    its threads: one interpreter with `default_threads()`. Ops left to TFLite's reference
    kernels (int16x8 activations, integer weights feeding float ops: dynamic range, weight-only)
    use one core whatever the thread count, so the samples are shared out instead: one
    single-threaded interpreter per core, each on a thread of a shared pool (the runtime
    releases the GIL while it computes).
    """

    def __init__(self, data: bytes, workers: int | None = None) -> None:
        count = workers or default_threads()
        if count > 1 and _on_reference_kernels(data):
            self.runners = [BatchRunner(data, threads=1) for _ in range(count)]
        else:
            self.runners = [BatchRunner(data, threads=count)]

    def run(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        first = self.runners[0]
        x = check_inputs(x, (None, *first.sample_shape))
        if len(self.runners) == 1 or first.fixed_batch or len(x) < 2 * len(self.runners):
            return first.run(x, batch_size)
        shares = np.array_split(x, len(self.runners))
        done = [
            _pool().submit(r.run, part, batch_size)
            for r, part in zip(self.runners, shares, strict=True)
        ]
        return np.concatenate([future.result() for future in done])


def _on_reference_kernels(data: bytes) -> bool:
    """Whether some op of `data` runs on a single-threaded reference kernel (see ParallelRunner)."""
    from workbench.tflite_file import read_tflite

    model = read_tflite(data)
    if any(t.dtype == "int16" and not t.constant for t in model.tensors):
        return True
    for op in model.ops:
        inputs = [model.tensors[i] for i in op.inputs if i >= 0]
        outputs = [model.tensors[i] for i in op.outputs if i >= 0]
        integer_weights = any(t.constant and t.dtype in ("int8", "int4") for t in inputs)
        if integer_weights and any(t.dtype == "float32" for t in outputs):
            return True
    return False


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The process-wide evaluation threads, one per core (made on first use)."""
    return ThreadPoolExecutor(default_threads(), thread_name_prefix="workbench-eval")


def run_tflite(data: bytes, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The model's float32 outputs for `x`, in batches of `batch_size` split over the cores.

    Integer (int8 / uint8) model inputs are quantized with the input tensor's scale and zero
    point, integer outputs dequantized with the output's.
    """
    if batch_size < 1:
        raise DataError(f"batch_size: {batch_size} is not a positive batch size")
    return ParallelRunner(data).run(x, batch_size)


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model's outputs against the float reference outputs."""

    accuracy: float | None  # top-1 accuracy, None for unlabelled data
    agreement: float  # top-1 agreement with the reference, 0..1
    snr_db: float
    cosine: float
    samples: int
    # per sample, whether the top-1 class is the label (None unlabelled); for paired statistics
    correct: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "correct"}


def evaluate(data: bytes, split: Split, reference: np.ndarray) -> Evaluation:
    """Run `data` on `split` and score it against `reference` (float outputs for split.x)."""
    outputs = run_tflite(data, split.x)
    reference = np.asarray(reference, dtype=np.float32)
    if reference.shape != outputs.shape:
        raise DataError(
            f"reference: shape {reference.shape} differs from the model outputs "
            f"{outputs.shape}; give the float model's outputs on the same samples"
        )
    correct = None if split.y is None else top1_correct(outputs, split.y)
    return Evaluation(
        accuracy=None if correct is None else float(np.mean(correct)),
        agreement=top1_agreement(reference, outputs),
        snr_db=snr_db(reference, outputs),
        cosine=cosine_similarity(
            reference.reshape(len(reference), -1), outputs.reshape(len(outputs), -1)
        ),
        samples=len(outputs),
        correct=correct,
    )


@dataclass(frozen=True)
class Latency:
    """Single-sample invoke time: median and interquartile range in ms, with the thread count."""

    median_ms: float
    spread_ms: float
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def measure_latency(
    data: bytes, sample: np.ndarray, *, repeats: int = 50, threads: int | None = None
) -> Latency:
    """Time `repeats` single-sample invokes after a warm-up (input set once, output read)."""
    if repeats < 1:
        raise DataError(f"repeats: {repeats} is not a positive count")
    threads = threads or default_threads()
    runner = BatchRunner(data, threads=threads)
    sample = np.asarray(sample, dtype=np.float32)
    sample = sample[:1] if sample.ndim == len(runner.sample_shape) + 1 else sample[None]
    sample = check_inputs(sample, (None, *runner.sample_shape))
    batch = runner.fixed_batch or 1
    sample = np.repeat(sample, batch, axis=0)
    runner.resize(batch)
    interpreter = runner.interpreter
    interpreter.set_tensor(runner.input.index, runner.input.encode(sample))
    for _ in range(WARMUP_INVOKES):
        interpreter.invoke()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        interpreter.get_tensor(runner.output.index)
        times[i] = time.perf_counter() - start
    q25, median, q75 = np.percentile(times * 1000.0, [25, 50, 75])
    return Latency(float(median), float(q75 - q25), threads)
