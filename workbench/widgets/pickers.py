"""Model and data pickers: demo names, or an uploaded .keras / .h5 / .tflite / .npz file, or a
.zip of an image folder (one sub-folder per class, or images only), unpacked on the server.

Uploads are checked (suffix, size cap, the first bytes of that kind of file) before they are
written, so a mislabelled file gets a message naming it, not the server's temporary path. A file
over the cap is refused in the browser already (`UploadGuard`): it is never sent, since the
server drops a websocket message much over the cap without a word to the page. Each
goes into its own folder under one private temporary folder per picker; a folder is removed
once its file is not the current data (models are in memory once loaded; a failed or replaced
upload goes too), and all of them on `close`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as w
import traitlets

from workbench.app import max_upload_mb
from workbench.datasets.archive import unpack_images
from workbench.errors import DataError, ModelFileError, WorkbenchError
from workbench.widgets.state import AppState
from workbench.widgets.tasks import TaskState, TaskStatus
from workbench.widgets.view import OfferedDropdown, View, offer, styled

MODEL_SUFFIXES = (".keras", ".h5", ".tflite")
DATA_SUFFIXES = (".npz", ".zip")
UNPACKED_TIMES = 8  # a .zip of images may unpack to this many times the upload cap
OWN_DATA = ""  # the Data menu's value for "the model's own dataset"
# What each kind of file starts with (a .tflite flatbuffer names itself at bytes 4-8).
SIGNATURES = {
    ".keras": (0, b"PK\x03\x04", "a .keras file is a zip archive; save with model.save()"),
    ".npz": (0, b"PK\x03\x04", "an .npz file is a zip archive; save with numpy.savez(x=, y=)"),
    ".h5": (0, b"\x89HDF\r\n\x1a\n", "an .h5 file is HDF5; save with model.save('m.h5')"),
    ".tflite": (4, b"TFL3", "a .tflite file is a TFLite flatbuffer"),
    ".zip": (0, b"PK\x03\x04", "zip an image folder, one sub-folder per class"),
}


GUARD = """\
// The upload button's file input is never in the document (ipywidgets 8 keeps it detached),
// so a listener on the document never sees its change: arm on a click of one of this app's
// upload buttons, then put a capturing listener on the input the button opens. On its own
// target a capturing listener runs before the button's, so refusing stops the upload.
const armed = new WeakSet();
let arming = null;
const click = HTMLInputElement.prototype.click;
if (!click.wbGuarded) {
  HTMLInputElement.prototype.click = function (...args) {
    if (this.type === "file" && arming !== null) {
      const guard = arming;
      arming = null;
      if (!armed.has(this)) {
        armed.add(this);
        this.addEventListener("change", (event) => guard(event), true);
      }
    }
    return click.apply(this, args);
  };
  HTMLInputElement.prototype.click.wbGuarded = true;
}

