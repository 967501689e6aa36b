"""Running and scoring `.tflite` bytes on the LiteRT interpreter.

Evaluation only sees bytes and arrays, so a converted variant and a file the user brought are
scored by the same code. Inference is batched: the samples run in equal batches (the last one
padded), not invoked sample by sample, on all the cores (see `ParallelRunner`).
"""

from __future__ import annotations

import enum
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.datasets.base import Split
from workbench.datasets.multi import MultiInputs, check_model_inputs, input_arrays
from workbench.errors import DataError, ModelFileError, RuntimeRefusal, UnsupportedError
from workbench.inputs import quantize_inputs
from workbench.metrics import (
    cosine_similarity,
    is_class_scores,
    max_abs_error,
    snr_db,
    top1_agreement,
    top1_correct,
)
from workbench.qtyping import OutputAgreement, Unavailable
from workbench.tflite_file import read_tflite

WARMUP_INVOKES = 5
LATENCY_BUDGET_S = 2.0  # latency_times stops early once its invokes took this long ...
MIN_REPEATS = 10  # ... after at least this many


def default_threads() -> int:
    """Interpreter threads: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


_RUNTIME_ANNOUNCED = threading.Event()
_GLUED = re.compile(r"(?<=[.\w])(?=Node number)")  # the runtime joins its lines without a space


def reason_of(error: BaseException) -> str:
    """The runtime's explanation in one line, e.g. ``tflite/kernels/kernel_util.cc:349
    no_integer_overflow_from_quantization was not true. Node number 2 (DEPTHWISE_CONV_2D) failed
    to prepare.``"""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = _GLUED.sub(" ", " ".join(dict.fromkeys(lines))) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _refusal(error: BaseException) -> RuntimeRefusal:
    reason = reason_of(error)
    return RuntimeRefusal(f"tflite data: the LiteRT runtime refused it ({reason})", reason)


def allocate(interpreter: Any) -> None:
    """`allocate_tensors()`, where the kernels prepare; `RuntimeRefusal` if one refuses."""
    try:
        interpreter.allocate_tensors()
    except RuntimeError as error:
        raise _refusal(error) from None


def invoke(interpreter: Any) -> None:
    """`invoke()`; `RuntimeRefusal` if the runtime fails (a lazily prepared op, memory)."""
    try:
        interpreter.invoke()
    except RuntimeError as error:
        raise _refusal(error) from None


def make_interpreter(data: bytes, *, threads: int | None = None, **options: Any) -> Any:
    """A LiteRT interpreter for `data`; `ModelFileError` when the runtime cannot load it,
    `RuntimeRefusal` (a `ModelFileError`) when it loads but a kernel refuses to prepare."""
    from ai_edge_litert.interpreter import Interpreter

    def load() -> Any:
        try:
            return Interpreter(
                model_content=bytes(data), num_threads=threads or default_threads(), **options
            )
        except (ValueError, RuntimeError) as error:
            text = str(error).strip()
            first = text.splitlines()[0] if text else type(error).__name__
            raise ModelFileError(
                f"tflite data: the LiteRT interpreter cannot load it ({first})"
            ) from None

    interpreter = load()
    if not _RUNTIME_ANNOUNCED.is_set():
        from workbench.engine.quiet import silenced

        with silenced():  # the first allocation prints the CPU delegate's banner, once
            try:
                allocate(interpreter)
            except RuntimeRefusal:
                details = interpreter.get_input_details()
                if all(None not in sample_shape(detail) for detail in details):
                    raise
                interpreter = load()  # inputs of any size: prepared once the data's is set
        _RUNTIME_ANNOUNCED.set()
    return interpreter


def input_names(interpreter: Any) -> list[str]:
    """The signature name of each input tensor, in the `.tflite`'s input order (which may differ
    from the Keras model's: data is matched to inputs by these names); empty without one."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return []
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    by_index = {detail["index"]: name for name, detail in runner.get_input_details().items()}
    return [by_index.get(detail["index"], "") for detail in interpreter.get_input_details()]


