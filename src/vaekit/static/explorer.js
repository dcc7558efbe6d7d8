// The vaekit explorer: a page over `vaekit serve`'s own API, with nothing loaded from elsewhere.
// A run gets sliders through its latent space, samples, interpolation and a clickable latent
// map; a detector gets an upload that shows the scores' histogram and the most anomalous inputs.
// Every code decoded here is origin + values @ directions, with those given by GET space.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
let apiKey = sessionStorage.getItem("vaekit-api-key") || "";
let info = null;
let space = null;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// -- talking to the server ---------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (apiKey) headers["X-API-Key"] = apiKey;
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error || message;
    } catch (e) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

function post(body) {
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

function say(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

function fail(error) {
  say(error.message || String(error));
  if (error.status === 401) $("key-form").hidden = false;
}

// Calls fn with the newest argument only: while one call runs, later ones replace each other,
// so a dragged slider shows where it is now instead of queueing every step it passed.
function latest(fn) {
  let wanted = null;
  let running = false;
  return (arg) => {
    wanted = [arg];
    if (running) return;
    running = true;
    (async () => {
      while (wanted) {
        const [next] = wanted;
        wanted = null;
        try {
          await fn(next);
        } catch (error) {
          fail(error);
        }
      }
      running = false;
    })();
  };
}

// -- showing outputs ---------------------------------------------------------------------------
const isImage = () => info.layout !== "tabular";
// Numbers as people read them: 3 significant digits, plain unless very large or very small.
function fmt(v) {
  if (typeof v !== "number") return v === null ? "" : String(v);  // a table's text, true/false, empty cell
  const size = Math.abs(v);
  if (size < 1e-12) return "0";
  return size >= 1e5 || size < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}
const fixed = (v) => (Math.abs(v) < 0.005 ? 0 : v).toFixed(2);  // slider positions

const MAX_COLUMNS = 40;  // a wider table shows its first columns and says how many it left out

// A header row of ``names`` at the top of ``table``.
function headerRow(table, names) {
  const head = table.insertRow();
  names.forEach((name) => {
    const th = document.createElement("th");
    th.textContent = name;
    head.append(th);
  });
  return head;
}

function tableOf(rows, columns) {
  const table = document.createElement("table");
  const head = headerRow(table, (columns || rows[0].map((_, j) => `x${j}`)).slice(0, MAX_COLUMNS));
  if (rows[0].length > MAX_COLUMNS) head.insertCell().textContent = `(+${rows[0].length - MAX_COLUMNS} more)`;
  rows.forEach((row) => {
    const tr = table.insertRow();
    row.slice(0, MAX_COLUMNS).forEach((v) => { tr.insertCell().textContent = fmt(v); });
  });
  const box = document.createElement("div");
  box.className = "scroll";
  box.append(table);
  return box;
}

// The outputs of `path` (GET, or POST of `body`) in element `target`: a PNG for an image model,
// a table of rows for a table model. The element counts what it has shown (data-renders).
async function render(target, path, body) {
  const element = $(target);
  const options = body === undefined ? {} : post(body);
  if (isImage()) {
    const blob = await (await api(path + (path.includes("?") ? "&" : "?") + "format=png", options)).blob();
    const img = element.querySelector("img") || element.appendChild(document.createElement("img"));
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    await img.decode().catch(() => {});
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    const scale = Math.max(1, Math.floor(Number(element.dataset.size || 512) / img.naturalWidth));
    img.style.width = `${img.naturalWidth * scale}px`;
    img.alt = target;
  } else {
    const out = await (await api(path, options)).json();
    element.replaceChildren(tableOf(out.outputs || out.samples, info.columns));
  }
  element.dataset.renders = String(Number(element.dataset.renders || 0) + 1);
  say("");  // whatever went wrong before, this worked
}

// An image in the data's layout ((H, W) or (H, W, C), values in [0, 1]) drawn on a new canvas.
function drawArray(array) {
  const h = array.length;
  const w = array[0].length;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(w, h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const v = array[r][c];
      const rgb = Array.isArray(v) ? v : [v, v, v];
      const at = 4 * (r * w + c);
      for (let k = 0; k < 3; k++) pixels.data[at + k] = Math.round(255 * rgb[k]);
      pixels.data[at + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

// An uploaded picture as an array in the model's layout, scaled to the model's size.
async function readImage(file) {
  const [channels, h, w] = info.input_shape;
  const bitmap = await createImageBitmap(file).catch(() => {
    throw new Error(`${file.name}: not an image this browser can read`);
  });
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  const rows = [];
  for (let r = 0; r < h; r++) {
    const row = [];
    for (let c = 0; c < w; c++) {
      const at = 4 * (r * w + c);
      const rgb = [data[at] / 255, data[at + 1] / 255, data[at + 2] / 255];
      row.push(channels === 1 ? 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] : rgb);
    }
    rows.push(row);
  }
  return rows;
}

function combine(origin, directions, values) {
  const z = origin.slice();
  values.forEach((v, k) => directions[k].forEach((a, j) => { z[j] += v * a; }));
  return z;
}

function currentLabel() {
  return info.classes ? Number($("label").value) : null;
}

// -- a run ---------------------------------------------------------------------------------------
const SLIDER_HINTS = {
  dimensions: "One slider per latent dimension, from 3 standard deviations of the data's codes below their "
    + "mean to 3 above.",
  principal: "The directions in which the data's codes vary most (principal components, with their share of "
    + "the variance), 3 standard deviations either side of the mean code.",
  prior: "One slider per latent dimension (at most 16), across the prior N(0, 1) from -3 to 3.",
};

function sliderValues() {
  return [...$("sliders").querySelectorAll("input")].map((input) => Number(input.value));
}

const showSliders = latest(() => render("decoded", "decode", {
  codes: [combine(space.sliders.origin, space.sliders.directions, sliderValues())], label: currentLabel(),
}));

function buildSliders() {
  const s = space.sliders;
  if (!s) {
    $("sliders-section").hidden = true;
    return;
  }
  $("sliders-hint").textContent = SLIDER_HINTS[s.basis];
  const box = $("sliders");
  box.replaceChildren();
  s.names.forEach((name, k) => {
    const label = document.createElement("label");
    label.className = "slider";
    const title = document.createElement("span");
    title.textContent = name;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: s.low[k], max: s.high[k], step: (s.high[k] - s.low[k]) / 200 });
    input.value = s.start[k];
    input.setAttribute("aria-label", name);
    const out = document.createElement("output");
    out.textContent = fixed(Number(input.value));
    input.addEventListener("input", () => {
      out.textContent = fixed(Number(input.value));
      showSliders();
    });
    label.append(title, input, out);
    box.append(label);
  });
  $("reset").onclick = () => {
    box.querySelectorAll("input").forEach((input, k) => {
      input.value = s.start[k];
      input.nextElementSibling.textContent = fixed(Number(input.value));
    });
    showSliders();
  };
  showSliders();
}

let seed = 0;
const showSamples = latest(() => {
  const label = info.classes ? `&label=${currentLabel()}` : "";
  const prior = `&prior=${encodeURIComponent($("prior").value)}`;
  return render("samples",
    `sample?n=${isImage() ? 32 : 8}&seed=${seed}&temperature=${$("temperature").value}${label}${prior}`);
});

function buildSamples() {
  if (!info.prior) {
    $("samples-hint").textContent = "This autoencoder has no prior to draw from: train it again (vaekit fits one " +
      "to its codes), or train a VAE.";
    $("samples-section").querySelector(".controls").hidden = true;
    return;
  }
  for (const name of info.priors) $("prior").add(new Option(name, name, false, name === info.prior));
  $("prior").addEventListener("change", showSamples);
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
    showSamples();
  });
  $("resample").onclick = () => {
    seed += 1;
    showSamples();
  };
  showSamples();
}

