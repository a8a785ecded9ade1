// The classroom page: both models side by side, fed by the JSON API of `bench serve`.
//
// Plain JavaScript, no framework and nothing from another site, so the page works offline.
// Every piece of text from the user or a model is put in with textContent (through `el`),
// never as markup: a prompt such as <img src=x onerror=alert(1)> shows as those characters.
"use strict";

const DEBOUNCE_MS = 250;      // wait this long after the last keystroke before asking
const TRIE_DEPTH = 2;         // levels shown below the matched context
const TRIE_TOP = 5;           // children shown per trie node
const STEPS_AT_ONCE = 10;     // words added by "ten words"
// The transformer's word budget (see bench compare --budget): how many unfinished words it
// may spell out by one more BPE piece. Lower than the CLI's 1,024 so an answer comes while
// typing; the column says how much probability the list reached. The address may set it: /?budget=256
const BUDGET = new URLSearchParams(location.search).get("budget") || "64";

const state = {
  status: null,               // /api/status: which models are loaded
  asked: 0,                   // number of the latest prompt asked about; older answers are dropped
  inspection: null,           // the latest /api/inspect answer (tokens and attention weights)
  story: { ngram: null, transformer: null, steps: 0 },  // generated text, each model its own
};

// ------------------------------------------------------------------ small helpers

/** A new element with text children (as text nodes, never parsed) and a few properties. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "className") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key === "title") node.title = value;
    else if (key === "open") node.open = value;
    else node.dataset[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

/** Replace a container's children. */
function fill(container, ...children) { container.replaceChildren(...children); }

/** "1 time", "1,234 times". */
function times(n) { return `${n.toLocaleString()} time${n === 1 ? "" : "s"}`; }

function percent(p) { return p >= 0.0995 ? `${(p * 100).toFixed(0)}%` : `${(p * 100).toFixed(1)}%`; }

/** A token with its spaces and line breaks made visible: " night" -> "·night". */
function visible(token) {
  return token.replace(/ /g, "\u00b7").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
}

/** GET or POST the API; resolves to the JSON body, or throws an Error with the server's one line. */
async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data;
  try { data = await response.json(); } catch (_) { data = { error: `the server answered ${response.status}` }; }
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

function query(params) { return new URLSearchParams(params).toString(); }

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// ------------------------------------------------------------ the models' status

/** Which models loaded; a missing one is said once, at the top of the page. */
async function loadStatus() {
  try {
    state.status = await api("/api/status");
  } catch (err) {
    showPageMessage(`The server cannot be reached: ${err.message}`);
    return;
  }
  const s = state.status;
  $("ngram-model").textContent = s.ngram.description || "";
  $("transformer-model").textContent = s.transformer.description || "";
  const problems = [];
  for (const which of ["ngram", "transformer"]) {
    if (!s[which].available) {
      problems.push(`The ${which === "ngram" ? "n-gram model" : "transformer"} is unavailable: ${s[which].problem}`);
      $(`${which}-column`).classList.add("unavailable");
      $(`${which}-panel`).classList.add("unavailable");
    }
  }
  if (problems.length) showPageMessage(problems.join("\n") + "\nThe page shows what the other model can.");
  if (s.transformer.available) fillLayerHeadChoices(s.transformer.layers, s.transformer.heads);
}

function showPageMessage(text) {
  const box = $("page-message");
  box.textContent = text;
  box.hidden = false;
}

function available(which) { return state.status && state.status[which].available; }

// ------------------------------------------------------------------ asking

/** Everything the page shows about the prompt: both columns, the trie, the transformer's inside. */
async function askAll() {
  const prompt = $("prompt").value;
  const number = ++state.asked;
  resetStory();
  if (!prompt.trim()) {
    clearAll();
    return;
  }
  $("busy").hidden = false;
  $("prompt-error").textContent = "";
  const jobs = [askCompare(prompt, number)];
  if (available("transformer")) jobs.push(askInspect(prompt, number));
  await Promise.allSettled(jobs);
  if (number === state.asked) $("busy").hidden = true;
}

