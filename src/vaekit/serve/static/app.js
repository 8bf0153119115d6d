// vaekit's page: a thin client of the JSON API (see vaekit/serve/app.py). No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const PAD_RANGE = 3; // the pad spans -3..3 standard deviations along each principal axis
const state = { runs: [], run: null, point: [0, 0], drawn: null, busy: false, pending: null };

function say(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

function image(src, caption) {
  const img = document.createElement("img");
  img.src = src;
  if (!caption) return img;
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}

function common(run) {
  const body = { run: run.id };
  if (run.conditional) body.label = Number($("label").value || 0);
  if (run.groups > 1) body.lower_temperature = Number($("lower-t").value || 0);
  return body;
}

function targets() {
  return $("compare").checked ? state.runs : [state.run];
}

// ---------------------------------------------------------------- the pad

function toPad(canvas, u, v) {
  return [(u / PAD_RANGE + 1) / 2 * canvas.width, (1 - (v / PAD_RANGE + 1) / 2) * canvas.height];
}

function drawPad() {
  const canvas = $("pad");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#ddd";
  ctx.beginPath();
  ctx.moveTo(canvas.width / 2, 0); ctx.lineTo(canvas.width / 2, canvas.height);
  ctx.moveTo(0, canvas.height / 2); ctx.lineTo(canvas.width, canvas.height / 2);
  ctx.stroke();
  for (const [u, v, label] of state.run.codes) {
    const [x, y] = toPad(canvas, u, v);
    ctx.fillStyle = COLOURS[label % COLOURS.length];
    ctx.globalAlpha = 0.55;
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  ctx.globalAlpha = 1;
  const marks = [[state.point, "#000", 6]];
  if (state.drawn) marks.push([state.drawn, "#e00", 8]);
  for (const [[u, v], colour, size] of marks) {
    const [x, y] = toPad(canvas, u, v);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x - size, y); ctx.lineTo(x + size, y); ctx.moveTo(x, y - size); ctx.lineTo(x, y + size);
    ctx.stroke();
  }
  ctx.lineWidth = 1;
}

function sliderValues() {
  return Array.from(document.querySelectorAll("#sliders input")).map((s) => Number(s.value));
}

async function decodePoint() {
  if (state.busy) { state.pending = true; return; } // one request in flight; the latest point wins
  state.busy = true;
  try {
    const wrap = $("decoded-wrap");
    const results = await Promise.all(targets().map((run) =>
      api("/api/decode", { ...common(run), point: state.point, sliders: sliderValues() })
        .then((r) => [run, r.image])));
    if (results.length === 1) {
      $("decoded").src = results[0][1];
      wrap.querySelectorAll("figure").forEach((f) => f.remove());
      $("decoded").hidden = false;
    } else {
      $("decoded").hidden = true;
      wrap.querySelectorAll("figure").forEach((f) => f.remove());
      for (const [run, src] of results) wrap.append(image(src, run.name));
    }
    $("pad-coords").textContent = `u ${state.point[0].toFixed(2)}, v ${state.point[1].toFixed(2)} (standard deviations)`;
    say("");
  } catch (e) { say(e.message); }
  state.busy = false;
  if (state.pending) { state.pending = false; decodePoint(); }
}

function padEvent(event) {
  const canvas = $("pad");
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) / rect.width;
  const y = (event.clientY - rect.top) / rect.height;
  state.point = [(x * 2 - 1) * PAD_RANGE, (1 - y * 2) * PAD_RANGE];
  drawPad();
  decodePoint();
}

// ---------------------------------------------------------------- drawing

function setupDrawing() {
  const canvas = $("draw");
  const ctx = canvas.getContext("2d");
  let down = false;
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  const at = (e) => {
    const rect = canvas.getBoundingClientRect();
    return [(e.clientX - rect.left) * canvas.width / rect.width, (e.clientY - rect.top) * canvas.height / rect.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    down = true;
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...at(e));
  });
  canvas.addEventListener("pointermove", (e) => { if (down) { ctx.lineTo(...at(e)); ctx.stroke(); } });
  const finish = () => { if (down) { down = false; encodeDrawing(); } };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointerleave", finish);
  $("clear").addEventListener("click", () => {
    clear(); state.drawn = null; $("reconstruction-wrap").replaceChildren(); $("draw-info").textContent = ""; drawPad();
  });
}