const pair = { inputs: [], labels: [] };
const showPath = latest(async () => {
  const count = steps();
  if (count === null) return;
  await render("interpolation", "interpolate", {
    inputs: pair.inputs, steps: count, method: $("method").value,
    labels: info.classes ? pair.labels.map((y) => (y === null ? currentLabel() : y)) : null,
  });
});

function pick(button, input, label) {
  const buttons = [...$("examples").querySelectorAll("button")];
  if (pair.inputs.length === 2) {  // a third pick starts a new pair
    pair.inputs = [];
    pair.labels = [];
    buttons.forEach((b) => { b.classList.remove("picked"); delete b.dataset.end; });
  }
  pair.inputs.push(input);
  pair.labels.push(label);
  button.classList.add("picked");
  button.dataset.end = pair.inputs.length === 1 ? "A" : "B";
  if (pair.inputs.length === 2) showPath();
}

function buildInterpolation() {
  const examples = space.examples;
  if (!isImage()) {
    if (!examples) {  // nothing to pick, and a table cannot be uploaded here
      $("interpolation-section").hidden = true;
      return;
    }
    $("interpolation-hint").textContent = "Pick two rows of the data (first A, then B): the rows between them are "
      + "decoded from the path between their codes.";
  } else if (!examples) {
    $("interpolation-hint").textContent = "Upload two images: the pictures between them are decoded from the "
      + "path between their codes (an image of another size is scaled to the model's).";
  }
  if (examples) {
    examples.inputs.forEach((input, i) => {
      const button = document.createElement("button");
      button.type = "button";
      const label = examples.labels ? examples.labels[i] : null;
      button.title = `example ${i}` + (label === null ? "" : `, label ${className(label)}`);
      if (isImage()) button.append(drawArray(input));
      else button.textContent = `row ${i}`;
      button.onclick = () => pick(button, input, label);
      $("examples").append(button);
    });
  }
  if (!isImage()) $("upload-pair").hidden = true;
  $("pair-files").addEventListener("change", async (event) => {
    const files = [...event.target.files];
    if (files.length !== 2) {
      say(`choose exactly two images to interpolate between (${files.length} chosen)`);
      return;
    }
    try {
      pair.inputs = await Promise.all(files.map(readImage));
      pair.labels = [null, null];
      $("examples").querySelectorAll("button").forEach((b) => { b.classList.remove("picked"); delete b.dataset.end; });
      showPath();
    } catch (error) {
      fail(error);
    } finally {
      event.target.value = "";  // the same files chosen again are read again
    }
  });
  $("steps").addEventListener("change", () => pair.inputs.length === 2 && showPath());
  $("method").addEventListener("change", () => pair.inputs.length === 2 && showPath());
}