async function askCompare(prompt, number) {
  let answer;
  try {
    const params = { prompt, k: $("k").value, budget: BUDGET, continuation: false };  // no greedy continuation: the slowest part
    answer = await api(`/api/compare?${query(params)}`);
  } catch (err) {
    if (number === state.asked) showCompareError(err.message);
    return;
  }
  if (number !== state.asked) return;  // the user typed on: a newer answer is coming
  showColumns(answer);
  if (answer.ngram) {
    showNgramWhy(answer.ngram);
    askTrie(answer.ngram.matched_context, number);
  }
}

function showCompareError(message) {
  $("prompt-error").textContent = message;
  fill($("ngram-words"));
  fill($("transformer-words"));
}

function clearAll() {
  for (const id of ["ngram-words", "transformer-words", "trie", "pieces", "top-tokens", "lens"]) fill($(id));
  for (const id of ["ngram-share", "transformer-share", "ngram-match", "ngram-example", "ngram-notes", "prompt-error"]) $(id).textContent = "";
  clearCanvas();
}

// --------------------------------------------------------------- the two columns

/** Both next-word lists, bars on one scale so the two columns can be compared by eye. */
function showColumns(answer) {
  const n = answer.ngram, t = answer.transformer;
  const top = Math.max(1e-9, ...[n, t].filter(Boolean).flatMap((c) => c.words.map((w) => w.probability)));
  fill($("ngram-words"), ...(n ? n.words.map((w) => wordRow(w, top, w.count ? `followed the context ${times(w.count)}` : "")) : []));
  fill($("transformer-words"), ...(t ? t.words.map((w) => wordRow(w, top, "")) : []));
  $("ngram-words").dataset.prompt = $("transformer-words").dataset.prompt = answer.prompt;  // which prompt is shown
  $("ngram-share").textContent = n ? ngramShare(n) : "unavailable";
  $("transformer-share").textContent = t ? transformerShare(t) : "unavailable";
}

function wordRow(word, top, why) {
  const button = el("button", { title: why || `append “${word.word}” to the prompt` }, word.word);
  button.type = "button";
  button.addEventListener("click", () => appendWord(word.word));
  const bar = el("div", { className: "bar", style: { width: `${(100 * word.probability) / top}%` } });
  return el("li", {}, button, el("div", {}, bar), el("span", { className: "p" }, percent(word.probability)));
}

function total(words) { return words.reduce((sum, w) => sum + w.probability, 0); }

function ngramShare(n) {
  return `These ${n.words.length} words hold ${percent(total(n.words))} of its probability; ` +
    `end of sentence ${percent(n.end_of_sentence)}, an unknown word ${percent(n.unknown_word)}. ` +
    `Prediction: ${(n.seconds * 1000).toFixed(1)} ms.`;
}

function transformerShare(t) {
  return `These ${t.words.length} words hold ${percent(total(t.words))} of its probability ` +
    `(spelling words out of BPE pieces reached ${percent(t.covered)}). ` +
    `Prediction: ${(t.seconds * 1000).toFixed(1)} ms.`;
}

/** Click a word: it joins the prompt (punctuation sticks to the word before it). */
function appendWord(word) {
  const box = $("prompt");
  const text = box.value;
  const glue = /^[.,;:!?)\]’”']/.test(word) || text === "" || /\s$/.test(text) ? "" : " ";
  box.value = text + glue + word;
  box.focus();
  askAll();
}

// ------------------------------------------------------------- the n-gram's why

function showNgramWhy(n) {
  const context = n.matched_context.length ? n.matched_context.join(" ") : "(nothing: it fell back to single words)";
  fill($("ngram-match"),
    "Matched context ", el("b", {}, `“${context}”`),
    ` — a ${n.matched_order}-gram; this context occurred ${times(n.context_count)} in the books.`);
  $("ngram-example").textContent = n.example ? `“${n.example}”` : (n.no_example ? `No example sentence: ${n.no_example}` : "");
  $("ngram-notes").textContent = n.notes.join(" · ");
}

async function askTrie(context, number) {
  const params = new URLSearchParams({ depth: TRIE_DEPTH, top: TRIE_TOP });
  for (const token of context) params.append("token", token);
  let answer;
  try {
    answer = await api(`/api/trie?${params}`);
  } catch (err) {
    if (number === state.asked) fill($("trie"), el("p", { className: "error" }, err.message));
    return;
  }
  if (number === state.asked) fill($("trie"), trieNode(answer.tree, 0, true));
}