function drawingPixels(height, width) {
  // average the canvas down to the run's image size: intensities in 0..1, row by row
  const canvas = $("draw");
  const small = document.createElement("canvas");
  small.width = width; small.height = height;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(canvas, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  const pixels = [];
  for (let i = 0; i < data.length; i += 4) pixels.push(Math.round(data[i] / 255 * 1000) / 1000);
  return pixels;
}

async function encodeDrawing() {
  const wrap = $("reconstruction-wrap");
  try {
    const results = await Promise.all(targets().map((run) => {
      const [, h, w] = run.shape;
      return api("/api/encode", { ...common(run), pixels: drawingPixels(h, w) }).then((r) => [run, r]);
    }));
    wrap.replaceChildren(...results.map(([run, r]) => image(r.reconstruction, results.length > 1 ? run.name : "reconstruction")));
    const [, first] = results.find(([run]) => run.id === state.run.id) || results[0];
    state.drawn = first.point;
    const read = first.classifier ? `; the classifier reads ${first.classifier.label} ` +
      `(${(first.classifier.probability * 100).toFixed(0)}%)` : "";
    $("draw-info").textContent = `code at u ${first.point[0].toFixed(2)}, v ${first.point[1].toFixed(2)}; ` +
      `posterior spread ${first.spread.toFixed(3)}${read}`;
    drawPad();
    say("");
  } catch (e) { say(e.message); }
}

// ---------------------------------------------------------------- samples, interpolation

async function sample() {
  try {
    const r = await api("/api/sample", { ...common(state.run), n: Number($("sample-n").value),
      temperature: Number($("sample-t").value), seed: Number($("sample-seed").value) });
    $("samples").replaceChildren(...r.images.map((src) => image(src)));
    say("");
  } catch (e) { say(e.message); }
}

async function interpolate() {
  try {
    const r = await api("/api/interpolate", { ...common(state.run), steps: Number($("interp-steps").value),
      source: $("interp-source").value, seed: Number($("sample-seed").value) });
    $("strip").replaceChildren(...r.images.map((src) => image(src)));
    say("");
  } catch (e) { say(e.message); }
}

// ---------------------------------------------------------------- poems

function showPoems(target, poems, punctuated = false) {
  $(target).replaceChildren(...poems.map((lines) => {
    const div = document.createElement("div");
    div.className = "poem";
    div.innerHTML = "";
    lines.forEach((line, i) => {
      const p = document.createElement("div");
      p.textContent = punctuated ? line : line + (i % 2 === 0 ? "，" : "。");
      div.append(p);
    });
    return div;
  }));
}

async function writePoems() {
  try {
    const r = await api("/api/poem", { form: $("poem-form").value, n: Number($("poem-n").value),
      seed: Number($("poem-seed").value), temperature: Number($("poem-t").value), acrostic: $("poem-acrostic").value,
      first_line: $("poem-first").value, keywords: $("poem-keywords").value, rhyme: $("poem-rhyme").value,
      theme: $("poem-theme").value || null, simplified: $("poem-simplified").checked,
      ...($("poem-form").value === "ci" ? { tune: $("poem-tune").value } : {}) });
    showPoems("poems", r.poems, r.punctuated);
    say("");
  } catch (e) { say(e.message); }
}

// two famous poems of each form: the interpolation's ends when none are typed (a path needs the form's length)
const POEM_ENDS = {
  couplet: ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"],
  quatrain: ["床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。", "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"],
  quatrain7: ["朝辭白帝彩雲間，千里江陵一日還。兩岸猿聲啼不住，輕舟已過萬重山。",
    "月落烏啼霜滿天，江楓漁火對愁眠。姑蘇城外寒山寺，夜半鐘聲到客船。"],
  regulated: ["國破山河在，城春草木深。感時花濺淚，恨別鳥驚心。烽火連三月，家書抵萬金。白頭搔更短，渾欲不勝簪。",
    "空山新雨後，天氣晚來秋。明月松間照，清泉石上流。竹喧歸浣女，蓮動下漁舟。隨意春芳歇，王孫自可留。"],
  regulated7: ["風急天高猿嘯哀，渚清沙白鳥飛迴。無邊落木蕭蕭下，不盡長江滾滾來。萬里悲秋常作客，百年多病獨登臺。艱難苦恨繁霜鬢，潦倒新停濁酒杯。",
    "劍外忽傳收薊北，初聞涕淚滿衣裳。卻看妻子愁何在，漫卷詩書喜欲狂。白日放歌須縱酒，青春作伴好還鄉。即從巴蜀辭天府，便下襄陽向洛陽。"],
};

function showPoemEnds() {
  const ends = POEM_ENDS[$("poem-form").value];
  if (ends) [$("poem-a").placeholder, $("poem-b").placeholder] = ends;
}

async function interpolatePoems() {
  try {
    const r = await api("/api/poem/interpolate", { form: $("poem-form").value,
      a: $("poem-a").value || $("poem-a").placeholder, b: $("poem-b").value || $("poem-b").placeholder,
      simplified: $("poem-simplified").checked });
    showPoems("poem-path", r.poems);
    const pct = (x) => `${Math.round(100 * x)}%`;
    $("poem-kept").textContent = `the path starts at the first poem told back (${pct(r.kept[0])} of its characters `
      + `in place) and ends at the second told back (${pct(r.kept[1])})`;
    say("");
  } catch (e) { say(e.message); }
}

// ---------------------------------------------------------------- set-up

function chooseRun(id) {
  state.run = state.runs.find((r) => r.id === id);
  const run = state.run;
  const shape = run.groups > 1 ? `${run.groups} latent groups` : run.arch;  // a hierarchy has no flat arch
  $("run-info").textContent = `${run.model} · ${shape} · ${run.dataset} · latent ${run.latent_dim}`;
  $("label-wrap").hidden = !run.conditional;
  $("label").replaceChildren(...run.classes.map((name, i) => new Option(name, i)));
  $("legend").replaceChildren(...run.classes.map((name, i) => {
    const span = document.createElement("span");
    span.innerHTML = `<i style="background:${COLOURS[i % COLOURS.length]}"></i>`;
    span.append(name);
    return span;
  }));
  $("sliders").replaceChildren(...Array.from({ length: run.sliders }, (_, i) => {
    const label = document.createElement("label");
    label.textContent = `direction ${i + 3} `;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -3, max: 3, step: 0.1, value: 0 });
    input.addEventListener("input", decodePoint);
    label.append(input);
    return label;
  }));
  for (const id of ["draw-section"]) $(id).hidden = !run.has_encoder;
  $("lower-t-label").hidden = !(run.groups > 1);
  state.drawn = null;
  drawPad();
  decodePoint();
}

