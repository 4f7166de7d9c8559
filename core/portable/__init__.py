"""Portable models: every stored version leaves the shelf in the form its user needs, and comes back.

One concern per module:

- ``exports``: a version in any download format (``export_version``), ONNX prediction
  (``predict_with_onnx``).
- ``derived``: its ONNX and JSON forms made once, proved and recorded (``ensure_onnx``,
  ``ensure_params``), used by ``exports`` and ``bundle``; ``conversions``: those forms made here
  for this store's own models, in the worker for strangers'.
- ``onnx_export`` / ``onnx_runtime``: skl2onnx conversion with a parity check; onnxruntime
  sessions cached by sha256. ``onnx_meta``, the leaf both use: the metadata keys they share and
  the checked parse that refuses ONNX files referencing external data.
- The plain-parameter JSON (schema_version 1 and 2): ``params_export`` writes it from a model and
  proves it; ``params_predict`` is its numpy-only reference predictor (with ``params_knn``, its
  k-NN search; shipped as one file); ``params_checks`` reads a document from elsewhere (bounded,
  checked); ``params_rebuild`` makes a scikit-learn model of it; ``params_json`` tells the file
  apart from other uploads and imports it as a version.
- ``bundle``: the ``.zip`` with model, metadata, requirements, evaluation set, ONNX, JSON, model
  card and manifest; import verifies every file and loads the model in the sandboxed worker (``core.safety``).
- ``how_to_load``: the code that loads a downloaded file, per format; ``requirements``: pins.
- ``cli``: ``python -m core export|import|env``.

See docs/portable.md.
"""
