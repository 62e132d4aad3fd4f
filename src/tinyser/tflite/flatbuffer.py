"""Reading a TFLite flatbuffer's structure without running it: the ops it
uses (what a MicroMutableOpResolver must add), whether it is full-int8, and
the tensor kinds that TFLite Micro refuses. Uses the schema that ships with
LiteRT (``ai_edge_litert``), so no TensorFlow is needed.
"""
from __future__ import annotations

from ..errors import ConfigError


def _schema():
    from ai_edge_litert import schema_py_generated as fb
    return fb


def _parse(model_bytes: bytes):
    fb = _schema()
    if not isinstance(model_bytes, (bytes, bytearray)) or len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise ConfigError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))


def _builtin_names() -> dict[int, str]:
    fb = _schema()
    return {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


def _op_code(opcode) -> int:
    return max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))


def model_ops(model_bytes: bytes) -> list[str]:
    """Sorted builtin op names the flatbuffer uses, i.e. what a MicroMutableOpResolver must add.

    Custom ops come back as ``"CUSTOM:<code>"``.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> model_ops(DEFAULT_MODEL.read_bytes())
    ['AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'FULLY_CONNECTED', 'MEAN', 'RESHAPE', 'SOFTMAX']
    """
    return _ops_of(_parse(model_bytes))


def _ops_of(model) -> list[str]:
    names = _builtin_names()
    ops = set()
    for sub in model.subgraphs or []:
        for op in sub.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            name = names.get(_op_code(code), f"BUILTIN_{_op_code(code)}")
            if name == "CUSTOM":
                custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
                name = f"CUSTOM:{custom}"
            ops.add(name)
    return sorted(ops)


def _tensor_kinds(model) -> tuple[bool, bool]:
    """(has dynamic-range ops, has float16 weights) from the tensors feeding each op of a parsed model."""
    fb = _schema()
    hybrid = fp16 = False
    for sub in model.subgraphs or []:
        tensors = sub.tensors or []

        def is_const(t):
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            return buf is not None and ((buf.data is not None and len(buf.data) > 0) or (buf.size or 0) > 0)

        for op in sub.operators or []:
            ins = [tensors[i] for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            consts = [t for t in ins if is_const(t)]
            acts = [t for t in ins if not is_const(t) and not t.isVariable]
            if any(t.type == fb.TensorType.FLOAT16 for t in consts):
                fp16 = True
            if any(t.type in (fb.TensorType.INT8, fb.TensorType.UINT8) for t in consts) and \
                    any(t.type == fb.TensorType.FLOAT32 for t in acts):
                hybrid = True
    return hybrid, fp16


def _full_int8(model) -> bool:
    """Whether a parsed model takes and gives int8 tensors (a full-int8 export)."""
    fb = _schema()
    try:
        sub = model.subgraphs[0]
        ends = [sub.tensors[i] for i in list(sub.inputs) + list(sub.outputs)]
    except (IndexError, TypeError):
        return False
    return bool(ends) and all(t.type == fb.TensorType.INT8 for t in ends)


