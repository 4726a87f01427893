// dpiqa-edge in the browser: the parts of the Python runtime a page must reproduce number for number.
//
// No DOM and no onnxruntime here: app.mjs (the page), the browser tests and the bench call these
// functions. Each one mirrors one Python definition, named beside it:
//   readOnnxMetadata / decodeMetadata  runtime/artifact.py (the metadata_props inside model.onnx)
//   preprocessFromMetadata / modelInputs / resizeRGB   runtime/preprocess.py `Preprocess`
//   exposureClipping / sharpness / CameraGate / judgeImage   runtime/gate.py
// Frames are {data: Uint8Array RGB (h*w*3), width, height}.

// ---------------------------------------------------------------------------------------------------
// 1. Metadata: read from the model file itself, so a page cannot disagree with its artifact.
// ---------------------------------------------------------------------------------------------------
export const REQUIRED_KEYS = [
  "dpiqa_edge_version", "model_type", "student", "target", "precision", "preprocessing", "raw_input",
  "score_range", "higher_is_better", "source_sha256", "outputs", "input_name",
];
const JSON_KEYS = new Set(["preprocessing", "raw_input", "higher_is_better", "gate_threshold", "dynamic_batch", "image_input"]);

export class PageError extends Error {}

/** ONNX ModelProto bytes -> {key: value} of its metadata_props (protobuf field 14); the graph is skipped. */
export function readOnnxMetadata(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const text = new TextDecoder("utf-8");
  let pos = 0;
  const varint = (end) => {
    let value = 0, mul = 1, b;
    do {
      if (pos >= end) throw new PageError("truncated protobuf varint");
      b = bytes[pos++];
      value += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
    return value;
  };
  const skip = (wire, end) => {
    if (wire === 0) varint(end);
    else if (wire === 1) pos += 8;
    else if (wire === 2) { const n = varint(end); pos += n; } // (varint moves pos: read it first)
    else if (wire === 5) pos += 4;
    else throw new PageError(`unsupported protobuf wire type ${wire}`);
    if (pos > end) throw new PageError("truncated protobuf field");
  };
  const out = {};
  const end = bytes.length;
  while (pos < end) {
    const tag = varint(end), field = Math.floor(tag / 8), wire = tag % 8;
    if (field !== 14 || wire !== 2) { skip(wire, end); continue; }
    const entryLength = varint(end), entryEnd = pos + entryLength;
    if (entryEnd > end) throw new PageError("truncated metadata entry");
    let key = "", value = "";
    while (pos < entryEnd) {
      const t = varint(entryEnd), f = Math.floor(t / 8), w = t % 8;
      if ((f === 1 || f === 2) && w === 2) {
        const n = varint(entryEnd);
        if (pos + n > entryEnd) throw new PageError("truncated metadata string");
        const s = text.decode(bytes.subarray(pos, pos + n));
        pos += n;
        if (f === 1) key = s; else value = s;
      } else skip(w, entryEnd);
    }
    out[key] = value;
  }
  return out;
}

/** The stored strings -> values, with the checks of runtime.artifact.decode_metadata. */
export function decodeMetadata(raw, where) {
  const missing = REQUIRED_KEYS.filter((k) => !(k in raw));
  if (missing.length) throw new PageError(`${where}: not a dpiqa-edge model or its metadata is incomplete (missing ${missing.join(", ")})`);
  const meta = {};
  for (const [key, value] of Object.entries(raw)) {
    if (JSON_KEYS.has(key)) {
      try { meta[key] = JSON.parse(value); } catch { throw new PageError(`${where}: metadata ${key}=${JSON.stringify(value)} is not valid JSON`); }
    } else meta[key] = value;
  }
  if (!("gate_threshold" in meta)) meta.gate_threshold = null;
  if (meta.gate_threshold !== null && typeof meta.gate_threshold !== "number") throw new PageError(`${where}: metadata gate_threshold is not a number`);
  if (typeof meta.preprocessing !== "object" || meta.preprocessing === null || !("size" in meta.preprocessing)) {
    throw new PageError(`${where}: metadata preprocessing has no input size`);
  }
  if (meta.higher_is_better !== true || meta.score_range !== "0,100") {
    throw new PageError(`${where}: metadata says score_range=${meta.score_range}, higher_is_better=${meta.higher_is_better}; dpiqa-edge models are 0,100 / true`);
  }
  if (meta.target !== "onnx") throw new PageError(`${where}: metadata target ${meta.target} is not onnx`);
  return meta;
}

// ---------------------------------------------------------------------------------------------------
// 2. Preprocess: the same pixels the Python runtime feeds the model.
// ---------------------------------------------------------------------------------------------------
/** Pillow's resampling filters (libImaging/Resample.c): support in source pixels at scale 1. */
const FILTERS = {
  area: { name: "area", support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0) },
  bilinear: { name: "bilinear", support: 1.0, f: (x) => { x = Math.abs(x); return x < 1.0 ? 1.0 - x : 0.0; } },
  bicubic: {
    name: "bicubic",
    support: 2.0,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    },
  },
};
export const RESAMPLE = ["bilinear", "bicubic", "nearest", "area"];
const PRECISION = 2 ** 22; // Pillow's 8-bit fixed point: 32 - 8 - 2 bits

