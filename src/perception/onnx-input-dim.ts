// Re-declares one fixed dimension of an ONNX model's graph input, in memory, on the model's own bytes.
//
// Why: lidar_pfn.onnx declares its input [P, 32, 10] and ONNX Runtime refuses any other slot count, although the
// graph (MatMul → ReduceMax over the slots → Add → Relu) computes per slot and would give relu(W·x + b) per point
// for a slot count of 1. The shipped file stays as it is (its sha256 is checked before this runs); the copy
// differs in that one declared size only, weights and nodes untouched.
//
// The edit is made on the protobuf wire format rather than by decoding and re-encoding the ModelProto: a decoder
// without ONNX's full schema would drop the fields it does not know. Only a one-byte varint is replaced by another
// one-byte varint, so no enclosing length changes. Path (onnx.proto field numbers): ModelProto.graph (7) →
// GraphProto.input (11) → ValueInfoProto.name (1) / .type (2) → TypeProto.tensor_type (1) → Tensor.shape (2) →
// TensorShapeProto.dim (1) → Dimension.dim_value (1).

import protobuf from 'protobufjs';

interface WireField {
  field: number;
  wire: number;
  /** Byte range of the value (for length-delimited fields: the payload, without its length prefix). */
  start: number;
  end: number;
}

function fieldsOf(buf: Uint8Array, start: number, end: number): WireField[] {
  const reader = protobuf.Reader.create(buf);
  reader.pos = start;
  reader.len = end;
  const out: WireField[] = [];
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 2) {
      const length = reader.uint32();
      const s = reader.pos;
      reader.skip(length);
      out.push({ field, wire, start: s, end: s + length });
    } else {
      const s = reader.pos;
      reader.skipType(wire);
      out.push({ field, wire, start: s, end: reader.pos });
    }
  }
  return out;
}

function only(fields: WireField[], field: number, wire: number): WireField | undefined {
  const hits = fields.filter((f) => f.field === field && f.wire === wire);
  return hits.length === 1 ? hits[0] : undefined;
}

/**
 * A copy of `model` (ONNX ModelProto bytes) whose graph input `inputName` declares `size` at `axis` instead of
 * its fixed size there; undefined when the input is not found, that dimension is not a fixed one, or either size
 * does not fit one varint byte (1..127). Nodes, weights and every other byte are unchanged.
 */
export function withInputDim(model: Uint8Array, inputName: string, axis: number, size: number): Uint8Array | undefined {
  if (!Number.isInteger(size) || size < 1 || size > 127) return undefined;
  try {
    const graph = only(fieldsOf(model, 0, model.length), 7, 2);
    if (!graph) return undefined;
    const decoder = new TextDecoder();
    for (const input of fieldsOf(model, graph.start, graph.end)) {
      if (input.field !== 11 || input.wire !== 2) continue;
      const info = fieldsOf(model, input.start, input.end);
      const name = only(info, 1, 2);
      if (!name || decoder.decode(model.subarray(name.start, name.end)) !== inputName) continue;
      const type = only(info, 2, 2);
      const tensor = type && only(fieldsOf(model, type.start, type.end), 1, 2);
      const shape = tensor && only(fieldsOf(model, tensor.start, tensor.end), 2, 2);
      if (!shape) return undefined;
      const dims = fieldsOf(model, shape.start, shape.end).filter((f) => f.field === 1 && f.wire === 2);
      const dim = dims[axis];
      const value = dim && only(fieldsOf(model, dim.start, dim.end), 1, 0);
      if (!value || value.end - value.start !== 1) return undefined;
      const patched = Uint8Array.from(model);
      patched[value.start] = size;
      return patched;
    }
    return undefined;
  } catch {
    // Not a parseable protobuf: ONNX Runtime will say what is wrong with the file when it loads the original.
    return undefined;
  }
}
