"""One error family: every failure a user can cause is a `WorkbenchError`, one line long."""


class WorkbenchError(Exception):
    """Base class. The message is one line naming the file or argument and what to do."""


class ModelFileError(WorkbenchError):
    """A model path or object that cannot be loaded."""


class DataError(WorkbenchError):
    """A dataset name, file or array that cannot be used with the model."""


class UnsupportedError(WorkbenchError):
    """A mode, route or op the chosen conversion cannot honour."""


class ConversionError(WorkbenchError):
    """The converter or quantizer failed; the message names the op or layer and a hint."""


class RuntimeRefusal(ModelFileError):
    """The LiteRT runtime refused to prepare or run a model (an op, a kernel's check, memory).

    `reason` is the runtime's own explanation in one line; measurements keep it as a value
    (`qtyping.Unavailable`) instead of failing.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class OutputError(WorkbenchError):
    """An output path that cannot be written (a folder, under a file, empty, not writable)."""


def came_from_interrupt(error: BaseException) -> bool:
    """Whether `error` was caused by a `KeyboardInterrupt`: Ctrl-C landing inside a C extension
    (TensorFlow's tracing, the converter) reaches Python as another type, often `SystemError`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def raise_if_interrupted(error: BaseException) -> None:
    """Raise `KeyboardInterrupt` when `error` came from one, so that a handler meant for
    failures does not swallow Ctrl-C."""
    if came_from_interrupt(error):
        raise KeyboardInterrupt from error