/** Per output pixel: first source index, count, fixed-point weights (Pillow's precompute_coeffs +
 *  normalize_coeffs_8bpc). A downscale widens the filter by the reduction factor (antialiasing). */
const coefficientCache = new Map();
function coefficients(inSize, outSize, filter) {
  const key = `${inSize}:${outSize}:${filter.name}`;
  if (!coefficientCache.has(key)) {
    if (coefficientCache.size > 16) coefficientCache.clear(); // camera frames reuse a handful of sizes
    coefficientCache.set(key, computeCoefficients(inSize, outSize, filter));
  }
  return coefficientCache.get(key);
}

function computeCoefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize), count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    const k = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) { k[x] = filter.f((x + xmin - center + 0.5) * ss); ww += k[x]; }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0.0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * PRECISION) : Math.trunc(0.5 + w * PRECISION);
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, weights, ksize };
}

const HALF = PRECISION / 2;

/** Along x: each output pixel sums `count` neighbours of its row. Pillow accumulates in 32-bit ints
 *  (its weights are normalised so no sum leaves that range) and keeps the top bits: `>> 22`, then
 *  clamped to 0..255, which the Uint8ClampedArray does on assignment. */
function horizontalPass(src, w, h, ow, c) {
  const { first, count, weights, ksize } = c;
  const out = new Uint8ClampedArray(ow * h * 3);
  let o = 0;
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    for (let x = 0; x < ow; x++) {
      const base = x * ksize, n = count[x];
      let p = row + first[x] * 3, s0 = HALF, s1 = HALF, s2 = HALF;
      for (let j = 0; j < n; j++, p += 3) {
        const k = weights[base + j];
        s0 += src[p] * k; s1 += src[p + 1] * k; s2 += src[p + 2] * k;
      }
      out[o++] = s0 >> 22; out[o++] = s1 >> 22; out[o++] = s2 >> 22;
    }
  }
  return new Uint8Array(out.buffer);
}

/** Along y: whole rows at a time (the same sums in the same order, read row by row for the cache). */
function verticalPass(src, w, oh, c) {
  const { first, count, weights, ksize } = c;
  const rowLen = w * 3, out = new Uint8ClampedArray(oh * rowLen), acc = new Float64Array(rowLen);
  for (let y = 0; y < oh; y++) {
    acc.fill(HALF);
    for (let j = 0; j < count[y]; j++) {
      const k = weights[y * ksize + j], p = (first[y] + j) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[p + i] * k;
    }
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = acc[i] >> 22;
  }
  return new Uint8Array(out.buffer);
}

