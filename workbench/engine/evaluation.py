"""Running `.tflite` bytes on the LiteRT interpreter: batched outputs, scores, latency.

Evaluation only sees bytes and arrays, so the same code scores a converted variant and a file
the user brought. Integer model inputs are quantized with the input tensor's own scale and zero
point, integer outputs dequantized, so callers always pass and get float32.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench import metrics
from workbench.datasets.base import Split
from workbench.errors import DataError, ModelFileError


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model's outputs against the float reference outputs."""

    accuracy: float | None  # top-1 against the labels, None for unlabelled data
    agreement: float  # top-1 agreement with the reference, 0..1
    snr_db: float
    cosine: float


@dataclass(frozen=True)
class Latency:
    """Single-sample invoke time: median and interquartile range over the repeats."""

    median_ms: float
    spread_ms: float
    threads: int


def _interpreter(data: bytes, threads: int) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    try:
        return Interpreter(model_content=bytes(data), num_threads=threads)
    except (ValueError, RuntimeError) as error:
        raise ModelFileError(f"tflite: the interpreter cannot load the model ({error})") from None


def to_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float model inputs in the dtype of the input tensor (quantized for integer inputs)."""
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return np.ascontiguousarray(x, dtype=dtype)
    scale, zero_point = detail["quantization"]
    if not scale:
        raise ModelFileError(f"tflite: integer input {detail['name']!r} has no quantization scale")
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def from_output(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Outputs as float32 (dequantized with the output tensor's scale for integer outputs)."""
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return np.asarray(y, dtype=np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def run_tflite(
    data: bytes, x: np.ndarray, *, batch_size: int = 256, threads: int = 1
) -> np.ndarray:
    """The model's first output for every row of `x`, as float32, computed in batches.

    The input is resized to the batch size and tensors are allocated once for the full batches
    and once more for a shorter last batch.
    """
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise DataError("x: give at least one sample (an array with a batch dimension)")
    interpreter = _interpreter(data, threads)
    source = interpreter.get_input_details()[0]
    expected = tuple(int(d) for d in source["shape_signature"][1:])
    if tuple(x.shape[1:]) != expected and -1 not in expected:
        raise DataError(
            f"x: samples of shape {tuple(x.shape[1:])} do not fit the model input {expected}"
        )
    outputs, allocated = [], 0
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        if len(batch) != allocated:
            interpreter.resize_tensor_input(source["index"], [len(batch), *x.shape[1:]])
            interpreter.allocate_tensors()
            allocated = len(batch)
        interpreter.set_tensor(source["index"], to_input(batch, source))
        interpreter.invoke()
        target = interpreter.get_output_details()[0]
        outputs.append(from_output(interpreter.get_tensor(target["index"]), target))
    return np.concatenate(outputs)


def evaluate(data: bytes, split: Split, reference: np.ndarray) -> Evaluation:
    """Accuracy (when labelled), agreement, SNR and cosine of the model against `reference`."""
    scores = run_tflite(data, split.x)
    reference = np.asarray(reference, dtype=np.float32)
    if reference.shape != scores.shape:
        raise DataError(
            f"reference: shape {reference.shape} differs from the model outputs {scores.shape}"
        )
    accuracy = None
    if split.y is not None:
        predicted = np.argmax(scores.reshape(len(scores), -1), axis=1)
        accuracy = float(np.mean(predicted == np.asarray(split.y).reshape(-1)))
    return Evaluation(
        accuracy=accuracy,
        agreement=metrics.top1_agreement(reference, scores),
        snr_db=metrics.snr_db(reference, scores),
        cosine=metrics.cosine_similarity(
            reference.reshape(len(reference), -1), scores.reshape(len(scores), -1)
        ),
    )


def measure_latency(
    data: bytes, sample: np.ndarray, *, repeats: int = 50, threads: int = 1, warmup: int = 5
) -> Latency:
    """Time `repeats` single-sample calls (set input, invoke, read output) after a warm-up."""
    sample = np.asarray(sample)[:1]
    if len(sample) == 0:
        raise DataError("sample: give one model input to time")
    interpreter = _interpreter(data, threads)
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], [1, *sample.shape[1:]])
    interpreter.allocate_tensors()
    target = interpreter.get_output_details()[0]
    value = to_input(sample, source)
    times = []
    for step in range(warmup + max(1, repeats)):
        start = time.perf_counter()
        interpreter.set_tensor(source["index"], value)
        interpreter.invoke()
        interpreter.get_tensor(target["index"])
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    q25, median, q75 = np.percentile(times, [25, 50, 75])
    return Latency(median_ms=float(median), spread_ms=float(q75 - q25), threads=threads)