def model_inputs(data: bytes) -> list[tuple[str, tuple[int | None, ...]]]:
    """The signature name and per-sample shape (`sample_shape`) of each input of a `.tflite`,
    in its order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(data))
    details = interpreter.get_input_details()
    names = input_names(interpreter) or [detail["name"] for detail in details]
    return list(zip(names, [sample_shape(detail) for detail in details], strict=True))


def input_feeds(data: bytes, x: Any) -> Iterator[dict[str, np.ndarray]]:
    """Each sample of `x` as the inputs of the `.tflite` `data`: one array per input, keyed by
    signature name in the file's input order, in the input tensor's own dtype (an integer
    input, token ids or raw pixels, takes integers, not float32)."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=bytes(data)).get_input_details()
    dtypes = [detail["dtype"] for detail in details]
    names = [name for name, _ in model_inputs(data)]
    for index in range(len(x)):
        arrays = input_arrays(x[index : index + 1], names)
        yield {
            name: np.asarray(array).astype(dtype, copy=False)
            for name, array, dtype in zip(names, arrays, dtypes, strict=True)
        }


def sample_shape(detail: dict[str, Any]) -> tuple[int | None, ...]:
    """The per-sample shape of an input tensor, None where its signature takes any size (a
    model built on ``Input((None, None, 3))``)."""
    signature = detail.get("shape_signature", detail["shape"])
    return tuple(None if d < 0 else int(d) for d in signature[1:])


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
        self.inputs = [_Io.of(detail) for detail in inputs]  # several: fed from MultiInputs
        self.input = self.inputs[0]
        self.outputs = [_Io.of(detail) for detail in self.interpreter.get_output_details()]
        self.output = self.outputs[0]
        self.sample_shapes = [sample_shape(detail) for detail in inputs]  # None: any size
        self.sample_shape = self.sample_shapes[0]
        self._file_shapes = [tuple(int(d) for d in detail["shape"][1:]) for detail in inputs]
        self.input_names = input_names(self.interpreter) if len(inputs) > 1 else []
        signature = inputs[0].get("shape_signature", inputs[0]["shape"])
        # a file exported with a fixed batch (shape signature not -1) cannot be resized
        self.fixed_batch = int(inputs[0]["shape"][0]) if signature[0] != -1 else None
        self._shapes: tuple[tuple[int, ...], ...] = ()

    def check(self, x: Any) -> Any:
        """`x` checked against the model's inputs (`MultiInputs` for several, put in this
        file's input order by name)."""
        return check_model_inputs(x, self.sample_shapes, self.input_names)

    def resize(self, batch: int, sample_shapes: Sequence[tuple[int, ...]] = ()) -> None:
        """Inputs of `batch` samples (a fixed-batch file keeps its own) of `sample_shapes` (by
        default the file's; inputs of any size take the data's), allocated when they change."""
        shapes = tuple(
            (self.fixed_batch or batch, *shape) for shape in sample_shapes or self._file_shapes
        )
        if shapes == self._shapes:
            return
        for tensor, shape in zip(self.inputs, shapes, strict=True):  # unchanged: a no-op
            self.interpreter.resize_tensor_input(tensor.index, list(shape), strict=False)
        allocate(self.interpreter)
        self._shapes = shapes

    def feed(self, x: np.ndarray, size: int | None = None) -> None:
        """Run one batch, padded to `size` rows (fixed-batch models: their batch)."""
        size = self.fixed_batch or size or len(x)
        arrays = input_arrays(x, self.input_names)
        self.resize(size, [tuple(values.shape[1:]) for values in arrays])
        for tensor, values in zip(self.inputs, arrays, strict=True):
            if len(values) < size:
                values = np.concatenate([values, np.repeat(values[-1:], size - len(values), 0)])
            self.interpreter.set_tensor(tensor.index, tensor.encode(values))
        invoke(self.interpreter)

    def invoke(self, x: np.ndarray, size: int | None = None) -> list[np.ndarray]:
        """Run one batch (see `feed`) and return the float32 outputs (all of them, in the
        file's order) of the real rows."""
        count = len(x)
        self.feed(x, size)
        rows = len(self.interpreter.get_tensor(self.input.index))
        outputs = []
        for output in self.outputs:
            y = self.interpreter.get_tensor(output.index)
            if y.ndim == 0 or len(y) != rows:
                raise UnsupportedError(
                    f"model output: shape {y.shape} for an input batch of {rows}; the "
                    "workbench measures outputs with one row per input sample"
                )
            outputs.append(output.decode(y[:count]))
        return outputs

    def run(self, x: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """Outputs for `x` in equal batches of at most `batch_size` (the last one padded), so
        the interpreter is resized once, not twice per call."""
        x = self.check(x)
        if len(x) == 0:
            raise DataError("x: no samples to run")
        size = self.fixed_batch or -(-len(x) // -(-len(x) // batch_size))
        parts = [self.invoke(x[i : i + size], size) for i in range(0, len(x), size)]
        return [np.concatenate(output) for output in zip(*parts, strict=True)]


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
        from workbench.engine.kernels import leaves_xnnpack

        if count > 1 and leaves_xnnpack(data):
            self.runners = [BatchRunner(data, threads=1) for _ in range(count)]
        else:
            self.runners = [BatchRunner(data, threads=count)]

    def run(self, x: np.ndarray, batch_size: int) -> list[np.ndarray]:
        first = self.runners[0]
        x = first.check(x)
        if len(self.runners) == 1 or first.fixed_batch or len(x) < 2 * len(self.runners):
            return first.run(x, batch_size)
        bounds = np.linspace(0, len(x), len(self.runners) + 1).astype(int)  # as array_split
        shares = [x[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
        done = [
            _pool().submit(r.run, part, batch_size)
            for r, part in zip(self.runners, shares, strict=True)
        ]
        parts = [future.result() for future in done]
        return [np.concatenate(output) for output in zip(*parts, strict=True)]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The process-wide evaluation threads, one per core (made on first use)."""
    return ThreadPoolExecutor(default_threads(), thread_name_prefix="workbench-eval")


def run_outputs(data: bytes, x: np.ndarray, *, batch_size: int | None = None) -> list[np.ndarray]:
    """Every float32 output of the model for `x` (in the file's order), in batches of
    `batch_size` split over the cores (by default up to 256, fewer for large inputs:
    `datasets.lazy.samples_per_batch`).

    Integer (int8 / uint8) model inputs are quantized with the input tensor's scale and zero
    point, integer outputs dequantized with the output's.
    """
    from workbench.datasets.lazy import batches, is_lazy, samples_per_batch

    batch_size = samples_per_batch(tuple(np.shape(x)[1:])) if batch_size is None else batch_size
    if batch_size < 1:
        raise DataError(f"batch_size: {batch_size} is not a positive batch size")
    runner = ParallelRunner(data)
    if not is_lazy(x):  # arrays, and anything check_inputs is to judge (lists, scalars)
        return runner.run(x, batch_size)
    # inputs read from files: a few batches at a time
    parts = [runner.run(part, batch_size) for part in batches(x, 4 * batch_size)]
    return [np.concatenate(output) for output in zip(*parts, strict=True)]


def run_tflite(data: bytes, x: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
    """The model's first float32 output for `x` (see `run_outputs`)."""
    return run_outputs(data, x, batch_size=batch_size)[0]


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model's outputs against the float reference outputs.

    Accuracy and top-1 agreement are about the first output and only where it is a vector of
    class scores; `outputs` measures every output against float (SNR, cosine, max error).
    """

    accuracy: float | None  # top-1 accuracy; None for unlabelled data or no class scores
    agreement: float | None  # top-1 agreement with the reference, 0..1; None: no class scores
    snr_db: float  # of the first output
    cosine: float  # of the first output
    samples: int
    outputs: tuple[OutputAgreement, ...] = ()
    # per sample, whether the top-1 class is the label (None unlabelled); for paired statistics
    correct: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        record = {name: value for name, value in self.__dict__.items() if name != "correct"}
        return {**record, "outputs": [output.to_dict() for output in self.outputs]}


def as_outputs(values: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One array (a single-output model's) or a sequence of arrays, as a list of float32."""
    if isinstance(values, np.ndarray):
        return [np.asarray(values, dtype=np.float32)]
    return [np.asarray(value, dtype=np.float32) for value in values]


def output_agreement(
    name: str, reference: np.ndarray, output: np.ndarray, classes: bool
) -> OutputAgreement:
    """SNR, mean cosine and max abs error of one output against its float reference."""
    rows = len(output)
    return OutputAgreement(
        name=name,
        shape=tuple(int(d) for d in output.shape[1:]),
        classes=classes,
        snr_db=snr_db(reference, output),
        cosine=cosine_similarity(reference.reshape(rows, -1), output.reshape(rows, -1)),
        max_abs_error=max_abs_error(reference, output),
    )


class Classes(enum.Enum):
    """How an output holds classes (`predicted_classes` reads it)."""

    VECTOR = "vector"  # (samples, classes) scores: the arg-max
    PROBABILITY = "probability"  # one sigmoid score: class 1 above 0.5
    LOGIT = "logit"  # one linear score measured against labels 0 and 1: class 1 above 0

    @property
    def logit(self) -> bool:
        return self is Classes.LOGIT


def _classes(model: Any, tensor: int, output: np.ndarray, binary: bool) -> Classes | None:
    """How an output holds classes, if it does: a (samples, classes) vector that is the only
    output or a softmax (in a model with several outputs a plain vector is as likely landmarks
    or an embedding); a (samples, 1) sigmoid; or, against labels of classes 0 and 1
    (`binary`), a (samples, 1) linear score: a binary classifier's logit (trained "from
    logits"); against other labels, or none, it is a value (a regression head)."""
    if np.ndim(output) != 2:
        return None
    producer = model.producer(tensor)
    while producer is not None and producer.opcode in ("DEQUANTIZE", "QUANTIZE"):
        producer = model.producer(producer.inputs[0])
    opcode = producer.opcode if producer is not None else ""
    if np.shape(output)[1] == 1:
        if opcode == "LOGISTIC":
            return Classes.PROBABILITY
        return Classes.LOGIT if binary else None
    return Classes.VECTOR if len(model.outputs) == 1 or opcode == "SOFTMAX" else None


def classes_of(
    reference: np.ndarray | Sequence[np.ndarray],
    float_tflite: Callable[[], bytes],
    binary: bool,
) -> Classes | None:
    """How the float model's first output holds classes (as `evaluate` decides it, reading the
    file only for several outputs or a single score), else None."""
    outputs = as_outputs(reference)
    if len(outputs) == 1 and is_class_scores(outputs[0]):
        return Classes.VECTOR
    if np.ndim(outputs[0]) != 2:  # an image, a sequence: no need to read the file
        return None
    model = read_tflite(float_tflite())
    return _classes(model, model.outputs[0].index, outputs[0], binary)


def evaluate(
    data: bytes,
    split: Split,
    reference: np.ndarray | Sequence[np.ndarray],
    *,
    binary: bool = False,
) -> Evaluation:
    """Run `data` on `split` and score it against `reference`: the float model's outputs for
    split.x (one array, or one per output in the file's order); `binary`: the dataset's labels
    are classes 0 and 1 (`Dataset.binary_labels`: a single linear score is their logit)."""
    outputs = run_outputs(data, split.x)
    references = as_outputs(reference)
    shapes = [r.shape for r in references]
    if shapes != [o.shape for o in outputs]:
        raise DataError(
            f"reference: shapes {shapes} differ from the model outputs "
            f"{[o.shape for o in outputs]}; give the float model's outputs on the same samples"
        )
    model = read_tflite(data)
    labelled = split.y is not None  # (labels are the first output's)
    kinds = [
        _classes(model, tensor.index, output, binary and labelled and index == 0)
        for index, (tensor, output) in enumerate(zip(model.outputs, outputs, strict=True))
    ]
    agreements = tuple(
        output_agreement(tensor.name, r, o, kind is not None)
        for tensor, r, o, kind in zip(model.outputs, references, outputs, kinds, strict=True)
    )
    first, scores, logit = agreements[0], outputs[0], kinds[0] is Classes.LOGIT
    correct = top1_correct(scores, split.y, logit) if first.classes and labelled else None
    return Evaluation(
        accuracy=None if correct is None else float(np.mean(correct)),
        agreement=top1_agreement(references[0], scores, logit) if first.classes else None,
        snr_db=first.snr_db,
        cosine=first.cosine,
        samples=len(scores),
        outputs=agreements,
        correct=correct,
    )


@dataclass(frozen=True)
class Latency:
    """Single-sample invoke time: median and interquartile range in ms, with the thread count."""

    median_ms: float
    spread_ms: float
    threads: int

    @classmethod
    def of(cls, times_ms: np.ndarray, threads: int) -> Latency:
        """Median and interquartile range of invoke times in milliseconds."""
        q25, median, q75 = np.percentile(times_ms, [25, 50, 75])
        return cls(float(median), float(q75 - q25), threads)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def measure(
    data: bytes,
    split: Split,
    reference: np.ndarray | Sequence[np.ndarray],
    *,
    latency: bool = True,
    binary: bool = False,
) -> tuple[Evaluation | Unavailable, Latency | Unavailable | None]:
    """`evaluate` and `measure_latency` of `data`, each kept as `Unavailable` with the runtime's
    reason when the runtime refuses it, so a refused variant is a result, not an exception.
    `latency=False` leaves the latency out (None): a partial result comes sooner without it."""
    measured: list[Any] = []
    work = [("evaluation", lambda: evaluate(data, split, reference, binary=binary))]
    if latency:
        work.append(("latency", lambda: measure_latency(data, split.x[:1])))
    for name, step in work:
        try:
            measured.append(step())
        except RuntimeRefusal as refusal:
            measured.append(Unavailable(name, refusal.reason))
        except ModelFileError as error:  # the runtime does not even load this variant
            measured.append(Unavailable(name, str(error)))
    return measured[0], measured[1] if latency else None


def refused_scores(
    scores: Evaluation | Unavailable, latency: Latency | Unavailable | None
) -> tuple[Evaluation, Latency]:
    """The measurements of `measure` with NaN numbers standing in for the refused ones (the
    result that carries them lists the `Unavailable`s) and for a latency left out."""
    nan = float("nan")
    if isinstance(scores, Unavailable):
        scores = Evaluation(accuracy=None, agreement=None, snr_db=nan, cosine=nan, samples=0)
    if latency is None or isinstance(latency, Unavailable):
        latency = Latency(nan, nan, default_threads())
    return scores, latency


def measure_latency(
    data: bytes, sample: np.ndarray, *, repeats: int = 50, threads: int | None = None
) -> Latency:
    """Median and interquartile range of `latency_times`."""
    threads = threads or default_threads()
    return Latency.of(latency_times(data, sample, repeats=repeats, threads=threads), threads)


def latency_times(
    data: bytes,
    sample: np.ndarray,
    *,
    repeats: int = 50,
    threads: int | None = None,
    budget_s: float = LATENCY_BUDGET_S,
) -> np.ndarray:
    """Milliseconds of `repeats` single-sample invokes after a warm-up (input set once, output
    read); fewer, but at least `MIN_REPEATS`, once they took `budget_s` (a model on reference
    kernels at 224x224 takes a tenth of a second or more per invoke)."""
    if repeats < 1:
        raise DataError(f"repeats: {repeats} is not a positive count")
    runner = BatchRunner(data, threads=threads or default_threads())
    if not isinstance(sample, MultiInputs):
        sample = np.asarray(sample, dtype=np.float32)
        sample = sample[:1] if sample.ndim == len(runner.sample_shape) + 1 else sample[None]
    sample = runner.check(sample)[:1]
    batch = runner.fixed_batch or 1
    arrays = input_arrays(sample, runner.input_names)
    runner.resize(batch, [tuple(values.shape[1:]) for values in arrays])
    interpreter = runner.interpreter
    for tensor, values in zip(runner.inputs, arrays, strict=True):
        interpreter.set_tensor(tensor.index, tensor.encode(np.repeat(values, batch, axis=0)))
    for _ in range(WARMUP_INVOKES):
        invoke(interpreter)
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        interpreter.get_tensor(runner.output.index)
        times[i] = time.perf_counter() - start
        if i + 1 >= MIN_REPEATS and times[: i + 1].sum() > budget_s:
            times = times[: i + 1]
            break
    return times * 1000.0