/** Pillow's NEAREST resize (an affine scale: source = floor of an accumulated (i + 0.5) * in/out). */
function nearest(src, w, h, ow, oh) {
  const ax = w / ow, ay = h / oh;
  const xs = new Int32Array(ow);
  let xo = ax * 0.5;
  for (let x = 0; x < ow; x++) { xs[x] = Math.min(Math.trunc(xo), w - 1); xo += ax; }
  const out = new Uint8Array(ow * oh * 3);
  let yo = ay * 0.5;
  for (let y = 0; y < oh; y++) {
    const yi = Math.min(Math.trunc(yo), h - 1);
    yo += ay;
    for (let x = 0; x < ow; x++) {
      const p = (yi * w + xs[x]) * 3, o = (y * ow + x) * 3;
      out[o] = src[p]; out[o + 1] = src[p + 1]; out[o + 2] = src[p + 2];
    }
  }
  return out;
}

/** uint8 RGB w x h -> uint8 RGB ow x oh, equal to PIL.Image.resize((ow, oh), resample). */
export function resizeRGB(src, w, h, ow, oh, resample) {
  if (w === ow && h === oh) return src;
  if (resample === "nearest") return nearest(src, w, h, ow, oh);
  const filter = FILTERS[resample];
  if (!filter) throw new PageError(`unknown resample ${resample}; valid: ${RESAMPLE.join(", ")}`);
  let img = src;
  if (ow !== w) img = horizontalPass(img, w, h, ow, coefficients(w, ow, filter)); // horizontal first, as Pillow
  if (oh !== h) img = verticalPass(img, ow, oh, coefficients(h, oh, filter));
  return img;
}

/** How a frame becomes the views the model scores; the frame's score is the mean over its views. */
export const SAMPLERS = {
  // The whole frame resized to the model input, aspect not kept (Preprocess resize="stretch").
  stretch: (frame, pre) => [resizeRGB(frame.data, frame.width, frame.height, pre.size[1], pre.size[0], pre.resample)],
};

/** The model's `preprocessing` metadata -> a checked description (Preprocess.from_dict). */
export function preprocessFromMetadata(meta, where = "model") {
  const p = meta.preprocessing;
  const size = Array.isArray(p.size) ? p.size.map(Number) : [Number(p.size), Number(p.size)];
  const pre = {
    size,
    resize: p.resize ?? "stretch",
    resample: p.resample ?? "bilinear",
    inputRange: (p.input_range ?? [0.0, 1.0]).map(Number),
    layout: p.layout ?? "NCHW",
  };
  if (meta.raw_input !== false) throw new PageError(`${where}: a --raw-input model (uint8 frames in) is not what this page feeds; export with --target web`);
  if (size.length !== 2 || !size.every((s) => Number.isInteger(s) && s > 0)) throw new PageError(`${where}: preprocessing size ${JSON.stringify(p.size)} is not (height, width)`);
  if (!(pre.resize in SAMPLERS)) throw new PageError(`${where}: preprocessing resize '${pre.resize}' is not supported by this page (supported: ${Object.keys(SAMPLERS).join(", ")})`);
  if (!RESAMPLE.includes(pre.resample)) throw new PageError(`${where}: unknown resample '${pre.resample}'; valid: ${RESAMPLE.join(", ")}`);
  if (pre.layout !== "NCHW") throw new PageError(`${where}: layout ${pre.layout} is not supported (NCHW)`);
  return pre;
}

/** A view -> the model's input: float32 1x3xHxW in input_range (numpy's float32 arithmetic). */
function toInput(rgb, pre) {
  const [h, w] = pre.size;
  const [lo, hi] = pre.inputRange;
  const scale = Math.fround((hi - lo) / 255.0), lo32 = Math.fround(lo);
  const hw = h * w, out = new Float32Array(3 * hw);
  for (let c = 0; c < 3; c++) {
    const plane = c * hw;
    if (lo32 === 0) for (let i = 0; i < hw; i++) out[plane + i] = rgb[i * 3 + c] * scale; // one rounding, on the store
    else for (let i = 0; i < hw; i++) out[plane + i] = Math.fround(rgb[i * 3 + c] * scale) + lo32;
  }
  return { type: "float32", data: out, dims: [1, 3, h, w] };
}

