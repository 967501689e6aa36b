"""The conversion engine: routes that turn a model into `.tflite` bytes, the calibration they
share, and `silenced()` around every converter call. Imports nothing heavy until used."""
