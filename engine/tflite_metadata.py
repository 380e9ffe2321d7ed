"""Edits to TFLite flatbuffers that MediaPipe's Tasks API needs and the legacy model files lack.

The BlazePose, hand and face models that ship in packages (mediapipe 0.10.21's wheel, npm
`@mediapipe/pose`) carry no `TFLITE_METADATA`, so the Tasks graphs cannot tell how to normalise
their float input ("requires specifying NormalizationOptions metadata"). We write that metadata
with the flatbuffer classes generated from TFLite's schemas that mediapipe >= 1.2 ships
(`mediapipe.tasks.metadata`); its own `metadata_writers` cannot be used, because they import a
compiled helper the wheel lacks (it only computes the minimum parser version, set here by hand).
"""

from __future__ import annotations

import numpy as np

METADATA_NAME = "TFLITE_METADATA"
_MIN_PARSER_VERSION = "1.0.0"  # NormalizationOptions, ImageProperties and Stats are all 1.0 fields


def _schemas():
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as md
    from mediapipe.tasks.metadata import schema_py_generated as fb
    return flatbuffers, fb, md


def _load(model: bytes):
    _, fb, _ = _schemas()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))


def _pack(model_t, identifier: bytes) -> bytes:
    flatbuffers, _, _ = _schemas()
    b = flatbuffers.Builder(1024)
    b.Finish(model_t.Pack(b), identifier)
    return bytes(b.Output())


def add_image_metadata(model: bytes, name: str, value_range: tuple[float, float]) -> bytes:
    """The model with metadata that says: input 0 is an RGB image whose 0..255 values are mapped
    linearly onto `value_range` ((0, 1) or (-1, 1) for the BlazePose family), as the legacy graphs'
    ImageToTensorCalculator did. Any metadata already under that name is replaced."""
    _, fb, md = _schemas()
    m = _load(model)
    sg = m.subgraphs[0]
    lo, hi = value_range
    norm = md.NormalizationOptionsT()
    norm.std = [255.0 / (hi - lo)]  # (x - mean) / std maps 0 → lo and 255 → hi
    norm.mean = [-lo * norm.std[0]]
    unit = md.ProcessUnitT()
    unit.optionsType = md.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    props = md.ImagePropertiesT()
    props.colorSpace = md.ColorSpaceType.RGB
    content = md.ContentT()
    content.contentPropertiesType = md.ContentProperties.ImageProperties
    content.contentProperties = props
    stats = md.StatsT()
    stats.min, stats.max = [float(lo)], [float(hi)]
    image = md.TensorMetadataT()
    image.name, image.content, image.processUnits, image.stats = "image", content, [unit], stats
    outputs = []
    for i in sg.outputs:
        t = md.TensorMetadataT()
        t.name = sg.tensors[i].name.decode()
        outputs.append(t)
    sub = md.SubGraphMetadataT()
    sub.inputTensorMetadata, sub.outputTensorMetadata = [image], outputs
    meta = md.ModelMetadataT()
    meta.name, meta.subgraphMetadata, meta.minParserVersion = name, [sub], _MIN_PARSER_VERSION
    buffer = fb.BufferT()
    buffer.data = _pack(meta, b"M001")
    m.metadata = [e for e in (m.metadata or []) if e.name.decode() != METADATA_NAME]
    m.buffers.append(buffer)
    entry = fb.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(m.buffers) - 1
    m.metadata.append(entry)
    return _pack(m, b"TFL3")


def pad_output(model: bytes, output: int, extra: int) -> bytes:
    """The model with `extra` zeros appended to the last axis of output `output` (a PAD op).

    The Tasks face graph decodes 478 landmarks (the mesh and 10 iris points); the face mesh
    model in the packages gives the 468 mesh points. Padding keeps the mesh exact and leaves the
    iris points at zero, which the engine does not read."""
    _, fb, _ = _schemas()
    m = _load(model)
    sg = m.subgraphs[0]
    src = sg.tensors[sg.outputs[output]]
    rank = len(src.shape)
    pads = np.zeros((rank, 2), np.int32)
    pads[-1, 1] = extra
    m.buffers.append(fb.BufferT())
    m.buffers[-1].data = pads.tobytes()
    paddings = fb.TensorT()
    paddings.name, paddings.shape, paddings.type = b"hp3d_padding", [rank, 2], fb.TensorType.INT32
    paddings.buffer = len(m.buffers) - 1
    m.buffers.append(fb.BufferT())
    padded = fb.TensorT()
    padded.name, padded.type = src.name + b"_padded", src.type
    padded.shape = [int(s) for s in src.shape[:-1]] + [int(src.shape[-1]) + extra]
    padded.buffer = len(m.buffers) - 1
    sg.tensors += [paddings, padded]
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.PAD
    code.version = 1
    m.operatorCodes.append(code)
    op = fb.OperatorT()
    op.opcodeIndex = len(m.operatorCodes) - 1
    op.inputs = [sg.outputs[output], len(sg.tensors) - 2]
    op.outputs = [len(sg.tensors) - 1]
    op.builtinOptionsType = fb.BuiltinOptions.PadOptions
    op.builtinOptions = fb.PadOptionsT()
    sg.operators.append(op)
    sg.outputs = [len(sg.tensors) - 1 if k == output else int(t) for k, t in enumerate(sg.outputs)]
    return _pack(m, b"TFL3")


def output_shapes(model: bytes) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each output of the first subgraph."""
    m = _load(model)
    sg = m.subgraphs[0]
    return [(sg.tensors[i].name.decode(), tuple(int(s) for s in sg.tensors[i].shape)) for i in sg.outputs]


def has_metadata(model: bytes) -> bool:
    return any(e.name.decode() == METADATA_NAME for e in (_load(model).metadata or []))
