"""`load_model`: every model form the workbench accepts, turned into a `ModelSource`."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from workbench.errors import ModelFileError, UnsupportedError
from workbench.models.input_scaling import scales_its_input
from workbench.models.mixed_precision import in_float32
from workbench.models.pretrained import RAW
from workbench.models.source import ModelSource, SourceKind

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_MODELS: dict[str, str] = {"digits_cnn": "digits", "shapes_mobilenet": "shapes"}
DEFAULT_MODEL = "shapes_mobilenet"
TFLITE_MAGIC = b"TFL3"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
REASON_CHARS = 300  # Keras' explanation is kept up to here, at a sentence end


def load_model(spec: Any, *, name: str | None = None, weights: str | None = None) -> ModelSource:
    """A demo name, a published architecture (``mobilenet_v2@160``, see
    `workbench.models.pretrained`; `weights` imagenet, none or a file), a `.keras` / `.h5` /
    `.tflite` file, a SavedModel folder, a Keras model, concrete functions, or `.tflite`
    bytes."""
    from workbench.models import pretrained

    if isinstance(spec, ModelSource):
        return spec
    architecture = pretrained.parse_spec(spec, weights)
    if architecture is not None:
        source = _from_keras(pretrained.build(architecture), name or architecture.name)
        preprocessing = pretrained.ARCHITECTURES[architecture.architecture].preprocessing
        return dataclasses.replace(source, preprocessing=preprocessing)
    if isinstance(spec, bytes | bytearray):
        return _from_tflite(bytes(spec), name or "model.tflite")
    if isinstance(spec, str) and spec in DEMO_MODELS:
        return _from_keras_file(DEMO_DIR / f"{spec}.keras", name or spec)
    if isinstance(spec, str | Path):
        return _from_path(Path(spec), name)
    if hasattr(spec, "layers") and hasattr(spec, "predict"):
        return _from_keras(spec, name or spec.name)
    functions = tuple(spec) if isinstance(spec, list | tuple) else (spec,)
    if functions and all(hasattr(f, "structured_input_signature") for f in functions):
        return _from_concrete_functions(functions, name or "concrete_function")
    raise ModelFileError(
        f"model: cannot load a {type(spec).__name__}; give a demo name "
        f"({', '.join(DEMO_MODELS)}), an architecture ({', '.join(pretrained.ARCHITECTURES)}), "
        "a .keras/.h5/.tflite file, a SavedModel folder or a Keras model"
    )


def check_model_path(path: Path) -> None:
    """Refuse, without loading anything, a path that cannot be a model: missing, a folder
    without saved_model.pb, an unknown suffix, or bytes that are not the container the suffix
    promises (what `workbench dashboard` checks before it starts the server)."""
    if not path.exists():
        raise ModelFileError(
            f"{path}: no such file or folder; give a .keras, .h5 or .tflite file, a SavedModel "
            f"folder, a demo name ({', '.join(DEMO_MODELS)}) or an architecture name "
            "(mobilenet_v2, resnet50@160, ...)"
        )
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ModelFileError(f"{path}: a folder without saved_model.pb is not a SavedModel")
        return
    if path.suffix not in (".tflite", ".keras", ".h5", ".hdf5"):
        raise ModelFileError(
            f"{path}: unknown model format; use .keras, .h5, .tflite or a SavedModel"
        )
    if path.suffix == ".tflite":
        with path.open("rb") as file:
            _check_tflite(file.read(8), str(path))
    else:
        _check_keras_container(path)


def _from_path(path: Path, name: str | None) -> ModelSource:
    check_model_path(path)
    if path.is_dir():
        return _from_saved_model(path, name or path.name)
    if path.suffix == ".tflite":
        return _from_tflite(path.read_bytes(), name or path.name, path)
    return _from_keras_file(path, name or path.stem)


def _from_keras_file(path: Path, name: str) -> ModelSource:
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt file
        reason = keras_reason(error)
        if "safe_mode" in str(error) or "`Lambda` layer" in reason:
            reason = (
                "it holds a Lambda layer's Python code, which Keras runs only when told to trust "
                "the file; if you do, load it with keras.models.load_model(path, "
                "safe_mode=False) and pass the model to workbench.Session, or rebuild the model "
                "without Lambda layers"
            )
        elif path.suffix in (".h5", ".hdf5") and "Could not locate" not in reason:
            reason += " (legacy HDF5 cannot hold every model: save it as model.save('m.keras'))"
        raise ModelFileError(f"{path}: Keras cannot load this file: {reason}") from None
    return _from_keras(model, name)


def _check_keras_container(path: Path) -> None:
    """Refuse a file whose bytes are not the container its suffix promises."""
    import zipfile

    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                holds_config = "config.json" in archive.namelist()
        except (zipfile.BadZipFile, OSError):
            holds_config = False
        if not holds_config:
            raise ModelFileError(
                f"{path}: not a .keras archive (a .keras file is the zip archive model.save() "
                "writes, with a config.json); save the model with model.save('model.keras')"
            )
    with path.open("rb") as file:
        signature = file.read(len(HDF5_SIGNATURE))
    if path.suffix in (".h5", ".hdf5") and signature != HDF5_SIGNATURE:
        raise ModelFileError(
            f"{path}: not an HDF5 file; save the model with model.save('model.keras')"
        )


def keras_reason(error: BaseException) -> str:
    """Keras' own explanation, one line: the innermost error of the chain, without the long
    config dump Keras appends (e.g. "Could not locate class 'Twice'. Make sure custom classes
    ... are decorated with `@keras.saving.register_keras_serializable()`.")."""
    innermost, seen = error, 0
    while (innermost.__cause__ or innermost.__context__) is not None and seen < 20:
        innermost = innermost.__cause__ or innermost.__context__
        seen += 1
    text = str(innermost).split("Exception encountered: ")[-1]
    text = " ".join(text.split("Full object config")[0].split()) or type(innermost).__name__
    if len(text) > REASON_CHARS:
        cut = text.rfind(". ", 0, REASON_CHARS)
        text = text[: cut + 1] if cut > 0 else text[:REASON_CHARS] + "..."
    return text


def _from_keras(model: Any, name: str) -> ModelSource:
    if not hasattr(model, "inputs") or not hasattr(model, "outputs"):
        raise UnsupportedError(
            f"model {model.name!r}: a subclassed {type(model).__name__} has no input and output "
            "tensors to measure; rebuild it as a keras.Sequential or functional keras.Model"
        )
    model = in_float32(model)  # a mixed-precision model: float16 ops do not convert
    for tensor in model.inputs:
        if "string" in str(tensor.dtype):
            raise UnsupportedError(
                f"model {name!r}: input {tensor.name!r} takes text (strings, vectorized inside "
                "the model), which TFLite quantization cannot take; give the model from its "
                "token ids on (the layers after TextVectorization) and token-id data"
            )
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    output_shape = tuple(model.outputs[0].shape) if model.outputs else ()
    preprocessing = _raw_values(model.inputs[0].dtype, 0.0)
    if preprocessing is None and scales_its_input(model):  # bytes in, scaled by the model
        preprocessing = RAW
    return ModelSource(
        name=name,
        kind=SourceKind.KERAS,
        fingerprint=digest.hexdigest()[:16],
        input_shape=tuple(model.inputs[0].shape),
        num_classes=2 if sigmoid_output(model) else _classes(output_shape),
        input_count=len(model.inputs),
        keras_model=model,
        preprocessing=preprocessing,
    )


def _from_saved_model(path: Path, name: str) -> ModelSource:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        function = loaded.signatures["serving_default"]
    except Exception as error:
        raise ModelFileError(f"{path}: cannot load this SavedModel ({error})"[:240]) from None
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file():
            digest.update(file.read_bytes())
    spec = list(function.structured_input_signature[1].values())[0]
    output = list(function.structured_outputs.values())[0]
    return ModelSource(
        name=name,
        kind=SourceKind.SAVED_MODEL,
        fingerprint=digest.hexdigest()[:16],
        input_shape=tuple(spec.shape),
        num_classes=_classes(tuple(output.shape)),
        input_count=len(function.structured_input_signature[1]),
        saved_model_dir=path,
    )


def _from_concrete_functions(functions: tuple[Any, ...], name: str) -> ModelSource:
    first = functions[0]
    inputs = [t for t in first.inputs if t.dtype.name != "resource"]
    digest = hashlib.sha256(first.graph.as_graph_def().SerializeToString(deterministic=True))
    for variable in first.variables:
        digest.update(variable.numpy().tobytes())
    return ModelSource(
        name=name,
        kind=SourceKind.CONCRETE_FUNCTION,
        fingerprint=digest.hexdigest()[:16],
        input_shape=tuple(inputs[0].shape),
        num_classes=_classes(tuple(first.outputs[0].shape)),
        input_count=len(inputs),
        concrete_functions=functions,
    )


def _check_tflite(head: bytes, where: str) -> None:
    """Refuse bytes that do not start as a TFLite flatbuffer (its identifier at bytes 4-8)."""
    if head[4:8] != TFLITE_MAGIC:
        raise ModelFileError(
            f"{where}: not a .tflite flatbuffer; convert the model to .tflite first"
        )


def _from_tflite(data: bytes, name: str, path: Path | None = None) -> ModelSource:
    from ai_edge_litert.interpreter import Interpreter

    where = str(path) if path else f"model {name!r}"
    _check_tflite(data, where)
    try:
        interpreter = Interpreter(model_content=data)
    except Exception as error:
        raise ModelFileError(f"{where}: corrupt .tflite file ({error})"[:240]) from None
    inputs = interpreter.get_input_details()
    output_detail = interpreter.get_output_details()[0]
    shape = tuple(None if d < 0 else int(d) for d in inputs[0]["shape_signature"])
    return ModelSource(
        name=name,
        kind=SourceKind.TFLITE,
        fingerprint=hashlib.sha256(data).hexdigest()[:16],
        input_shape=(None, *shape[1:]),
        num_classes=_classes(tuple(int(d) for d in output_detail["shape"])),
        input_count=len(inputs),
        tflite_bytes=data,
        preprocessing=_raw_values(inputs[0]["dtype"], inputs[0]["quantization"][0]),
    )


def _raw_values(dtype: Any, scale: float) -> Any:
    """Values as given for an integer model input that is not quantized (raw pixels or token
    ids, fed as stored), instead of 8-bit data scaled to 0..1; else None."""
    import numpy as np

    if np.issubdtype(np.dtype(dtype), np.integer) and not scale:
        from workbench.datasets.user import AS_GIVEN

        return AS_GIVEN
    return None


def sigmoid_output(model: Any) -> bool:
    """Whether a Keras 3 model's first output is one score a sigmoid makes: a binary
    classifier's probability of class 1 (of two classes)."""
    first = model.outputs[0] if model.outputs else None
    if first is None or first.shape[-1] != 1:
        return False
    last = first._keras_history.operation
    return "sigmoid" in getattr(getattr(last, "activation", None), "__name__", "")


def _classes(output_shape: tuple[Any, ...]) -> int | None:
    """The class count of a (batch, classes) score vector, else None."""
    if len(output_shape) == 2 and output_shape[1] is not None and output_shape[1] > 1:
        return int(output_shape[1])
    return None