async function start() {
  setupDrawing();
  const pad = $("pad");
  pad.addEventListener("pointermove", padEvent);
  pad.addEventListener("pointerdown", padEvent);
  $("sample").addEventListener("click", sample);
  $("interpolate").addEventListener("click", interpolate);
  $("poem-write").addEventListener("click", writePoems);
  $("poem-interpolate").addEventListener("click", interpolatePoems);
  $("run").addEventListener("change", (e) => chooseRun(e.target.value));
  $("label").addEventListener("change", decodePoint);
  $("lower-t").addEventListener("change", decodePoint);
  $("compare").addEventListener("change", decodePoint);
  try {
    const [{ runs }, { forms, themed, themes, tunes, sampling }] = await Promise.all([api("/api/runs"),
      api("/api/poems")]);
    $("poem-t").value = sampling.temperature;  // the library's default, the one the command line uses
    $("poem-theme").append(...themes.map((t) => new Option(t, t)));
    $("poem-tune").replaceChildren(...tunes.map((t) => new Option(t, t)));
    const verseOnly = ["poem-acrostic", "poem-first", "poem-keywords", "poem-rhyme"];
    const showTunes = () => { const ci = $("poem-form").value === "ci";
      $("poem-tune-label").hidden = !ci;
      for (const id of verseOnly) { $(id).parentElement.hidden = ci; if (ci) $(id).value = ""; }
      $("poem-interpolate-row").hidden = ci; };
    $("poem-form").addEventListener("change", showTunes);
    const showThemes = () => { $("poem-theme-label").hidden = !themed.includes($("poem-form").value);
      if ($("poem-theme-label").hidden) $("poem-theme").value = ""; };
    $("poem-form").addEventListener("change", showThemes);
    $("poem-form").addEventListener("change", showPoemEnds);
    state.runs = runs;
    $("poem-form").replaceChildren(...forms.map((f) => new Option(f, f)));
    if (forms.includes("quatrain")) $("poem-form").value = "quatrain";
    showThemes();
    showTunes();
    showPoemEnds();
    $("poem-section").hidden = forms.length === 0;
    for (const id of ["run-wrap", "explorer-section", "draw-section", "sample-section"]) $(id).hidden = runs.length === 0;
    if (runs.length) {
      $("run").replaceChildren(...runs.map((r) => new Option(r.name, r.id)));
      $("compare-wrap").hidden = runs.length < 2;
      chooseRun(runs[0].id);
    }
    document.body.dataset.ready = "true";
  } catch (e) { say(e.message); }
}

start();
