"""`workbench sweep` on a real Dask cluster on 127.0.0.1: a `dask scheduler` and two `dask worker`
processes started through their own command lines, against a serial run in this process."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from servers import leaves_no_process

from workbench.cli import main
from workbench.qtyping import Granularity, Mode, QuantConfig, Route

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = ("size_bytes", "size_ratio", "accuracy", "accuracy_drop", "agreement", "snr_db", "cosine")
MODES = ["--route", "converter", "--modes", "float32,int8",
         "--granularity", "per-channel,per-tensor", "--samples", "100"]  # fmt: skip
START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dask(*args: str) -> subprocess.Popen:
    """A `dask ...` command (the console script next to this Python) in its own process group."""
    script = Path(sys.executable).parent / "dask"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dask"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [*command, *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def scheduler():
    """The address of a scheduler with two single-threaded worker processes."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    processes = [_dask("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                       "--no-dashboard")]  # fmt: skip
    try:
        for _ in range(2):
            processes.append(
                _dask(
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--memory-limit",
                    "4GiB",
                )  # fmt: skip
            )
        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield address
    finally:
        _stop(processes)


@pytest.fixture(scope="module")
def models(tmp_path_factory, digits_model):
    """digits_cnn, and its float .tflite (which the converter route refuses to quantize)."""
    from workbench.engine.routes import float_tflite

    path = tmp_path_factory.mktemp("models") / "digits_float.tflite"
    path.write_bytes(float_tflite(digits_model))
    return ["digits_cnn", str(path)]


@pytest.fixture(scope="module")
def serial(models):
    """(model name, config key) -> (tflite sha256, numbers), from `Session` in this process."""
    from workbench.session import Session

    found = {}
    for model in models:
        session = Session(model, "digits")
        for mode, granularity in [("float32", "per-channel"), ("int8", "per-channel"),
                                  ("int8", "per-tensor")]:  # fmt: skip
            config = QuantConfig(mode=mode, granularity=granularity, calibration_samples=100)
            try:  # a refused conversion is a result, but a row needs the variant's bytes
                result = session.evaluate(config).to_dict()
                sha = hashlib.sha256(session.variant(config).tflite).hexdigest()
            except Exception as error:  # noqa: BLE001 - the sweep must carry the same failure
                found[(session.model.name, config.key)] = ("error", str(error))
                continue
            found[(session.model.name, config.key)] = (sha, {k: result[k] for k in NUMBERS})
    return found


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_against_serial(rows: list[dict], serial: dict) -> None:
    assert len(rows) == len(serial) == len({(r["model"], r["key"]) for r in rows})
    for row in rows:
        expected = serial[(row["model"], row["key"])]
        if expected[0] == "error":
            assert row["error"] == expected[1] and "\n" not in row["error"]
            continue
        assert row["error"] is None
        assert row["tflite_sha256"] == expected[0]
        assert {k: row[k] for k in NUMBERS} == expected[1]


