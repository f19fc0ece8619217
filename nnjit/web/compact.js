// Compact weights (nnjit compile --weights f16|int8|int4, and the int8/int4/float16 weights of
// quantized ONNX models), dequantized to float32 at load: the browser's copy of `decode` in
// nnjit/frontend/compact.py, which documents the format. The kernels are unchanged, except
// WebGPU kernels that read a float16 weight as f16 (`halfBytes`: its stored bytes).

let HALF = null; // float16 bits -> float32, built on first use

function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) HALF[h] = s * m * 2 ** -24;
    else if (e === 31) HALF[h] = m ? NaN : s * Infinity;
    else HALF[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return HALF;
}

/** float32 -> float16 bits, rounded to nearest even (overflow to infinity, NaN kept). */
function toHalf(x) {
  F32[0] = x;
  const b = U32[0];
  const s = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return s | 0x7c00 | (m ? 0x200 : 0);
  const he = e - 127 + 15;
  if (he >= 31) return s | 0x7c00;
  if (he <= 0) { // subnormal or zero
    if (he < -10) return s;
    m |= 0x800000;
    const shift = 14 - he;
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return s | r;
  }
  let r = (he << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++; // (a carry into the exponent is right)
  return s | r;
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The float16 bytes of a weight (an entry of Bundle.weights()) for a kernel that reads it as
 * f16: the stored bytes of a "f16" compact entry, else its float32 values rounded. */
export function halfBytes(w) {
  if (w.compact?.format === "f16") return w.raw;
  const f = new Float32Array(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength / 4);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = toHalf(f[i]);
  return new Uint8Array(out.buffer);
}

/** The values (a Float32Array; an Int32Array for "int8" and "uint8") of a compact entry's
 * bytes `raw` (a Uint8Array); throws an Error saying what does not fit. */
export function decodeCompact(raw, shape, desc) {
  const size = shape.reduce((a, b) => a * b, 1);
  if (desc?.format === "int8" || desc?.format === "uint8") {
    if (raw.byteLength !== size) throw new Error(`${desc.format} of shape [${shape}] takes ${size} bytes, not ${raw.byteLength}`);
    return Int32Array.from(desc.format === "int8" ? new Int8Array(raw.buffer, raw.byteOffset, size) : raw);
  }
  if (desc?.format === "i16x2") return decodePairs(raw, shape, desc);
  const out = new Float32Array(size);
  if (desc?.format === "f16") {
    if (raw.byteLength !== 2 * size) throw new Error(`f16 of shape [${shape}] takes ${2 * size} bytes, not ${raw.byteLength}`);
    const t = halfTable();
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < size; i++) out[i] = t[dv.getUint16(2 * i, true)];
    return out;
  }
  if (desc?.format !== "q8" && desc?.format !== "q4") throw new Error(`unknown compact format ${JSON.stringify(desc?.format)}`);
  const { axis, block } = desc;
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length || !Number.isInteger(block) || block <= 0) {
    throw new Error(`axis ${axis} and block ${block} do not fit shape [${shape}]`);
  }
  const q4 = desc.format === "q4";
  const k = shape[axis];
  const nb = Math.ceil(k / block);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const nscales = outer * nb * inner;
  const qbytes = q4 ? Math.ceil(size / 2) : size;
  const off = Math.ceil(qbytes / 4) * 4;
  const stype = desc.scale ?? "f32";
  const sbytes = stype === "f32" ? 4 : stype === "f16" ? 2 : 0;
  const zero = desc.zero ?? false;
  if (!sbytes || !(zero === true || zero === false || (zero === "u4" && q4))) {
    throw new Error(`scale ${JSON.stringify(stype)} and zero ${JSON.stringify(zero)} are not a ${desc.format} form`);
  }
  const zoff = off + sbytes * nscales;
  const want = zoff + (zero === "u4" ? Math.ceil(nscales / 2) : zero ? nscales : 0);
  if (raw.byteLength !== want) throw new Error(`${desc.format} of shape [${shape}] in blocks of ${block} takes ${want} bytes, not ${raw.byteLength}`);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const signed = !!desc.signed;
  const qAt = q4 ? (i) => (raw[i >> 1] >> ((i & 1) * 4)) & 15 : signed ? (i) => dv.getInt8(i) : (i) => raw[i];
  const zAt = zero === "u4" ? (j) => (raw[zoff + (j >> 1)] >> ((j & 1) * 4)) & 15
    : zero ? (signed ? (j) => dv.getInt8(zoff + j) : (j) => raw[zoff + j]) : () => (q4 ? 8 : 0);
  const scales = new Float32Array(nscales);
  if (sbytes === 2) {
    const t = halfTable();
    for (let j = 0; j < nscales; j++) scales[j] = t[dv.getUint16(off + 2 * j, true)];
  } else {
    for (let j = 0; j < nscales; j++) scales[j] = dv.getFloat32(off + 4 * j, true);
  }
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let kk = 0; kk < k; kk++) {
      const row = (o * nb + Math.floor(kk / block)) * inner;
      for (let n = 0; n < inner; n++, i++) out[i] = Math.fround(qAt(i) - zAt(row + n)) * scales[row + n];
    }
  }
  return out;
}

/** "i16x2": the Int32Array words [ceil(K / 2), N] of the 16-bit pairs of q - zero (q [K, N],
 * one byte each, then N zero points): the B operand of the Wasm integer matmul; with "panel"
 * nr, in [N / nr, ceil(K / 2), nr] panels. */
function decodePairs(raw, shape, desc) {
  const k = desc.rows;
  const nr = desc.panel ?? 0;
  const words = nr && shape.length === 3 ? [shape[1], shape[0] * shape[2]] : shape;
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(nr) || nr < 0 || words.length !== 2 ||
      words[0] !== Math.ceil(k / 2) || (nr && shape[2] !== nr)) {
    throw new Error(`i16x2 of ${k} rows (panel ${nr}) does not fit shape [${shape}]`);
  }
  const n = words[1];
  const off = Math.ceil((k * n) / 4) * 4;
  const want = off + (desc.zero ? n : 0);
  if (raw.byteLength !== want) throw new Error(`i16x2 of ${k} x ${n} takes ${want} bytes, not ${raw.byteLength}`);
  const q = desc.signed ? new Int8Array(raw.buffer, raw.byteOffset, want) : raw;
  const rows = words[0];
  const out = new Int32Array(rows * n);
  for (let j = 0; j < rows; j++) {
    for (let c = 0; c < n; c++) {
      const z = desc.zero ? q[off + c] : 0;
      const lo = q[2 * j * n + c] - z;
      const hi = 2 * j + 1 < k ? q[(2 * j + 1) * n + c] - z : 0;
      // [j, c], or in panels [c / nr, j, c % nr]
      const at = nr ? (Math.floor(c / nr) * rows + j) * nr + (c % nr) : j * n + c;
      out[at] = (lo & 0xffff) | (hi << 16);
    }
  }
  return out;
}
