// Sieve chat widget. Add to any page:
//   <script src="http://HOST:PORT/widget.js" data-collection="default" async></script>
// It draws a floating bubble that opens a small chat panel asking the server the script came
// from (or data-server="https://..."). Answers stream in over server-sent events; [n] markers
// link to compact sources. Everything lives in a shadow root, so the page's CSS cannot reach in,
// and answer and document text is only ever inserted as text. Cross-origin pages need the
// server to allow their origin (CORS).
//
// A server with API keys on (SIEVE_AUTH=true) also needs data-key="sieve_…", sent as
// `Authorization: Bearer`. Anyone who can view the page can read that key from its source, so
// give it a read-only key scoped to the one public collection it shows, never a write or admin
// key:
//   <script src="https://HOST/widget.js" data-collection="faq" data-key="sieve_…" async></script>
(function () {
  "use strict";
  const script = document.currentScript
    || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__sieveWidget) return;
  window.__sieveWidget = true;
  const server = (script.dataset.server || new URL(script.src, location.href).origin)
    .replace(/\/+$/, "");
  const collection = script.dataset.collection;
  const key = (script.dataset.key || "").trim(); // public: see the note at the top
  const title = script.dataset.title || "Ask our documents";

  const CSS = `
    * { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
    .bubble { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px;
      border-radius: 50%; border: 0; background: #2c5cc5; color: #fff; font-size: 26px;
      cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); z-index: 2147483646;
      display: flex; align-items: center; justify-content: center; padding: 0; }
    .panel { position: fixed; right: 20px; bottom: 88px; width: min(380px, calc(100vw - 24px));
      height: min(540px, calc(100vh - 110px)); display: none; flex-direction: column;
      background: #fff; color: #1d2330; border-radius: 12px; font-size: 14px; line-height: 1.45;
      box-shadow: 0 8px 30px rgba(0,0,0,.25); z-index: 2147483647; overflow: hidden; }
    .panel.open { display: flex; }
    header { padding: 10px 14px; background: #2c5cc5; color: #fff; font-weight: 600;
      display: flex; justify-content: space-between; align-items: center; }
    header button { background: none; border: 0; color: #fff; font-size: 18px; cursor: pointer; }
    .log { flex: 1; overflow-y: auto; padding: 10px 14px; overflow-wrap: anywhere; }
    .q { margin: 10px 0 4px; font-weight: 600; }
    .a { white-space: pre-line; } /* only the paragraph breaks drawAnswer leaves */
    .a.wait::after { content: "…"; color: #6b7280; }
    .cite { display: inline-block; padding: 0 4px; margin: 0 1px; border-radius: 4px;
      background: #e7eefc; color: #2c5cc5; font-size: 11px; font-weight: 600;
      text-decoration: none; cursor: pointer; }
    ol { margin: 6px 0 0; padding-left: 20px; font-size: 12px; color: #4b5563; }
    li { margin-bottom: 4px; }
    li.hl { background: #fff2b3; }
    .err { color: #b42318; }
    .muted { color: #6b7280; font-size: 12px; }
    form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e3e6eb; }
    input { flex: 1; padding: 8px 10px; border: 1px solid #d0d5dd; border-radius: 8px;
      font-size: 14px; min-width: 0; }
    form button { padding: 0 14px; border: 0; border-radius: 8px; background: #2c5cc5;
      color: #fff; font-weight: 600; cursor: pointer; font-size: 14px; }`;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // a custom element, reset inline: page rules such as `div { display: none }` cannot hide it
  function icon(path) { // an inline SVG: no emoji font or image request needed
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    const shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    shape.setAttribute("fill", "currentColor");
    svg.append(shape);
    return svg;
  }

  const host = document.createElement("sieve-widget");
  host.setAttribute("data-sieve-widget", "");
  host.style.setProperty("all", "initial", "important");
  const root = host.attachShadow({ mode: "open" });
  const style = el("style");
  style.textContent = CSS;
  const bubble = el("button", "bubble");
  bubble.append(icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 "
    + "1 2-2z"));
  bubble.setAttribute("aria-label", title);
  const panel = el("div", "panel");
  panel.setAttribute("role", "dialog");
  const header = el("header");
  const close = el("button", "", "✕");
  close.setAttribute("aria-label", "Close");
  header.append(el("span", "", title), close);
  const log = el("div", "log");
  log.append(el("p", "muted", "Ask a question; answers cite their sources."));
  const form = el("form");
  const input = el("input");
  input.placeholder = "Your question…";
  input.maxLength = 4000;
  const send = el("button", "", "Ask");
  send.type = "submit";
  form.append(input, send);
  panel.append(header, log, form);
  root.append(style, panel, bubble);

  const toggle = (open) => {
    panel.classList.toggle("open", open);
    if (open) input.focus();
  };
  bubble.addEventListener("click", () => toggle(!panel.classList.contains("open")));
  close.addEventListener("click", () => toggle(false));

  /** Answer text with [n] markers as small badges that highlight source n. It reads as prose:
   * a single line break (a hard-wrapped source) is a space, blank lines are paragraphs. */
  function drawAnswer(target, answer, list) {
    const text = answer.split(/\n[ \t]*\n\s*/).map((p) => p.replace(/\s+/g, " ").trim())
      .filter(Boolean).join("\n\n");
    target.textContent = "";
    let last = 0;
    for (const m of text.matchAll(/\[(\d+)\]/g)) {
      target.append(text.slice(last, m.index));
      const badge = el("a", "cite", m[1]);
      badge.addEventListener("click", () => {
        const item = list.querySelector(`[data-n="${m[1]}"]`);
        if (!item) return;
        item.classList.add("hl");
        item.scrollIntoView({ block: "nearest" });
        setTimeout(() => item.classList.remove("hl"), 1500);
      });
      target.append(badge);
      last = m.index + m[0].length;
    }
    target.append(text.slice(last));
  }

  function drawSources(list, citations, answer) {
    list.textContent = "";
    for (const c of citations) {
      if (answer && !answer.includes(`[${c.n}]`)) continue; // compact: only what is cited
      const item = el("li");
      item.value = c.n;
      item.dataset.n = String(c.n);
      const path = (c.heading_path || []).filter((h, i) => i || h !== c.title);
      const where = path.join(" › ");
      // a passage a multi-hop pass found through an entity another source named
      const via = c.hop && c.bridge ? ` (via ${c.bridge}${c.led_by ? ` from [${c.led_by}]` : ""})` : "";
      item.append(el("strong", "", c.title || "(untitled)"),
        document.createTextNode((where ? ` — ${where}` : "") + via),
        el("div", "", c.text.length > 220 ? `${c.text.slice(0, 220)}…` : c.text));
      list.append(item);
    }
  }

  /** Parse `event:` / `data:` lines; call onEvent(name, json) per complete event. */
  function parser(onEvent) {
    let buffer = "", event = "message", data = [];
    return (chunk) => {
      buffer += chunk;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) onEvent(event, JSON.parse(data.join("\n")));
          event = "message";
          data = [];
        } else if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
    };
  }

  async function ask(question) {
    log.append(el("p", "q", question));
    const answer = el("div", "a wait");
    const list = el("ol");
    log.append(answer, list);
    let text = "";
    let citations = [];
    const on = {
      context: (d) => { citations = d.citations; },
      token: (d) => { text += d.text; drawAnswer(answer, text, list); },
      done: (d) => {
        text = d.answer;
        citations = d.citations;
        drawAnswer(answer, text, list);
        drawSources(list, citations, d.abstained ? "" : text);
      },
      error: (d) => answer.append(el("div", "err", d.detail)),
    };
    const body = { question, stream: true };
    if (collection) body.collection = collection;
    try {
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
      if (key) headers.Authorization = `Bearer ${key}`;
      const response = await fetch(`${server}/ask`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        let detail = `${response.status} ${response.statusText}`;
        try { detail = (await response.json()).detail || detail; } catch (_) { /* keep */ }
        throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      }
      if (!(response.headers.get("content-type") || "").includes("text/event-stream")) {
        on.done(await response.json());
      } else {
        let finished = false; // a stream cut before `done` or `error` must not look complete
        const feed = parser((name, data) => {
          if (name === "done" || name === "error") finished = true;
          if (on[name]) on[name](data);
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed(value);
          log.scrollTop = log.scrollHeight;
        }
        feed("\n\n");
        if (!finished) on.error({ detail: "the answer stream ended before it was complete" });
      }
    } catch (err) {
      answer.append(el("div", "err", err.message || "network error"));
    } finally {
      answer.classList.remove("wait");
      log.scrollTop = log.scrollHeight;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    send.disabled = true;
    ask(question).finally(() => { send.disabled = false; });
  });

  const mount = () => document.body.append(host);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
