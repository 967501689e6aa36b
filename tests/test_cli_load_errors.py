"""Model and data files that are not what their names say: one line naming the file and the
real reason (never Keras' "File not found" for a file that exists, never advice to unpickle)."""

import numpy as np
import pytest

from workbench.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("bad-files")
    (folder / "notes.keras").write_text("these are notes, not a model\n")
    (folder / "notes.h5").write_text("these are notes, not a model\n")
    (folder / "notes.npz").write_text("these are notes, not arrays\n")
    np.savez(folder / "objects.npz", x=np.array([{"a": 1}] * 5, dtype=object))

    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    Twice.__module__ = "a_module_the_loader_cannot_import"  # as if defined elsewhere
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten(), Twice(), keras.layers.Dense(10)]
    keras.Sequential(layers).save(folder / "custom.keras")
    texts = np.array(["good film", "bad plot", "great cast", "dull story"])
    words = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    words.adapt(texts)
    text = keras.Input((1,), dtype="string", name="review")
    score = keras.layers.Dense(1)(keras.layers.Embedding(20, 4)(words(text)))
    keras.Model(text, score).save(folder / "text.keras")
    return folder


CASES = {
    "text-named-keras": (["notes.keras"], "notes.keras: not a .keras archive"),
    "text-named-h5": (["notes.h5"], "notes.h5: not an HDF5 file"),
    "unregistered-class": (["custom.keras"], "Could not locate class 'Twice'"),
    "text-named-npz": (["digits_cnn", "--data", "notes.npz"], "notes.npz: not a readable .npz"),
    "object-arrays-npz": (["digits_cnn", "--data", "objects.npz"], "never loaded (unsafe)"),
    "text-input-model": (["text.keras"], "input 'review' takes text (strings"),
}


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_bad_file_is_one_line_with_the_real_reason(files, capsys, args, message):
    args = [str(files / arg) if (files / arg).exists() else arg for arg in args]
    assert main(["inspect", *args]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "File not found" not in lines[0] and "pickle" not in lines[0]