def test_sweep_through_scheduler_equals_a_serial_run(scheduler, models, serial, tmp_path, capsys):
    out, table = tmp_path / "rows.jsonl", tmp_path / "rows.csv"
    argv = ["sweep", *models, "--data", "digits", *MODES, "--scheduler", scheduler]
    assert main([*argv, "--json", str(out), "--csv", str(table), "--save-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Dask dashboard:" in printed and "6 rows, 2 failed" in printed
    rows = _rows(out)
    _check_against_serial(rows, serial)
    refused = [row for row in rows if row["error"]]
    assert {row["mode"] for row in refused} == {"int8"} and "litert" in refused[0]["error"]
    assert len({row["worker"] for row in rows if not row["error"]}) >= 1
    assert table.read_text().count("\n") == 7  # header and six rows
    saved = {hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("*.tflite")}
    assert saved == {row["tflite_sha256"] for row in rows if not row["error"]}


def test_killed_worker_gives_the_same_table(scheduler, models, serial):
    from distributed import Client

    from workbench import sweep

    configs = [QuantConfig(mode=m, granularity=g, calibration_samples=100)
               for m, g in [("float32", "per-channel"), ("int8", "per-channel"),
                            ("int8", "per-tensor")]]  # fmt: skip
    killed: dict = {}
    with Client(scheduler) as client:
        # Fresh worker processes: an earlier sweep left every variant in their session caches,
        # where a task takes no time to be seen running.
        client.restart(timeout=START_TIMEOUT_S)
        thread = threading.Thread(
            target=lambda: killed.update(table=sweep(models, configs, "digits", client=client))
        )
        thread.start()
        while thread.is_alive() and "pid" not in killed:  # polling the scheduler until a
            busy = [  # worker holds a variant's task (each takes seconds: a TF conversion)
                address
                for address, keys in client.processing().items()
                if any(key.startswith("variant_row") for key in map(str, keys))
            ]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)  # the worker process; its nanny starts a new one
                killed["pid"] = pid
            time.sleep(0.05)
        thread.join(timeout=300)
        assert not thread.is_alive()
        client.wait_for_workers(2, timeout=START_TIMEOUT_S)
    assert "pid" in killed, "no variant task was seen running"
    rows = killed["table"].rows
    _check_against_serial(rows, serial)


def test_resume_after_interrupt_converts_nothing_twice(scheduler, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    argv = ["sweep", "digits_cnn", "--route", "converter,litert", "--modes", "dynamic,int8,int16x8",
            "--samples", "100", "--scheduler", scheduler, "--json", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "workbench.cli", *argv], env=env,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while (not out.exists() or out.read_text().count("\n") < 2) and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)
        printed, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = _rows(out)
    assert first.returncode == 130 and "--resume" in printed
    assert 2 <= len(before) < 6
    assert main([*argv, "--resume"]) == 0
    after = _rows(out)
    assert after[: len(before)] == before
    keys = [row["key"] for row in after]
    assert len(keys) == len(set(keys)) == 6  # every variant once: none converted twice
    assert all(row["error"] is None for row in after)
    expected = {QuantConfig(route=r, mode=m, calibration_samples=100).key
                for r in Route for m in (Mode.DYNAMIC, Mode.INT8, Mode.INT16X8)}  # fmt: skip
    assert set(keys) == expected
    unreachable = [
        *argv[: argv.index("--scheduler")],
        "--scheduler",
        f"tcp://127.0.0.1:{_free_port()}",
    ]
    assert main([*unreachable, "--json", str(out), "--resume"]) == 0  # all done: no cluster
    assert "nothing left to run" in capsys.readouterr().out and _rows(out) == after


def test_sharded_evaluation_equals_one_shard(scheduler):
    from distributed import Client

    from workbench import sweep

    configs = [QuantConfig(mode="float32"),
               QuantConfig(mode="dynamic", granularity=Granularity.PER_TENSOR)]  # fmt: skip
    with Client(scheduler) as client:
        capped = {"client": client, "test_samples": 300}  # of 400: the cap reaches the shards
        tables = {n: sweep(["digits_cnn"], configs, shards=n, **capped) for n in (1, 2)}
        whole = sweep(["digits_cnn"], configs, **capped)
    by_key = {n: {r["key"]: r for r in table.rows} for n, table in tables.items()}
    plain = {r["key"]: r for r in whole.rows}
    exact = ("size_bytes", "size_ratio", "accuracy", "accuracy_drop", "agreement", "tflite_sha256")
    for key, row in by_key[2].items():
        assert row["error"] is None and row["shards"] == 2 and by_key[1][key]["shards"] == 1
        assert row["samples"] == plain[key]["samples"] == 300
        assert {k: row[k] for k in NUMBERS} == {k: by_key[1][key][k] for k in NUMBERS}
        assert {k: row[k] for k in exact} == {k: plain[key][k] for k in exact}
        assert row["cosine"] == pytest.approx(plain[key]["cosine"], rel=1e-12)
        if plain[key]["snr_db"] is not None:
            assert row["snr_db"] == pytest.approx(plain[key]["snr_db"], rel=1e-9)


def test_bad_input_is_one_line_and_quick(tmp_path, capsys):
    """For `sweep`, and for `search` on a cluster: one line, exit 2, nothing left running."""
    listing, sized, weighted = (tmp_path / f"{n}.txt" for n in ("models", "sized", "weighted"))
    listing.write_text("# zoo\ndigits_cnn\nmissing.keras\n")
    sized.write_text("mobilenet_v2@abc\n")
    weighted.write_text("digits_cnn --weights none\n")
    port, closed = _free_port(), _free_port()
    sweep, search = ["sweep", "digits_cnn", "--modes", "float32"], ["search", "digits_cnn"]
    unreachable = ["--scheduler", f"tcp://127.0.0.1:{closed}"]
    cases = [
        (["sweep", "--models-file", str(listing)], f"{listing}:3: missing.keras"),
        (["sweep", "--models-file", str(sized)], f"{sized}:1: model 'mobilenet_v2@abc': the"),
        (["sweep", "--models-file", str(weighted)], f"{weighted}:1: --weights is for an arch"),
        (["sweep", "mobilenet_v2@16", "--weights", "none"], "'mobilenet_v2@16': the input size"),
        ([*sweep, *unreachable], "no Dask scheduler answers"),
        ([*search, *unreachable], "no Dask scheduler answers"),
        ([*sweep, "--workers", "0"], "--workers: 0"),
        ([*search, "--workers", "0"], "--workers: 0"),
    ]
    empty = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    try:
        for command in (sweep, search):
            cases.append(([*command, "--scheduler", f"tcp://127.0.0.1:{port}"], "has no workers"))
        from distributed import Client

        for index, (argv, message) in enumerate(cases):
            if index == 8:
                Client(f"tcp://127.0.0.1:{port}", timeout=60).close()  # scheduler is up
            with leaves_no_process():
                assert main(argv) == 2
            error = capsys.readouterr().err.strip()
            assert error.startswith("error: ") and message in error and "\n" not in error
    finally:
        _stop([empty])


def test_a_models_file_names_architectures_with_their_own_weights(tmp_path):
    from workbench.commands.sweep import models_from_file
    from workbench.models.pretrained import PretrainedSpec

    (tmp_path / "mine.weights.h5").write_bytes(b"")
    listing = tmp_path / "zoo.txt"
    listing.write_text(
        "mobilenet_v2@96 --weights none  # random\nefficientnet_b0@64\n"
        "resnet50 --weights mine.weights.h5\ndigits_cnn\n"
    )
    assert models_from_file(listing) == [
        PretrainedSpec("mobilenet_v2", 96, "none"),
        "efficientnet_b0@64",  # the command's --weights
        PretrainedSpec("resnet50", 224, str(tmp_path / "mine.weights.h5")),
        "digits_cnn",
    ]


def test_embedded_cluster_stops_its_processes(tmp_path):
    """Without --scheduler: a LocalCluster of spawned workers, gone when the command ends."""
    import psutil

    out = tmp_path / "rows.csv"
    argv = ["sweep", "digits_cnn", "--modes", "float32", "--workers", "1", "--csv", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = subprocess.Popen([sys.executable, "-m", "workbench.cli", *argv], env=env,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    children: dict[int, psutil.Process] = {}
    try:
        while command.poll() is None:
            try:
                found = psutil.Process(command.pid).children(recursive=True)
                children.update({process.pid: process for process in found})
            except psutil.NoSuchProcess:
                break
            time.sleep(0.5)
        printed, _ = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert command.returncode == 0, printed
    assert "Dask dashboard: http://127.0.0.1:" in printed and "1 rows, 0 failed" in printed
    assert children, "the embedded cluster started no worker process"
    # the resource tracker leaves when it reads the end of its pipe: give it a moment
    _, alive = psutil.wait_procs(list(children.values()), timeout=30)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert "float32" in out.read_text()


def test_a_tflite_sweeps_on_litert_and_the_converter_refuses_it_row_by_row(
    scheduler, models, tmp_path
):
    """A .tflite's variants are the LiteRT route's unless --route says otherwise. Asked for the
    converter's standard set, the converter refuses to re-convert it: its float32 row is
    measured, each refused variant's row says why (no layer could be ranked, so none is kept
    float), and the sweep ends normally."""
    import functools

    from distributed import Client

    from workbench import sweep
    from workbench.session import Session

    out = tmp_path / "rows.jsonl"
    argv = ["sweep", *models, "--data", "digits", "--modes", "float32,int8", "--samples", "100"]
    assert main([*argv, "--scheduler", scheduler, "--json", str(out)]) == 0
    routes = {(Path(row["model"]).suffix, row["route"]) for row in _rows(out)}
    assert routes == {("", "converter"), (".tflite", "litert")}  # each model's own default
    assert not [row["error"] for row in _rows(out) if row["error"]]
    converter = functools.partial(Session.standard_configs, route=Route.CONVERTER)
    with Client(scheduler) as client:
        rows = sweep(models[1:], converter, "digits", client=client).rows
    assert [row["error"] for row in rows if row["mode"] == "float32"] == [None]
    refused = [row for row in rows if row["mode"] != "float32"]
    assert refused and all("litert" in row["error"] for row in refused)
    assert not any(row["keep_float"] for row in rows)


def _image_folder(folder: Path, count: int, size: int) -> Path:
    """`count` random RGB images of `size` x `size` pixels in two class folders."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    for index, image in enumerate(pixels):
        target = folder / f"class{index % 2}"
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{index}.png")
    return folder


def _check_against_compare(rows: list[dict], compared, exact: tuple[str, ...]) -> None:
    expected = {result.config.key: result.to_dict() for result in compared}
    assert len(rows) == len(expected)
    for row in rows:
        assert row["error"] is None, row["error"]
        assert {k: row[k] for k in exact} == {k: expected[row["key"]][k] for k in exact}


def test_an_architecture_by_name_sweeps_as_session_compares_it(scheduler, tmp_path):
    """`mobilenet_v3_small@32` (seeded random weights) on 48x48 images: the sweep resizes and
    preprocesses them for the model as `Session` does, and gives compare's numbers (sizes
    apart: the tensor names Keras gives per process differ by ~100 bytes in a 3-10 MB file);
    rerun with `resume`, it finds every row done."""
    from distributed import Client

    from workbench import sweep
    from workbench.session import Session

    images = _image_folder(tmp_path / "images", 40, 48)
    configs = [QuantConfig(mode="float32"), QuantConfig(mode="int8", calibration_samples=8)]
    compared = Session("mobilenet_v3_small@32", images, weights="none").compare(configs)
    rows_file = tmp_path / "rows.jsonl"
    with Client(scheduler) as client:
        options = {"weights": "none", "client": client, "json_path": rows_file}
        rows = sweep(["mobilenet_v3_small@32"], configs, images, **options).rows
        again = sweep(["mobilenet_v3_small@32"], configs, str(images), resume=True, **options)
    _check_against_compare(rows, compared, tuple(k for k in NUMBERS if not k.startswith("size")))
    assert {row["model"] for row in rows} == {"mobilenet_v3_small@32"}
    sizes = {result.config.key: result.size_bytes for result in compared}
    assert all(row["size_bytes"] == pytest.approx(sizes[row["key"]], rel=1e-4) for row in rows)
    assert again.resumed == len(again) == 2 and _rows(rows_file) == rows


def test_a_two_input_model_sweeps_with_an_npz_by_input_name(scheduler, tmp_path):
    """A Keras model with inputs ("alpha", "zeta") swept on an `.npz` holding one array per
    input name: the rows are `Session.compare`'s, bytes and all."""
    import numpy as np
    from distributed import Client
    from test_multi_input import IMAGES, VECTORS, _two_inputs

    from workbench import sweep
    from workbench.session import Session

    model = _two_inputs()
    labels = np.argmax(model.predict([IMAGES, VECTORS], verbose=0), axis=1)
    path, data = tmp_path / "two_inputs.keras", tmp_path / "inputs.npz"
    model.save(path)
    np.savez(data, zeta=VECTORS, y=labels, alpha=IMAGES)  # not in the model's input order
    configs = [QuantConfig(mode="float32"), QuantConfig(mode="int8", calibration_samples=20)]
    session = Session(str(path), str(data))
    compared = session.compare(configs)
    with Client(scheduler) as client:
        rows = sweep([str(path)], configs, str(data), client=client).rows
    _check_against_compare(rows, compared, NUMBERS)
    shas = {c.key: hashlib.sha256(session.variant(c).tflite).hexdigest() for c in configs}
    assert {row["key"]: row["tflite_sha256"] for row in rows} == shas


def test_an_image_folder_travels_in_its_package(tmp_path):
    """Workers on other machines do not have the client's files: a data package holds the
    samples it measures (pixels as stored, uint8), with the fingerprint of the folder's view."""
    import pickle
    import shutil

    import cloudpickle
    import numpy as np

    from workbench.cluster.packages import pack_data
    from workbench.datasets import load_dataset
    from workbench.datasets.for_model import Preparation

    images = _image_folder(tmp_path / "images", 60, 40)
    how = Preparation("a model", image_size=(32, 32))
    package = pack_data(str(images), how, 8)
    expected = load_dataset(str(images), image_size=(32, 32)).head_test(8)
    x = expected.test.x
    assert hasattr(x, "in_memory") and len(x) == 8  # the folder's files, read on demand
    read = {split: np.asarray(getattr(expected, split).x) for split in ("calibration", "test")}
    travelled = pickle.loads(cloudpickle.dumps(package))  # as Dask sends it
    shutil.rmtree(images)
    dataset = travelled.dataset
    assert package.key == expected.fingerprint == dataset.fingerprint
    assert len(dataset.test) == 8 and len(dataset.train) == 0
    assert dataset.test.x[2:5].shape == (3, 32, 32, 3)
    for split, values in read.items():
        assert np.array_equal(np.asarray(getattr(dataset, split).x), values)