// The number of points on the path, as typed; null (and said) if it is not one.
function steps() {
  const value = Number($("steps").value);
  if (!Number.isInteger(value) || value < 2 || value > 32) {
    say(`steps must be a whole number from 2 to 32, not ${$("steps").value || "nothing"}`);
    return null;
  }
  return value;
}

const MAP_PAD = 16;

function mapFrame(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const frame = { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
  if (frame.x1 === frame.x0) { frame.x0 -= 1; frame.x1 += 1; }
  if (frame.y1 === frame.y0) { frame.y0 -= 1; frame.y1 += 1; }
  return frame;
}

// A label of the data shown as the data names it (an image folder's subfolder, a CSV's label
// text), else its number; a class of the model as its training data named it.
function className(c) {
  return space.class_names?.[c] ?? String(c);
}

function modelClassName(c) {
  return space.model_classes?.[c] ?? String(c);
}

// The map's classes in order, and the colour of each (one colour for unlabelled data).
function mapClasses(map) {
  const classes = map.labels ? [...new Set(map.labels)].sort((a, b) => a - b) : [];
  const colour = new Map(classes.map((c, k) => [c, PALETTE[k % PALETTE.length]]));
  return { classes, colour: (i) => (map.labels ? colour.get(map.labels[i]) : PALETTE[0]) };
}

function drawMap(marker) {
  const map = space.map;
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  const f = mapFrame(map.points);
  const sx = (x) => MAP_PAD + (x - f.x0) / (f.x1 - f.x0) * (canvas.width - 2 * MAP_PAD);
  const sy = (y) => canvas.height - MAP_PAD - (y - f.y0) / (f.y1 - f.y0) * (canvas.height - 2 * MAP_PAD);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const { colour } = mapClasses(map);
  map.points.forEach((p, i) => {
    ctx.fillStyle = colour(i);
    ctx.globalAlpha = 0.65;
    ctx.beginPath();
    ctx.arc(sx(p[0]), sy(p[1]), 2.2, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  if (marker) {
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 2;
    const [mx, my] = [sx(marker[0]), sy(marker[1])];
    ctx.beginPath();
    ctx.moveTo(mx - 8, my); ctx.lineTo(mx + 8, my); ctx.moveTo(mx, my - 8); ctx.lineTo(mx, my + 8);
    ctx.stroke();
  }
  return (px, py) => [  // canvas pixels back to map coordinates
    f.x0 + (px - MAP_PAD) / (canvas.width - 2 * MAP_PAD) * (f.x1 - f.x0),
    f.y0 + (canvas.height - MAP_PAD - py) / (canvas.height - 2 * MAP_PAD) * (f.y1 - f.y0),
  ];
}

let mapCode = null;  // the code last clicked on the map
const showMapPoint = latest((code) => render("map-decoded", "decode", { codes: [code], label: currentLabel() }));

function buildMap() {
  const map = space.map;
  if (!map) {
    $("map-hint").textContent = space.note;
    $("map").hidden = true;
    $("map-decoded").hidden = true;
    return;
  }
  $("map-hint").textContent = `The codes of ${map.points.length} samples of ${space.data}`
    + (map.names[0] === "PC1" ? ", on their first two principal components" : "")
    + ". Click anywhere to decode the code at that point.";
  const toData = drawMap();
  const { classes } = mapClasses(map);
  $("legend").replaceChildren(...classes.map((c, k) => {
    const span = document.createElement("span");
    span.style.setProperty("--swatch", PALETTE[k % PALETTE.length]);
    span.textContent = className(c);
    return span;
  }));
  $("map").addEventListener("click", (event) => {
    const canvas = $("map");
    const box = canvas.getBoundingClientRect();
    const px = (event.clientX - box.left) * canvas.width / box.width;
    const py = (event.clientY - box.top) * canvas.height / box.height;
    const point = toData(px, py);
    drawMap(point);
    const code = combine(map.origin, map.axes, point);
    const where = map.names[1] ? `${map.names[0]} ${fmt(point[0])}, ${map.names[1]} ${fmt(point[1])}`
      : `${map.names[0]} ${fmt(point[0])}`;
    $("map-code").textContent = `${where}: code (${code.map(fmt).join(", ")})`;
    mapCode = code;
    showMapPoint(code);
  });
}

async function startRun() {
  $("run-view").hidden = false;
  try {
    space = await (await api("space")).json();
  } catch (error) {  // the rest of the page still works: samples, uploads
    space = { sliders: null, map: null, examples: null, note: error.message };
  }
  if (info.classes) {
    $("label-control").hidden = false;
    for (let c = 0; c < info.classes; c++) $("label").add(new Option(modelClassName(c), String(c)));
    $("label").addEventListener("change", () => {  // everything decoded is redrawn for the class chosen
      if (space.sliders) showSliders();
      if (info.prior) showSamples();
      if (mapCode) showMapPoint(mapCode);
      if (pair.inputs.length === 2) showPath();
    });
  }
  buildSliders();
  buildSamples();
  buildInterpolation();
  buildMap();
}

// -- a detector ----------------------------------------------------------------------------------
const OFF_SCALE = 1e300;  // a score that overflowed comes as the largest number: counted, not drawn

function drawHistogram(all, threshold) {
  const scores = all.filter((s) => s < OFF_SCALE);
  const off = all.length - scores.length;
  if (!scores.length) scores.push(threshold);
  const canvas = $("histogram");
  canvas.hidden = false;
  const ctx = canvas.getContext("2d");
  const [w, h, pad] = [canvas.width, canvas.height, 28];
  const lo = Math.min(...scores, threshold);
  const hi = Math.max(...scores, threshold);
  const span = hi - lo || 1;
  const bins = new Array(40).fill(0);
  scores.forEach((s) => { bins[Math.min(39, Math.floor((s - lo) / span * 40))] += 1; });
  const top = Math.max(...bins);
  const sx = (v) => pad + (v - lo) / span * (w - 2 * pad);
  ctx.clearRect(0, 0, w, h);
  bins.forEach((count, b) => {
    const x0 = sx(lo + b * span / 40);
    const x1 = sx(lo + (b + 1) * span / 40);
    ctx.fillStyle = lo + (b + 0.5) * span / 40 > threshold ? "#c2410c" : "#2563eb";
    const bar = count / top * (h - 2 * pad);
    ctx.fillRect(x0 + 1, h - pad - bar, Math.max(1, x1 - x0 - 2), bar);
  });
  ctx.strokeStyle = "#111";
  ctx.setLineDash([5, 4]);
  ctx.beginPath();
  ctx.moveTo(sx(threshold), pad / 2);
  ctx.lineTo(sx(threshold), h - pad);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "#111";
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(`threshold ${fmt(threshold)}`, Math.min(sx(threshold) + 4, w - 110), pad);
  ctx.fillText(fmt(lo), pad, h - 8);
  ctx.fillText(fmt(hi), w - pad - 40, h - 8);
  if (off) ctx.fillText(`+ ${off} off the scale (scores beyond any number)`, w - 320, pad);
}

// An uploaded CSV as rows of text cells (RFC 4180: quoted fields may hold commas, quotes and
// line breaks), to show the most anomalous rows as the file has them; the server parses the
// file it scores.
async function csvRows(file) {
  const text = (await file.text()).replace(/^\uFEFF/, "");
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(cell); cell = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      if (row.some((v) => v.trim() !== "")) rows.push(row);
      row = [];
      cell = "";
    } else cell += ch;
  }
  row.push(cell);
  if (row.some((v) => v.trim() !== "")) rows.push(row);
  return { header: rows[0] || [], rows: rows.slice(1) };
}

let thumbnails = [];  // object URLs of the shown uploads, let go when others replace them
let upload = 0;       // the newest upload: an answer to an older one is not shown

function clearScores(text) {
  $("score-summary").textContent = text;
  $("histogram").hidden = true;
  $("top-title").hidden = true;
  $("top").replaceChildren();
  thumbnails.forEach((url) => URL.revokeObjectURL(url));
  thumbnails = [];
}

async function scoreFiles(files) {
  const mine = ++upload;
  const what = files.length === 1 ? files[0].name : `${files.length} files`;
  clearScores(`scoring ${what}…`);
  const form = new FormData();
  files.forEach((file) => form.append("file", file, file.name));
  let result;
  try {
    result = await (await api("score", { method: "POST", body: form })).json();
  } catch (error) {
    if (mine !== upload) return;  // a newer upload is what the page shows now
    clearScores("");
    throw error;
  }
  const isTable = info.layout === "tabular";
  const csv = isTable ? await csvRows(files[0]) : null;
  if (mine !== upload) return;  // another upload came meanwhile
  say("");
  const { scores, labels, threshold } = result;
  const flagged = labels.filter((v) => v === 1).length;
  $("score-summary").textContent = `${what}: ${scores.length} inputs scored; ${flagged} above the threshold `
    + `${fmt(threshold)} (flagged as anomalies).`;
  drawHistogram(scores, threshold);
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]).slice(0, 10);
  const table = $("top");
  // the file's rows, one per score: below a header, or without one (then named as the server names them)
  if (isTable && csv.rows.length === scores.length - 1) {
    csv.rows.unshift(csv.header);
    csv.header = csv.header.map((_, j) => `x${j}`);
  }
  const values = isTable && csv.rows.length === scores.length;
  const names = ["rank", isTable ? "row" : "file", "score", "flagged"];
  if (values) names.push(...csv.header.slice(0, MAX_COLUMNS));
  if (!isTable) names.push("image");
  headerRow(table, names);
  order.forEach((i, rank) => {
    const tr = table.insertRow();
    tr.className = labels[i] ? "flagged" : "";
    tr.dataset.index = String(i);
    [String(rank + 1), isTable ? String(i) : files[i].name, fmt(scores[i]), labels[i] ? "yes" : "no"]
      .forEach((text) => { tr.insertCell().textContent = text; });
    if (values) csv.rows[i].slice(0, MAX_COLUMNS).forEach((v) => { tr.insertCell().textContent = v; });
    if (!isTable) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(files[i]);
      thumbnails.push(img.src);
      img.alt = files[i].name;
      tr.insertCell().append(img);
    }
  });
  $("top-title").hidden = false;
}

