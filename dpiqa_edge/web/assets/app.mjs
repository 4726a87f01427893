// The camera-check page: loads model.onnx with onnxruntime-web, scores camera frames through the camera
// gate and photos one line each, and exposes `window.dpiqa` for tests and integrators.
//
// URL parameters: ?image=URL (score one image, JSON into #result), ?threads=N (WASM threads; needs the
// cross-origin isolation `dpiqa-edge serve` sets up), ?ep=wasm|webgpu, ?threshold=T (override the
// model's gate_threshold, as `dpiqa-edge check --threshold`).
import * as core from "./core.mjs";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const html = document.documentElement;
const state = { ort: null, session: null, meta: null, pre: null, config: null, threshold: null, ep: null, threads: 1 };

// -- messages: every failure ends up in the page, never as a blank screen -----------------------------
function setStatus(text, kind = "info") {
  const el = $("status");
  el.textContent = text;
  el.className = kind;
  el.hidden = false;
}
function fail(err) {
  const msg = err instanceof core.PageError ? err.message : `page error: ${err && err.message ? err.message : err}`;
  setStatus(msg, "error");
  return msg;
}
window.addEventListener("error", (e) => fail(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => fail(e.reason));

async function fetchBytes(url, what) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new core.PageError(`${url}: cannot be fetched (${e.message})`);
  }
  if (!res.ok) {
    if (res.status === 403) {
      throw new core.PageError(`${url}: not readable by the server (${what}): its file permissions keep the serving user out; make the folder readable (chmod -R a+rX) on the server`);
    }
    const why = res.status === 404 ? "not found" : `HTTP ${res.status}`;
    throw new core.PageError(`${url}: ${why} (${what}). This folder is incomplete: export it again with dpiqa-edge export --target web`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

// -- 1. the model ----------------------------------------------------------------------------------
async function load() {
  state.config = JSON.parse(new TextDecoder().decode(await fetchBytes("config.json", "the page settings")));
  const cfg = state.config;
  state.ep = params.get("ep") || "wasm";
  if (!["wasm", "webgpu"].includes(state.ep)) throw new core.PageError(`?ep=${state.ep}: unknown backend; use wasm or webgpu`);
  if (state.ep === "webgpu" && !navigator.gpu) throw new core.PageError("?ep=webgpu: this browser has no WebGPU; open the page without ?ep to use WASM");
  const build = cfg.ort[state.ep];
  try {
    state.ort = await import(`./ort/${build.module}`);
  } catch (e) {
    throw new core.PageError(`ort/${build.module}: onnxruntime-web could not be loaded (${e.message}). This folder is incomplete: export it again with dpiqa-edge export --target web`);
  }
  for (const file of build.files) { // onnxruntime-web loads these lazily; name a missing one here
    const res = await fetch(`ort/${file}`, { method: "HEAD" }).catch(() => null);
    if (!res || !res.ok) throw new core.PageError(`ort/${file}: ${res && res.status === 404 ? "not found" : "cannot be fetched"} (onnxruntime-web). This folder is incomplete: export it again with dpiqa-edge export --target web`);
  }
  const ort = state.ort;
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin-isolated pages.
  // default: every core up to 4 (a 2-core machine gets 2; half the cores left 2-core machines on one thread)
  const wanted = params.has("threads") ? Number(params.get("threads")) : Math.min(4, Math.max(1, navigator.hardwareConcurrency || 1));
  if (!Number.isInteger(wanted) || wanted < 1) throw new core.PageError(`?threads=${params.get("threads")}: expected a whole number >= 1`);
  state.threads = self.crossOriginIsolated ? wanted : 1;
  ort.env.wasm.numThreads = state.threads;
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  ort.env.logLevel = "error";

  const bytes = await fetchBytes(cfg.model, "the model");
  let raw;
  try {
    raw = core.readOnnxMetadata(bytes);
  } catch (e) {
    throw new core.PageError(`${cfg.model}: not an ONNX model (${e.message})`);
  }
  state.meta = core.decodeMetadata(raw, cfg.model);
  state.pre = core.preprocessFromMetadata(state.meta, cfg.model);
  if (params.has("threshold")) {
    state.threshold = Number(params.get("threshold"));
    if (params.get("threshold") === "" || !(state.threshold >= 0 && state.threshold <= 100)) {
      throw new core.PageError(`?threshold=${params.get("threshold")}: expected a score between 0 and 100`);
    }
  } else {
    state.threshold = state.meta.gate_threshold;
    if (state.threshold === null) throw new core.PageError(`${cfg.model}: no gate_threshold in its metadata; open the page with ?threshold=T`);
  }
  try {
    state.session = await ort.InferenceSession.create(bytes, { executionProviders: [state.ep], graphOptimizationLevel: "all" });
  } catch (e) {
    throw new core.PageError(`${cfg.model}: onnxruntime-web cannot load it (${e.message})`);
  }
  const [h, w] = state.pre.size;
  $("model").textContent = `${state.meta.student} ${state.meta.precision}, ${w}x${h} input, keep at >= ${core.fmtG(state.threshold)}; ` +
    `onnxruntime-web ${cfg.onnxruntime_web} ${state.ep}, ${state.threads} thread${state.threads > 1 ? "s" : ""}` +
    (self.crossOriginIsolated ? "" : " (not cross-origin isolated: serve with dpiqa-edge serve for threads)");
}

// -- 2. pixels: files, URLs and video frames -> {data: RGB, width, height} ---------------------------
const canvas = document.createElement("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

function grab(source, width, height) {
  canvas.width = width;
  canvas.height = height;
  ctx.fillStyle = "#fff"; // alpha is composited over white, as runtime/image.py does
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0, width, height);
  return core.rgbaToFrame(ctx.getImageData(0, 0, width, height).data, width, height);
}

async function decode(blob, name) {
  if (blob.size === 0) throw new core.PageError(`${name}: empty file (0 bytes)`);
  let bmp;
  try {
    bmp = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none" });
  } catch {
    throw new core.PageError(`${name}: not an image the browser can read`);
  }
  if (bmp.width * bmp.height > state.config.max_pixels) {
    throw new core.PageError(`${name}: image too large (${bmp.width}x${bmp.height} > ${state.config.max_pixels} pixels)`);
  }
  const frame = grab(bmp, bmp.width, bmp.height);
  bmp.close();
  return frame;
}

async function toBlob(src) {
  if (src instanceof Blob) return [src, src.name || "image"];
  const url = String(src);
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new core.PageError(`${url}: cannot be fetched (${e.message})`);
  }
  if (!res.ok) throw new core.PageError(`${url}: ${res.status === 404 ? "not found" : `HTTP ${res.status}`}`);
  return [await res.blob(), url];
}

// -- 3. scoring ------------------------------------------------------------------------------------
// One run at a time: the live camera and a dropped photo share the session, which is not re-entrant.
let running = Promise.resolve();
function exclusive(fn) {
  const result = running.then(fn, fn);
  running = result.catch(() => {});
  return result;
}

async function scoreFrame(frame) {
  const t0 = performance.now();
  const inputs = core.modelInputs(frame, state.pre);
  const t1 = performance.now();
  const sum = await exclusive(async () => {
    let total = 0;
    for (const inp of inputs) {
      const out = await state.session.run({ [state.meta.input_name]: new state.ort.Tensor(inp.type, inp.data, inp.dims) }, ["score"]);
      total += out.score.data[0];
    }
    return total;
  });
  const score = sum / inputs.length;
  if (!Number.isFinite(score)) throw new core.PageError(`${state.config.model}: the model produced a non-finite score (${state.ep})`);
  return { score, preprocess_ms: t1 - t0, infer_ms: performance.now() - t1 };
}

async function scoreImage(src) {
  const [blob, name] = await toBlob(src);
  const t0 = performance.now();
  const frame = await decode(blob, name);
  const t1 = performance.now();
  const r = await scoreFrame(frame);
  const [verdict, reason] = core.judgeImage(r.score, state.threshold);
  return { image: name, width: frame.width, height: frame.height, score: r.score, verdict, reason, threshold: state.threshold,
           backend: state.ep, threads: state.threads, ms: { decode: t1 - t0, preprocess: r.preprocess_ms, infer: r.infer_ms } };
}

function addLine(text, kind) {
  const li = document.createElement("li");
  li.textContent = text;
  li.className = kind;
  $("results").appendChild(li);
}

async function scoreFiles(files) {
  if (!state.session) { // the status above already says why (still loading, or what failed)
    for (const file of files) addLine(`${file.name}: not scored: the model is not loaded`, "error");
    return;
  }
  for (const file of files) {
    try {
      const r = await scoreImage(file);
      addLine(`${r.image}: ${r.score.toFixed(1)} ${r.verdict} (${r.reason})`, r.verdict);
    } catch (e) {
      addLine(e instanceof core.PageError ? e.message : `${file.name}: ${e.message}`, "error");
    }
  }
}

// -- 4. the live camera gate ------------------------------------------------------------------------
const live = { running: false, stream: null, gate: null, log: [], captureFrames: false };

async function checkFrame(frame) {
  const failed = live.gate.cheapCheck(frame);
  if (failed) return { ...live.gate.update(null, failed), infer_ms: 0 };
  const r = await scoreFrame(frame);
  return { ...live.gate.update(r.score), infer_ms: r.infer_ms, preprocess_ms: r.preprocess_ms };
}

function showDecision(d) {
  const v = $("verdict");
  v.textContent = d.verdict === "wait" ? "…" : d.verdict.toUpperCase();
  v.className = d.verdict;
  $("live-score").textContent = (d.score === null ? d.check : `score ${d.score.toFixed(1)}`) + ` · ${d.reason}`;
}

async function onFrame() {
  if (!live.running) return;
  const video = $("video");
  try {
    if (video.videoWidth > 0) {
      const frame = grab(video, video.videoWidth, video.videoHeight);
      const d = await checkFrame(frame);
      const entry = { t: performance.now(), width: frame.width, height: frame.height, ...d };
      if (live.captureFrames) entry.frame = frame.data;
      live.log.push(entry);
      showDecision(d);
    }
  } catch (e) {
    fail(e);
    stopCamera();
    return;
  }
  schedule();
}

function schedule() {
  if (!live.running) return;
  const video = $("video");
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => onFrame());
  else setTimeout(onFrame, 33);
}

