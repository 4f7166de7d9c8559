"""ONNX files as ModelShelf writes and reads them: the metadata keys, and a checked parse.

A leaf both sides use: ``onnx_export`` writes the input layout and the feature list under these
``metadata_props`` keys, ``onnx_runtime`` reads them to feed a session, and every ONNX file is
parsed by ``read_onnx`` (self-contained, valid) before a session is made from it.
"""

from __future__ import annotations

from typing import Any

from core.errors import FormatError

INPUT_TENSOR = "input"
META_LAYOUT = "modelshelf.input_layout"
META_FEATURES = "modelshelf.features"


def short_reason(exc: Exception) -> str:
    """``Type: message`` on one line, cut at 160 characters: a refusal's reason as a user reads it."""
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:160] + "..."
    return f"{type(exc).__name__}: {text}"


def _tensors(graph: Any) -> Any:
    """Every tensor of a graph, its nodes' attributes and their subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def read_onnx(data: bytes) -> Any:
    """Parse ONNX bytes for use here: refuse files that reference external data (a path to read)."""
    # onnx (protobuf) is only needed when a file is read: not for importing this module.
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's decode errors vary
        raise FormatError(f"Not an ONNX model: {short_reason(exc)}") from exc
    if not model.graph.node and not model.graph.output:
        raise FormatError("Not an ONNX model: the graph is empty")
    for tensor in _tensors(model.graph):
        if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
            raise FormatError(
                f"The ONNX model references external data (tensor {tensor.name!r}); "
                "only self-contained ONNX files are accepted"
            )
    for function in model.functions:
        for node in function.node:
            for attribute in node.attribute:
                if attribute.HasField("t") and attribute.t.data_location == TensorProto.EXTERNAL:
                    raise FormatError("The ONNX model references external data; only self-contained files are accepted")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # the checker raises its own types
        raise FormatError(f"The ONNX model is invalid: {short_reason(exc)}") from exc
    return model


def onnx_metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