/**
 * One trie node as a foldable object: `"want": {  // 12 times` with its children inside,
 * so the whole picture reads {I: {want: {to: {be: 2, know: 1}}}}. A leaf is its bare count.
 */
function trieNode(node, level, isRoot = false) {
  const key = isRoot ? "" : JSON.stringify(node.token);
  if (!node.children.length && node.continuation === null) {
    return el("div", { className: "leaf" }, el("span", { className: "key" }, key), ": ", el("span", { className: "count" }, node.count.toLocaleString()), ",");
  }
  const about = isRoot ? `the root: ${node.count.toLocaleString()} tokens` : times(node.count) +
    (node.continuation ? `, after ${node.continuation.toLocaleString()} different word${node.continuation === 1 ? "" : "s"}` : "");
  const summary = el("summary", {}, ...(isRoot ? [] : [el("span", { className: "key" }, key), ": "]), "{  ", el("span", { className: "comment" }, `// ${about}`));
  const details = el("details", { open: true }, summary);
  for (const child of node.children) details.append(trieNode(child, level + 1));
  if (node.more) details.append(el("div", { className: "leaf comment" }, `// … and ${node.more.toLocaleString()} more`));
  details.append(el("div", {}, isRoot ? "}" : "},"));
  return details;
}

// ------------------------------------------------------- the transformer's inside

async function askInspect(prompt, number) {
  const trimmed = prompt.replace(/\s+$/, "");  // as bench compare reads it: the next word brings its own space
  if (!trimmed) return;
  let answer;
  try {
    answer = await api(`/api/inspect?${query({ prompt: trimmed, k: 5 })}`);
  } catch (err) {
    if (number === state.asked) fill($("pieces"), el("span", { className: "error" }, err.message));
    return;
  }
  if (number !== state.asked) return;
  state.inspection = answer;
  showPieces(answer.tokens);
  fill($("top-tokens"), ...answer.next.map((t) => el("li", {}, `${visible(t.token)}  ${percent(t.probability)}`)));
  showLens(answer.logit_lens);
  drawAttention();
}

function showPieces(tokens) {
  fill($("pieces"), ...tokens.map((t) => el("span", { className: "piece", title: `token id ${t.id}` }, visible(t.token))));
}

/** The logit lens: one row per layer (0 = the embeddings alone), its top guesses. */
function showLens(lens) {
  const head = el("tr", {}, el("th", {}, "after"), ...lens[0].map((_, i) => el("th", {}, `guess ${i + 1}`)));
  const rows = lens.map((guesses, layer) => el("tr", {},
    el("th", {}, layer === 0 ? "embeddings" : `layer ${layer - 1}`),
    ...guesses.map((g) => el("td", { title: `${(g.probability * 100).toFixed(2)}%` }, `${visible(g.token)} ${percent(g.probability)}`))));
  fill($("lens"), head, ...rows);
}

function fillLayerHeadChoices(layers, heads) {
  fill($("layer"), ...Array.from({ length: layers }, (_, i) => el("option", {}, String(i))));
  fill($("head"), ...Array.from({ length: heads }, (_, i) => el("option", {}, String(i))));
}

/** The chosen layer and head's weights: rows are the tokens looking, columns the tokens looked at. */
function chosenWeights() {
  const a = state.inspection && state.inspection.attention_weights;
  if (!a) return null;
  const layer = Number($("layer").value || 0), head = Number($("head").value || 0);
  return { weights: a.weights[layer][head], first: a.first_position, tokens: state.inspection.tokens };
}

function clearCanvas() {
  const canvas = $("attention");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

/** A colour from dark blue (0) through teal to yellow (1), like matplotlib's viridis. */
function colour(w) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(1, Math.max(0, w)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const mix = stops[i].map((c, j) => Math.round(c + f * (stops[i + 1][j] - c)));
  return `rgb(${mix[0]},${mix[1]},${mix[2]})`;
}

function drawAttention() {
  const chosen = chosenWeights();
  const canvas = $("attention");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!chosen) return;
  const n = chosen.weights.length, cell = canvas.width / n;
  chosen.weights.forEach((row, i) => row.forEach((w, j) => {
    if (j > i) return;  // causal: a token never looks ahead (those cells stay white)
    ctx.fillStyle = colour(w);
    ctx.fillRect(j * cell, i * cell, Math.ceil(cell), Math.ceil(cell));
  }));
  $("attention-note").textContent = chosen.first ? `the last ${n} of ${chosen.first + n} tokens` : `${n} tokens`;
}