async function startCamera() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new core.PageError("camera: browsers allow the camera only on https:// pages or on localhost; open this page through HTTPS or a tunnel (README, 'On a phone'). Photos can still be scored below.");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } } });
  } catch (e) {
    const why = {
      NotAllowedError: "permission refused. Allow the camera for this site in the browser's settings, then press Start camera again",
      SecurityError: "permission refused by the browser's security settings",
      NotFoundError: "no camera found on this device",
      OverconstrainedError: "no camera matches the request",
      NotReadableError: "the camera is in use by another app or cannot be started",
      AbortError: "the camera could not be started",
    }[e.name] || `${e.name}: ${e.message}`;
    throw new core.PageError(`camera: ${why}. Photos can still be scored below.`);
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  live.stream = stream;
  stream.getVideoTracks()[0].addEventListener("ended", () => { // unplugged, revoked, taken by another app
    if (live.running) { stopCamera(); setStatus("camera: the camera stopped (disconnected, or permission withdrawn)", "error"); }
  });
  live.gate = new core.CameraGate({ ...state.config.gate, threshold: state.threshold });
  live.log = [];
  live.running = true;
  $("start").disabled = true;
  $("stop").disabled = false;
  setStatus("camera on: hold steady until the verdict settles", "info");
  schedule();
}