function startDetector() {
  $("detector-view").hidden = false;
  const wanted = info.layout === "tabular"
    ? `a CSV table with the ${info.input_shape[0]} columns it was fitted on`
      + (info.columns ? ` (${info.columns.join(", ")})` : "")
    : `PNG images of ${info.input_shape[2]}x${info.input_shape[1]} pixels`;
  $("detector-hint").textContent = `Upload ${wanted}. Scores above the threshold ${fmt(info.threshold)} are `
    + "flagged as anomalies.";
  $("score-files").accept = info.layout === "tabular" ? ".csv,text/csv" : "image/*";
  $("score-files").addEventListener("change", async (event) => {
    const files = [...event.target.files];
    event.target.value = "";  // the same file chosen again is scored again
    if (!files.length) return;
    try {
      await scoreFiles(files);
    } catch (error) {
      fail(error);
    }
  });
}

// -- start -----------------------------------------------------------------------------------------
let starting = false;

async function start() {
  if (starting) return;  // once (a double click on the key form's button)
  starting = true;
  try {
    info = await (await api("info")).json();
  } catch (error) {
    $("summary").textContent = "";
    fail(error);
    starting = false;
    document.body.dataset.ready = "true";  // ready to be told the key, if that was it
    return;
  }
  say("");
  $("key-form").hidden = true;
  const name = info.folder.split("/").pop();
  const article = /^[aeiou]/.test(info.model) ? "an" : "a";
  document.title = `vaekit explorer: ${name}`;
  $("summary").textContent = info.kind === "detector"
    ? `${name}: an anomaly detector (${info.model}, score ${info.anomaly_score})`
    : `${name}: ${article} ${info.model} with a ${info.latent_dim}-dimensional code, for ${info.layout === "tabular"
      ? `tables of ${info.input_shape[0]} columns` : `${info.input_shape[2]}x${info.input_shape[1]} images`}`;
  try {
    if (info.kind === "detector") startDetector();
    else await startRun();
  } catch (error) {
    fail(error);
  }
  document.body.dataset.ready = "true";
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("key").value;
  sessionStorage.setItem("vaekit-api-key", apiKey);
  start();
});
start();
