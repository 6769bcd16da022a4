// Builds the DOM for answers: answer text with [n] badges, sources with kept, pruned and
// over-budget sentences, compression and timings. Document text is untrusted: it only ever goes
// in as textContent.

/** el("a", {href: "#x", class: "c"}, "text", child) — attributes set one by one, text as text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = (x, digits = 2) => (typeof x === "number" ? x.toFixed(digits) : "–");

const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g; // [1] or [1, 2]
const numbers = (list) => list.split(",").map((s) => Number(s.trim()));

/** A `code` span's text split into text and code parts (a run of n backticks is closed by
 * the next run of exactly n, as in Markdown; an unclosed run is plain text). */
function codeSpans(text) {
  const runs = [...text.matchAll(/`+/g)];
  const parts = [];
  let last = 0;
  for (let i = 0; i < runs.length; i++) {
    const open = runs[i];
    const j = runs.findIndex((r, k) => k > i && r[0].length === open[0].length);
    if (j < 0) continue;
    parts.push({ text: text.slice(last, open.index) },
      { code: text.slice(open.index + open[0].length, runs[j].index) });
    last = runs[j].index + runs[j][0].length;
    i = j;
  }
  parts.push({ text: text.slice(last) });
  return parts;
}

/**
 * Answer text as prose: a single line break (a hard-wrapped source) reads as a space, a blank
 * line starts a paragraph, `code` is <code>, and each [n] (or [1, 2]) marker is a link to
 * source n of this answer. A citation marker that fell inside a code span (" [n]" with known
 * n) is taken out of it and placed right after the span.
 */
export function renderAnswerText(target, text, idPrefix, known) {
  const badges = (list) => numbers(list).map((n) => el("a", {
    class: known.has(n) ? "cite" : "cite unknown", href: `#${idPrefix}-${n}`, title: `source ${n}`,
  }, String(n)));
  const prose = (part) => {
    const nodes = [];
    let last = 0;
    for (const match of part.matchAll(MARKER)) {
      nodes.push(part.slice(last, match.index), ...badges(match[1]));
      last = match.index + match[0].length;
    }
    nodes.push(part.slice(last));
    return nodes;
  };
  const code = (part) => {
    const moved = [];
    const kept = part.replace(/\s+\[(\d+(?:\s*,\s*\d+)*)\]/g, (marker, list) => {
      if (!numbers(list).every((n) => known.has(n))) return marker; // e.g. `a [0]`: code
      moved.push(...badges(list));
      return "";
    });
    return [el("code", {}, kept), ...moved];
  };
  const paragraphs = text.split(/\n[ \t]*\n\s*/)
    .map((p) => p.replace(/\s+/g, " ").trim()).filter(Boolean);
  target.replaceChildren(...paragraphs.map((p) => el("p", {},
    codeSpans(p).flatMap((part) => ("code" in part ? code(part.code) : prose(part.text))))));
}

/** "vector #1 · lexical #3": which retrievers found the passage, at what rank. */
function retrieverList(retrievers) {
  return Object.entries(retrievers || {}).map(([name, hit]) =>
    el("span", { class: "chip", title: `${name} score ${fmt(hit.score, 3)}` },
      `${name} #${hit.rank}`));
}

const FATE = { // what happened to a sentence: its class, and its tooltip
  kept: "kept: sent to the LLM",
  pruned: "pruned: dropped by the pruner",
  "over-budget": "over budget: kept by the pruner, left out by the token budget",
};

/** Every sentence of the passage: kept ones highlighted, pruned ones greyed out, ones the
 * token budget cut (the pruner kept them) struck through, in another colour. */
function passage(citation) {
  const sentences = citation.source && citation.source.length
    ? citation.source
    : (citation.sentences || []).map((s) => ({ ...s, kept: true }));
  const p = el("p", { class: "passage" });
  // the sentence that best answers the question (server-side answer score), marked apart
  const best = Math.max(0, ...sentences.map((s) => s.answer_score || 0));
  sentences.forEach((s, i) => {
    if (i) p.append(" ");
    const fate = s.kept ? "kept" : s.dropped === "budget" ? "over-budget" : "pruned";
    const answer = best > 0 && s.answer_score === best;
    const title = `${FATE[fate]} · keep score ${fmt(s.score, 3)}`
      + (s.answer_score != null ? ` · answer score ${fmt(s.answer_score, 3)}` : "");
    p.append(el("span", { class: answer ? `${fate} answer` : fate, title }, s.text));
  });
  return p;
}