function stopCamera() {
  live.running = false;
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  live.stream = null;
  $("start").disabled = !state.session;
  $("stop").disabled = true;
}

// -- 5. per-frame latency, for `dpiqa-edge bench --only web` ----------------------------------------
async function bench({ width = 640, height = 480, warmup = 5, repeat = 30 } = {}) {
  // A noise frame as an ImageBitmap, captured through the canvas each time as a video frame is.
  const rgba = new Uint8ClampedArray(width * height * 4);
  let seed = 1;
  for (let i = 0; i < rgba.length; i++) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; rgba[i] = (i & 3) === 3 ? 255 : seed >> 23; }
  const bitmap = await createImageBitmap(new ImageData(rgba, width, height));
  const rows = [];
  for (let i = 0; i < warmup + repeat; i++) {
    const t0 = performance.now();
    const frame = grab(bitmap, width, height);
    const t1 = performance.now();
    const r = await scoreFrame(frame);
    if (i >= warmup) rows.push({ total_ms: performance.now() - t0, capture_ms: t1 - t0, preprocess_ms: r.preprocess_ms, infer_ms: r.infer_ms });
  }
  bitmap.close();
  return { backend: state.ep, threads: state.threads, isolated: self.crossOriginIsolated, rows };
}

// -- 6. wiring --------------------------------------------------------------------------------------
const ready = (async () => {
  await load();
  $("start").disabled = false;
  $("files").disabled = false;
  setStatus("ready: start the camera, or pick or drop photos", "ok");
  html.dataset.state = "ready";
})().catch((e) => {
  html.dataset.state = "error";
  throw new core.PageError(fail(e));
});
ready.catch(() => {}); // shown by fail() already; callers awaiting `ready` still see the rejection

window.dpiqa = {
  ready,
  core,
  get info() {
    return { meta: state.meta, preprocess: state.pre, threshold: state.threshold, backend: state.ep, threads: state.threads,
             isolated: self.crossOriginIsolated, onnxruntime_web: state.config && state.config.onnxruntime_web, gate: state.config && state.config.gate };
  },
  scoreImage: async (src) => { await ready; return scoreImage(src); },
  prepare: async (src) => {
    await ready;
    const [blob, name] = await toBlob(src);
    return core.modelInputs(await decode(blob, name), state.pre).map((x) => ({ dims: x.dims, type: x.type, data: Array.from(x.data) }));
  },
  live: {
    start: async () => { await ready; return startCamera(); },
    stop: stopCamera,
    get log() { return live.log; },
    get running() { return live.running; },
    set captureFrames(v) { live.captureFrames = Boolean(v); },
  },
  bench: async (opts) => { await ready; return bench(opts); },
};

$("start").addEventListener("click", () => startCamera().catch(fail));
$("stop").addEventListener("click", stopCamera);
$("files").addEventListener("change", (e) => scoreFiles([...e.target.files]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  scoreFiles([...e.dataTransfer.files]);
});

// ?image=URL: score one image and write the JSON result into the page (for scripts and tests).
if (params.has("image")) {
  const out = $("result");
  out.hidden = false;
  ready
    .then(() => scoreImage(params.get("image")))
    .then((r) => { out.textContent = JSON.stringify(r); html.dataset.result = "done"; })
    .catch((e) => { out.textContent = JSON.stringify({ image: params.get("image"), error: fail(e) }); html.dataset.result = "error"; });
}
