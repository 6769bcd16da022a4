// Builds the DOM for answers: answer text with [n] badges, sources with kept/pruned sentences,
// compression and timings. Document text is untrusted: it only ever goes in as textContent.

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

/** Answer text as text nodes, each [n] (or [1, 2]) marker a link to source n of this answer. */
export function renderAnswerText(target, text, idPrefix, known) {
  target.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)) {
    target.append(text.slice(last, match.index));
    for (const n of match[1].split(",").map((s) => s.trim())) {
      const cls = known.has(Number(n)) ? "cite" : "cite unknown";
      target.append(el("a", { class: cls, href: `#${idPrefix}-${n}`, title: `source ${n}` }, n));
    }
    last = match.index + match[0].length;
  }
  target.append(text.slice(last));
}

/** "vector #1 · lexical #3": which retrievers found the passage, at what rank. */
function retrieverList(retrievers) {
  return Object.entries(retrievers || {}).map(([name, hit]) =>
    el("span", { class: "chip", title: `${name} score ${fmt(hit.score, 3)}` },
      `${name} #${hit.rank}`));
}

/** Every sentence of the passage: kept ones highlighted, pruned ones greyed out. */
function passage(citation) {
  const sentences = citation.source && citation.source.length
    ? citation.source
    : (citation.sentences || []).map((s) => ({ ...s, kept: true }));
  const p = el("p", { class: "passage" });
  sentences.forEach((s, i) => {
    if (i) p.append(" ");
    p.append(el("span", {
      class: s.kept ? "kept" : "pruned",
      title: `${s.kept ? "kept" : "pruned"} · keep score ${fmt(s.score, 3)}`,
    }, s.text));
  });
  return p;
}

export function renderSource(citation, idPrefix) {
  const where = [...(citation.heading_path || [])];
  if (where[0] === citation.title) where.shift(); // the document title is shown already
  if (citation.page) where.push(`page ${citation.page}`);
  return el("li", { class: "source", id: `${idPrefix}-${citation.n}` },
    el("div", { class: "source-head" },
      el("span", { class: "badge" }, citation.n),
      el("strong", { class: "source-title" }, citation.title || "(untitled)"),
      el("span", { class: "score", title: "reranking score" }, `score ${fmt(citation.score)}`)),
    where.length ? el("div", { class: "where" }, where.join(" › ")) : null,
    el("div", { class: "found-by" }, retrieverList(citation.retrievers),
      el("span", { class: "muted counts" },
        `${citation.kept_sentences} kept, ${citation.pruned_sentences} pruned`)),
    passage(citation));
}

const ms = (x) => `${fmt(x, x < 10 ? 1 : 0)} ms`;

/** "1,240 → 310 tokens (75% pruned)" and the per-stage timings, folded. */
export function renderStats(stats) {
  const pct = Math.round((stats.compression || 0) * 100);
  const n = (x) => (typeof x === "number" ? x.toLocaleString("en") : "?");
  const timings = stats.timings_ms || {};
  const stages = Object.entries(timings).filter(([stage]) => stage !== "total");
  return el("div", { class: "stats" },
    el("div", { class: "compression" },
      `Context ${n(stats.tokens_before)} → ${n(stats.tokens_after)} tokens `,
      el("strong", {}, `(${pct}% pruned)`)),
    stages.length ? el("details", { class: "timings" },
      el("summary", {}, "total" in timings ? `Timings · total ${ms(timings.total)}` : "Timings"),
      stages.map(([stage, t]) => el("span", { class: "chip" }, `${stage} ${ms(t)}`))) : null);
}

export function renderRetrieval(data) {
  const parts = Object.entries(data.retrievers || {}).map(([k, v]) => `${k} ${v}`);
  return el("div", { class: "retrieval muted" },
    `Retrieval: ${data.retrieval} · ${data.candidates} candidates`,
    parts.length ? ` (${parts.join(", ")})` : "");
}