/** Hover: the weight and the two tokens under the pointer. */
function hoverAttention(event) {
  const chosen = chosenWeights();
  if (!chosen) return;
  const canvas = $("attention"), box = canvas.getBoundingClientRect();
  const n = chosen.weights.length;
  const i = Math.floor(((event.clientY - box.top) / box.height) * n);
  const j = Math.floor(((event.clientX - box.left) / box.width) * n);
  if (i < 0 || j < 0 || i >= n || j >= n) return;
  const from = chosen.tokens[chosen.first + i].token, to = chosen.tokens[chosen.first + j].token;
  const w = j <= i ? chosen.weights[i][j] : 0;
  $("attention-hover").textContent = `“${visible(from)}” (${chosen.first + i}) looks at “${visible(to)}” (${chosen.first + j}): ${w.toFixed(3)}`;
}

// ------------------------------------------------------------------ generating

function resetStory() {
  state.story = { ngram: null, transformer: null, steps: 0 };
  $("ngram-story").textContent = "";
  $("transformer-story").textContent = "";
}

/** One more word from each model; each continues its own text, starting from the prompt. */
async function step() {
  const prompt = $("prompt").value;
  if (!prompt.trim()) return;
  const s = state.story;
  const body = {
    ngram: available("ngram") ? (s.ngram ?? prompt) : null,
    transformer: available("transformer") ? (s.transformer ?? prompt) : null,
    temperature: Number($("temperature").value),
    top_k: Number($("top-k").value),
    seed: Number($("seed").value) + s.steps,  // a new draw each step, the same story for the same seed
  };
  let answer;
  try {
    answer = await api("/api/step", body);
  } catch (err) {
    $("prompt-error").textContent = err.message;
    return false;
  }
  s.steps += 1;
  for (const which of ["ngram", "transformer"]) {
    if (!answer[which]) continue;
    s[which] = answer[which].text;
    showStory(which, prompt, answer[which].text);
  }
  return true;
}

function showStory(which, prompt, text) {
  const generated = text.startsWith(prompt) ? text.slice(prompt.length) : text;
  fill($(`${which}-story`), el("span", {}, text.slice(0, text.length - generated.length)), el("span", { className: "added" }, generated));
}

async function stepMany() {
  for (let i = 0; i < STEPS_AT_ONCE; i++) {
    if (!(await step())) return;
  }
}

// ---------------------------------------------------------------------- report

/** The report view: the latest bench report's plots and its Markdown as plain text. */
async function showReport() {
  let answer;
  try {
    answer = await api("/api/report");
  } catch (err) {
    $("report-where").textContent = err.message;
    return;
  }
  if (!answer.available) {
    $("report-where").textContent = `No report in ${answer.folder}: ${answer.hint}.`;
    return;
  }
  $("report-where").textContent = `From ${answer.folder}.`;
  fill($("report-plots"), ...answer.plots.map((name) => {
    const img = el("img", { title: name });
    img.alt = name;
    img.src = `/api/report/files/${encodeURIComponent(name)}`;
    return img;
  }));
  $("report-text").textContent = answer.markdown;
}

function route() {
  const report = location.hash === "#report" || location.pathname === "/report";
  $("compare-view").hidden = report;
  $("report-view").hidden = !report;
  if (report) showReport();
}

// ---------------------------------------------------------------------- start

async function start() {
  const askSoon = debounce(askAll, DEBOUNCE_MS);
  $("prompt").addEventListener("input", () => { state.asked++; askSoon(); });  // answers in flight are for old text
  $("k").addEventListener("change", askAll);
  $("layer").addEventListener("change", drawAttention);
  $("head").addEventListener("change", drawAttention);
  $("attention").addEventListener("mousemove", hoverAttention);
  $("step").addEventListener("click", step);
  $("step-ten").addEventListener("click", stepMany);
  $("step-reset").addEventListener("click", resetStory);
  window.addEventListener("hashchange", route);
  route();
  await loadStatus();
  if (state.status) askAll();
}

document.addEventListener("DOMContentLoaded", start);