/** "3 kept, 2 pruned, 1 over budget" (pruned_sentences counts the budget's cuts too). */
function counts(citation) {
  const over = citation.over_budget_sentences || 0;
  return `${citation.kept_sentences} kept, ${citation.pruned_sentences - over} pruned`
    + (over ? `, ${over} over budget` : "");
}

/** "hop 1 via Marek Wilczynski, from [1]": how a later hop found the passage (none: the first
 * pass did). A passage the first pass found that a hop put after its source says "via" only. */
function hopChip(citation) {
  if (!citation.bridge) return null;
  const from = citation.led_by ? `, from [${citation.led_by}]` : "";
  const label = citation.hop ? `hop ${citation.hop} via ${citation.bridge}${from}`
    : `via ${citation.bridge}${from}`;
  return el("span", {
    class: "chip hop",
    title: "multi-hop: the passage it follows named this entity; this one was found by it",
  }, label);
}

/** One source of an answer; `file` is its document's file name, when that says more. */
export function renderSource(citation, idPrefix, file = "") {
  const where = [...(citation.heading_path || [])];
  if (where[0] === citation.title) where.shift(); // the document title is shown already
  if (citation.page) where.push(`page ${citation.page}`);
  return el("li", { class: "source", id: `${idPrefix}-${citation.n}` },
    el("div", { class: "source-head" },
      el("span", { class: "badge" }, citation.n),
      el("strong", { class: "source-title" }, citation.title || "(untitled)",
        file ? el("span", { class: "source-file" }, file) : null),
      el("span", { class: "score", title: "reranking score" }, `score ${fmt(citation.score)}`)),
    where.length ? el("div", { class: "where" }, where.join(" › ")) : null,
    el("div", { class: "found-by" }, hopChip(citation), retrieverList(citation.retrievers),
      el("span", { class: "muted counts" }, counts(citation))),
    passage(citation));
}

const ms = (x) => `${fmt(x, x < 10 ? 1 : 0)} ms`;

/** "1,240 → 310 tokens (60% pruned, 15% over budget)" and the per-stage timings, folded. What
 * the token budget cut is told apart from what the pruner dropped. */
export function renderStats(stats) {
  const saved = Math.round((stats.compression || 0) * 100);
  const overTokens = stats.tokens_over_budget || 0;
  const over = stats.tokens_before ? Math.round((overTokens / stats.tokens_before) * 100) : 0;
  const n = (x) => (typeof x === "number" ? x.toLocaleString("en") : "?");
  const timings = stats.timings_ms || {};
  const stages = Object.entries(timings).filter(([stage]) => stage !== "total");
  const why = overTokens
    ? `${n(stats.sentences_pruned)} sentences pruned; ${n(stats.sentences_over_budget)} kept by`
      + ` the pruner but over the token budget (${n(overTokens)} tokens)`
    : null;
  return el("div", { class: "stats" },
    el("div", { class: "compression", title: why },
      `Context ${n(stats.tokens_before)} → ${n(stats.tokens_after)} tokens `,
      el("strong", {}, `(${Math.max(saved - over, 0)}% pruned`),
      overTokens ? [", ", el("strong", { class: "over-budget" }, `${over}% over budget`)] : null,
      el("strong", {}, ")")),
    stages.length ? el("details", { class: "timings" },
      el("summary", {}, "total" in timings ? `Timings · total ${ms(timings.total)}` : "Timings"),
      stages.map(([stage, t]) => el("span", { class: "chip" }, `${stage} ${ms(t)}`))) : null);
}

export function renderRetrieval(data) {
  const parts = Object.entries(data.retrievers || {}).map(([k, v]) => `${k} ${v}`);
  return el("div", { class: "retrieval muted" },
    `Retrieval: ${data.retrieval} · ${data.candidates} candidates`
      + (data.hops ? ` · up to ${data.hops} more hop${data.hops > 1 ? "s" : ""}` : ""),
    parts.length ? ` (${parts.join(", ")})` : "");
}