export default {
  render({ model, el }) {
    const refuse = (event) => {
      const input = event.target;
      const big = [...(input.files || [])].find((file) => file.size > model.get("max_bytes"));
      if (!big) return;
      event.stopImmediatePropagation();
      input.value = "";
      model.send({ type: "too-big", name: big.name, size: big.size });
    };
    const arm = (event) => {
      const pickers = el.closest(".wb-pickers");
      const button = event.target.closest?.(".widget-upload");
      if (pickers && button && pickers.contains(button)) arming = refuse;
    };
    document.addEventListener("click", arm, true);
    return () => document.removeEventListener("click", arm, true);
  },
};
"""


class UploadGuard(anywidget.AnyWidget):
    """Invisible; in the browser, refuses a chosen file over `max_bytes` before it is sent and
    tells the kernel its name and size (a `{"type": "too-big"}` message)."""

    _esm = GUARD
    max_bytes = traitlets.Int(0).tag(sync=True)


def check_upload_size(name: str, size: int, error: type[WorkbenchError]) -> None:
    """Refuse an upload of `size` bytes over the cap (`workbench dashboard --max-upload-mb`)."""
    limit = max_upload_mb()
    if size > limit * 2**20:
        raise error(
            f"upload {name!r}: {size / 2**20:.1f} MB is over the {limit:g} MB upload limit; "
            "use a smaller file or ask the host to raise `workbench dashboard --max-upload-mb`"
        )


def _uploaded(change_value: Any) -> tuple[str, bytes] | None:
    """(file name, content) of the first file of a FileUpload value, if any."""
    files = list(change_value or ())
    if not files:
        return None
    item = files[0]
    return str(item["name"]), bytes(item["content"])


def saved_upload(
    name: str, content: bytes, suffixes: tuple[str, ...], what: str, folder: Path
) -> Path:
    """Write an upload into a new folder under `folder`, after checking its suffix and size."""
    error = ModelFileError if what == "model" else DataError
    suffix = Path(name).suffix.lower()  # (a file named only ".npz" has none)
    if suffix not in suffixes:
        raise error(f"upload {name!r}: expected a {' / '.join(suffixes)} {what} file")
    check_upload_size(name, len(content), error)
    offset, magic, hint = SIGNATURES[suffix]
    if content[offset : offset + len(magic)] != magic:
        raise error(f"upload {name!r}: not a {Path(name).suffix} file ({hint})")
    path = Path(tempfile.mkdtemp(prefix="upload-", dir=folder)) / Path(name).name
    path.write_bytes(content)
    return path


def unpacked_upload(path: Path) -> Path:
    """The image folder in the uploaded .zip at `path`, unpacked beside it under the archive's
    name; the archive is removed, and on a refusal its whole upload folder."""
    limit = UNPACKED_TIMES * max_upload_mb() * 2**20
    try:
        return unpack_images(path, path.parent / path.stem, limit, f"upload {path.name!r}")
    except (DataError, OSError):
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    finally:
        path.unlink(missing_ok=True)


class PickerView(View):
    """Dropdowns of the demo models and datasets and two upload buttons."""

    def __init__(self, state: AppState, load: Any) -> None:
        from workbench.datasets import DATASET_NAMES
        from workbench.models import DEMO_MODELS
        from workbench.models.pretrained import ARCHITECTURES

        self.state = state
        self._load = load  # load(model, data, name) submits the background job
        self._folder = tempfile.TemporaryDirectory(prefix="workbench-uploads-")
        self._datasets = [("(model's own)", OWN_DATA), *((n, n) for n in DATASET_NAMES)]
        self.model = styled(
            OfferedDropdown(
                options=[*DEMO_MODELS, *ARCHITECTURES], description="Model", value=None
            ),
            "wb-model",
        )
        self.model_upload = styled(
            w.FileUpload(accept=",".join(MODEL_SUFFIXES), description="Upload model"),
            "wb-model-upload",
        )
        self.data = styled(
            OfferedDropdown(options=self._datasets, value=OWN_DATA, description="Data"), "wb-data"
        )
        self.data_upload = styled(
            w.FileUpload(accept=",".join(DATA_SUFFIXES), description="Upload .npz / .zip"),
            "wb-data-upload",
        )
        self.guard = UploadGuard(max_bytes=int(max_upload_mb() * 2**20), layout={"display": "none"})
        self.guard.on_msg(self._on_too_big)
        self.widget = styled(
            w.HBox(
                [self.model, self.model_upload, self.data, self.data_upload, self.guard],
                layout={"flex_flow": "row wrap"},
            ),
            "wb-pickers",
        )
        self.on_user_change(self.model, self._on_model)
        self.on_user_change(self.data, self._on_data)
        self.model_upload.observe(self._on_model_upload, "value")
        self.data_upload.observe(self._on_data_upload, "value")
        state.observe(lambda _: self._sync(), ["model_name", "data_source", "session"])
        state.observe(self._on_status, "status")
        self._sync()

    @property
    def upload_folder(self) -> Path:
        return Path(self._folder.name)

    def close(self) -> None:
        """Remove every uploaded file."""
        self._folder.cleanup()

    def _data_spec(self) -> Any:
        return self.data.value or None

    def _sync(self) -> None:
        """Show the current model and the data it was opened with (an upload by its name)."""
        with self.showing():
            name = self.state.model_name
            if name and name not in self.model.options:
                offer(self.model, [*self.model.options, name])
            self.model.value = name or None
            source = self.state.data_source  # None: the model's own dataset
            value = str(source) if isinstance(source, str | Path) else OWN_DATA
            options = list(self._datasets)
            if value not in {v for _, v in options}:
                uploaded = Path(value).parent.parent == self.upload_folder
                options.append((f"{Path(value).name} (uploaded)" if uploaded else value, value))
            offer(self.data, options)
            self.data.value = value

    def _fail(self, message: str) -> None:
        self.state.status = TaskStatus(TaskState.FAILED, message=message)

    def _on_status(self, change: dict[str, Any]) -> None:
        """Once the worker has finished (not the picker's own messages, generation 0), drop
        uploads not in use (models are in memory once loaded) and show what is in use."""
        status = change["new"]
        if status.generation and not status.state.busy:
            self._prune()
            self._sync()

    def _prune(self) -> None:
        source = self.state.data_source
        keep = Path(str(source)).parent if isinstance(source, str | Path) else None
        for folder in self.upload_folder.glob("upload-*"):
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _on_model(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self.state.model_name:
            self._load(change["new"], self._data_spec(), change["new"])

    def _on_data(self, _change: dict[str, Any]) -> None:
        session = self.state.session
        if session is not None:
            self._load(session.model, self._data_spec(), self.data.label)

    def _on_too_big(self, _widget: Any, content: Any, _buffers: list) -> None:
        """The browser refused a file over the cap: say so as the kernel would."""
        if not isinstance(content, dict) or content.get("type") != "too-big":
            return
        name = str(content.get("name", ""))
        error = ModelFileError if name.lower().endswith(MODEL_SUFFIXES) else DataError
        try:
            check_upload_size(name, int(content.get("size", 0)), error)
        except WorkbenchError as refused:
            self._fail(str(refused))

    def _on_model_upload(self, change: dict[str, Any]) -> None:
        upload = _uploaded(change["new"])
        if upload is None:
            return
        try:
            path = saved_upload(*upload, MODEL_SUFFIXES, "model", self.upload_folder)
        except (WorkbenchError, OSError) as error:
            self._fail(str(error))
            return
        self._load(path, self._data_spec(), path.name)

    def _on_data_upload(self, change: dict[str, Any]) -> None:
        upload = _uploaded(change["new"])
        session = self.state.session
        if upload is None or session is None:
            return
        try:
            path = saved_upload(*upload, DATA_SUFFIXES, "data", self.upload_folder)
            if path.suffix.lower() == ".zip":
                path = unpacked_upload(path)
        except (WorkbenchError, OSError) as error:
            self._fail(str(error))
            return
        self._load(session.model, path, path.name)