/** A frame -> the list of model inputs (one per view of the sampling mode). */
export function modelInputs(frame, pre) {
  return SAMPLERS[pre.resize](frame, pre).map((rgb) => toInput(rgb, pre));
}

/** Canvas RGBA -> RGB (the canvas was filled white before drawing, so alpha is already composited). */
export function rgbaToFrame(rgba, width, height) {
  const n = width * height, data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) { data[i * 3] = rgba[i * 4]; data[i * 3 + 1] = rgba[i * 4 + 1]; data[i * 3 + 2] = rgba[i * 4 + 2]; }
  return { data, width, height };
}

// ---------------------------------------------------------------------------------------------------
// 3. The camera gate (runtime/gate.py): cheap checks, EMA, hysteresis, min_stable agreeing frames.
// ---------------------------------------------------------------------------------------------------
export const KEEP = "keep", RETAKE = "retake", WAIT = "wait";
const f32 = Math.fround;

/** float32 luma, operation by operation as numpy computes `r*0.299 + g*0.587 + b*0.114` in float32. */
function lumaFn(coef) {
  const [a, b, c] = coef.map(f32);
  return (r, g, bl) => f32(f32(f32(r * a) + f32(g * b)) + f32(bl * c));
}

/** Fractions of pixels whose luma is crushed to black / blown to white. */
export function exposureClipping(frame, cfg) {
  const luma = lumaFn(cfg.luma), d = frame.data, n = frame.width * frame.height;
  let dark = 0, bright = 0;
  for (let i = 0; i < n; i++) {
    const y = luma(d[i * 3], d[i * 3 + 1], d[i * 3 + 2]);
    if (y <= cfg.dark) dark++;
    if (y >= cfg.bright) bright++;
  }
  return [dark / n, bright / n];
}

/** Laplacian variance of the luma on a copy box-shrunk to at most `check_side` px on the long side. */
export function sharpness(frame, cfg) {
  const luma = lumaFn(cfg.luma), { width: w, height: h, data: d } = frame;
  const step = Math.max(1, Math.ceil(Math.max(h, w) / cfg.check_side));
  const sh = Math.floor(h / step), sw = Math.floor(w / step), n = step * step;
  const y = new Float32Array(sh * sw);
  for (let r = 0; r < sh; r++) {
    for (let c = 0; c < sw; c++) {
      let s0 = 0, s1 = 0, s2 = 0;
      for (let i = 0; i < step; i++) {
        for (let j = 0; j < step; j++) {
          const p = ((r * step + i) * w + c * step + j) * 3;
          s0 += d[p]; s1 += d[p + 1]; s2 += d[p + 2];
        }
      }
      y[r * sw + c] = luma(f32(s0 / n), f32(s1 / n), f32(s2 / n));
    }
  }
  if (sh < 3 || sw < 3) return 0.0;
  const lap = new Float32Array((sh - 2) * (sw - 2));
  let k = 0, mean = 0;
  for (let r = 1; r < sh - 1; r++) {
    for (let c = 1; c < sw - 1; c++) {
      const v = f32(f32(f32(f32(y[r * sw + c - 1] + y[r * sw + c + 1]) + y[(r - 1) * sw + c]) + y[(r + 1) * sw + c]) - f32(4 * y[r * sw + c]));
      lap[k++] = v;
      mean += v;
    }
  }
  mean /= lap.length;
  let v = 0;
  for (let i = 0; i < lap.length; i++) v += (lap[i] - mean) ** 2;
  return v / lap.length;
}

/** Python's `{x:g}` for the numbers a reason shows. */
export const fmtG = (x) => String(Number(Number(x).toPrecision(6)));

