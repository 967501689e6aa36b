"""Which kernels run each op of a `.tflite`: XNNPACK (the fast, multi-threaded CPU delegate) or
TFLite's reference kernels (single-threaded), and why.

The reason an op may fall off XNNPACK is read from the file (int16 activations, integer weights
feeding float compute as in dynamic-range and weight-only models, int4 tensors, custom ops); where
it actually runs is read from the interpreter, whose XNNPACK delegate replaces the ops it takes
by DELEGATE nodes. The two together explain the latency column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from workbench.errors import ModelFileError, RuntimeRefusal
from workbench.qtyping import Mode
from workbench.tflite_file import TfliteModel, op_layers, read_tflite

XNNPACK = "xnnpack"
REFERENCE = "reference"

# Modes whose compute ops leave XNNPACK on this runtime (the tests check each on the interpreter).
MODE_WARNINGS: dict[Mode, str] = {
    Mode.INT16X8: "int16x8 runs on TFLite's reference kernels (int16 activations): one core, "
    "no XNNPACK, expect latency several times int8's",
    Mode.DYNAMIC: "dynamic range: XNNPACK runs the conv and dense layers, but depthwise convs "
    "with int8 weights fall to reference kernels (one core): MobileNet-style models get slower "
    "than float32",
    Mode.INT4: "int4 weight-only runs its layers on reference kernels (XNNPACK does not take "
    "int4 weights here): one core, slower than float32",
}
_SHAPE_DTYPES = frozenset({"int32", "int64", "bool"})


def fast_path_warning(mode: Mode) -> str | None:
    """A warning to show before `mode` is chosen, when its ops leave XNNPACK; else None."""
    return MODE_WARNINGS.get(Mode(mode))


def _builtin_names() -> frozenset[str]:
    from ai_edge_litert.schema_py_generated import BuiltinOperator

    return frozenset(name for name in vars(BuiltinOperator) if not name.startswith("_"))


def _weights(model: TfliteModel, op: Any) -> list[Any]:
    """The constant inputs of `op`, looking through a DEQUANTIZE that unpacks one."""
    found = []
    for index in op.inputs:
        if index < 0:
            continue
        tensor, producer = model.tensors[index], model.producer(index)
        if producer is not None and producer.opcode == "DEQUANTIZE":
            tensor = model.tensors[producer.inputs[0]]
        if tensor.constant:
            found.append(tensor)
    return found


def file_reason(model: TfliteModel, op: Any, builtins: frozenset[str]) -> str:
    """What in the file may keep this op off XNNPACK; "" when nothing in it does."""
    if op.opcode not in builtins:
        return "custom op"
    inputs = [model.tensors[i] for i in op.inputs if i >= 0]
    outputs = [model.tensors[i] for i in op.outputs if i >= 0]
    weights = {t.dtype for t in _weights(model, op)}
    if "int4" in weights or any(t.dtype == "int4" for t in inputs):
        return "int4 weights"
    if any(t.dtype == "int16" and not t.constant for t in (*inputs, *outputs)):
        return "int16 activations"
    if "int8" in weights and any(t.dtype == "float32" for t in outputs):
        return "int8 weights, float activations (dynamic range)"
    return ""


def _computes(model: TfliteModel, op: Any) -> bool:
    """Whether the op computes activations (not shape arithmetic on int32 tensors)."""
    return any(model.tensors[i].dtype not in _SHAPE_DTYPES for i in op.outputs if i >= 0)


def leaves_xnnpack(data: bytes) -> bool:
    """Whether something in the file may keep an op off XNNPACK (no interpreter needed)."""
    model = read_tflite(data)
    builtins = _builtin_names()
    return any(file_reason(model, op, builtins) for op in model.ops)


@dataclass(frozen=True)
class OpKernel:
    """Where one op runs and why."""

    index: int
    opcode: str
    layer: str | None  # its Keras layer; without layer names, its output tensor's name
    kernel: str  # XNNPACK or REFERENCE
    reason: str  # why not XNNPACK: "" on it; "<OPCODE> not taken by XNNPACK" if the file is silent

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RuntimeReport:
    """Per op that computes activations (shape arithmetic left out): XNNPACK or a reference
    kernel. `checked` when the interpreter confirmed it (else predicted from the file, with
    `refusal` the runtime's reason for not loading it)."""

    ops: tuple[OpKernel, ...]
    checked: bool
    refusal: str | None = None

    @property
    def on_reference(self) -> tuple[OpKernel, ...]:
        return tuple(op for op in self.ops if op.kernel == REFERENCE)

    def summary(self) -> str:
        """One line, e.g. ``40 of 42 ops on reference kernels (int16 activations: 40)``."""
        slow = self.on_reference
        how = "" if self.checked else " (predicted from the file; the runtime refused it)"
        if not slow:
            return f"all {len(self.ops)} ops on XNNPACK{how}"
        reasons = Counter(op.reason for op in slow)
        why = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common())
        return f"{len(slow)} of {len(self.ops)} ops on reference kernels ({why}){how}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": [op.to_dict() for op in self.ops],
            "checked": self.checked,
            "refusal": self.refusal,
            "summary": self.summary(),
        }


def delegated_ops(data: bytes, model: TfliteModel) -> set[int] | str:
    """Indices of the ops the interpreter hands to XNNPACK, or why it refuses the model.

    Each DELEGATE node names the tensors entering and leaving its partition; the ops it runs
    are those between them, found walking back from its outputs.
    """
    from workbench.engine.evaluation import allocate, make_interpreter

    try:
        interpreter = make_interpreter(data, threads=1)
        allocate(interpreter)
    except RuntimeRefusal as refusal:
        return refusal.reason
    except ModelFileError as error:  # it does not even load (an unresolved custom op)
        return str(error)
    producers = {t: op.index for op in model.ops for t in op.outputs}
    delegated: set[int] = set()
    for node in interpreter._get_ops_details()[len(model.ops) :]:  # noqa: SLF001
        if node["op_name"] != "DELEGATE":
            continue
        entering = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            op = producers.get(stack.pop())
            if op is None or op in delegated:
                continue
            delegated.add(op)
            stack += [int(t) for t in model.ops[op].inputs if t >= 0 and t not in entering]
    return delegated


def runtime_report(data: bytes, layer_names: list[str] | tuple[str, ...] = ()) -> RuntimeReport:
    """Where each op of `data` runs, read from the file and checked against the interpreter."""
    model = read_tflite(data)
    builtins = _builtin_names()
    layers = op_layers(model, layer_names) if layer_names else {}
    delegated = delegated_ops(data, model)
    checked = not isinstance(delegated, str)
    ops = []
    for op in model.ops:
        if not _computes(model, op):
            continue
        reason = file_reason(model, op, builtins)
        on_xnnpack = op.index in delegated if checked else not reason
        ops.append(
            OpKernel(
                index=op.index,
                opcode=op.opcode,
                layer=layers.get(op.index) if layer_names else model.tensors[op.outputs[0]].name,
                kernel=XNNPACK if on_xnnpack else REFERENCE,
                reason="" if on_xnnpack else reason or f"{op.opcode} not taken by XNNPACK",
            )
        )
    refusal = None if checked else delegated
    return RuntimeReport(tuple(ops), checked, refusal)