export class CameraGate {
  /** cfg: threshold and the Python defaults (hysteresis, smoothing, min_stable, max_clipped, min_sharpness,
   *  dark, bright, check_side, luma) as the export wrote them into config.json. */
  constructor(cfg) {
    if (cfg.threshold === null || cfg.threshold === undefined) throw new PageError("camera gate: no threshold (the model metadata has no gate_threshold; add ?threshold=T)");
    if (!(cfg.threshold >= 0 && cfg.threshold <= 100)) throw new PageError(`camera gate: threshold ${cfg.threshold} is outside the 0-100 score scale`);
    if (!(cfg.smoothing > 0 && cfg.smoothing <= 1) || cfg.min_stable < 1 || cfg.hysteresis < 0) throw new PageError("camera gate: need 0 < smoothing <= 1, min_stable >= 1, hysteresis >= 0");
    this.cfg = { ...cfg, threshold: Number(cfg.threshold) };
    this.reset();
  }

  reset() { this.smoothed = null; this.verdict = WAIT; this.candidate = null; this.run = 0; }

  /** [check name, reason] when a frame is obviously unusable, else null. */
  cheapCheck(frame) {
    const c = this.cfg;
    if (c.max_clipped !== null) {
      const [dark, bright] = exposureClipping(frame, c);
      if (dark > c.max_clipped) return ["underexposed", `underexposed: ${(dark * 100).toFixed(0)}% of pixels crushed to black`];
      if (bright > c.max_clipped) return ["overexposed", `overexposed: ${(bright * 100).toFixed(0)}% of pixels blown to white`];
    }
    if (c.min_sharpness !== null) {
      const s = sharpness(frame, c);
      if (s < c.min_sharpness) return ["blurry", `blurry: sharpness ${s.toFixed(1)} < ${fmtG(c.min_sharpness)}`];
    }
    return null;
  }

  /** One frame's score (or a failed cheap check) -> {verdict, score, smoothed, reason, check}. */
  update(score, failed = null) {
    const c = this.cfg;
    let vote, check = null, why;
    // 1. what this frame votes for
    if (failed) {
      [check, why] = failed;
      vote = RETAKE;
    } else {
      if (!Number.isFinite(score)) throw new PageError(`camera gate: frame score ${score} is not finite`);
      const a = c.smoothing;
      this.smoothed = this.smoothed === null ? score : a * score + (1.0 - a) * this.smoothed;
      if (this.smoothed >= c.threshold + c.hysteresis) vote = KEEP;
      else if (this.smoothed < c.threshold - c.hysteresis) vote = RETAKE;
      else vote = this.verdict !== WAIT ? this.verdict : (this.smoothed >= c.threshold ? KEEP : RETAKE);
      why = `smoothed score ${this.smoothed.toFixed(1)} ${this.smoothed >= c.threshold ? ">=" : "<"} threshold ${fmtG(c.threshold)}`;
    }
    // 2. count consecutive agreeing votes; switch only after min_stable of them
    if (vote === this.candidate) this.run += 1;
    else { this.candidate = vote; this.run = 1; }
    if (vote !== this.verdict && this.run >= c.min_stable) this.verdict = vote;
    // 3. explain
    let reason = why;
    if (this.verdict === WAIT) reason = `settling: ${this.run}/${c.min_stable} stable frames (${why})`;
    else if (vote !== this.verdict) reason = `${this.verdict} held: ${this.run}/${c.min_stable} frames voting ${vote} (${why})`;
    return { verdict: this.verdict, score: failed ? null : score, smoothed: this.smoothed, reason, check };
  }
}

/** A single still photo (no stream to smooth): keep when the score reaches the threshold. */
export function judgeImage(score, threshold) {
  return score >= threshold
    ? [KEEP, `score ${score.toFixed(1)} >= threshold ${fmtG(threshold)}`]
    : [RETAKE, `score ${score.toFixed(1)} < threshold ${fmtG(threshold)}`];
}

/** Bytes -> base64 (in chunks: one String.fromCharCode call per chunk keeps the argument list short). */
export function bytesToBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
