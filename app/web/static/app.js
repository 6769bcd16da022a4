// The Sieve web UI: upload (drag and drop or picker, one progress bar per file), list and
// delete documents, and ask questions with streamed, cited answers.

import { askStream, deleteDocument, listDocuments, serverInfo, uploadFile } from "./api.js";
import { el, renderAnswerText, renderRetrieval, renderSource, renderStats } from "./render.js";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- documents

async function refreshDocuments() {
  const summary = $("doc-summary");
  try {
    const { total, documents } = await listDocuments(100, 0);
    $("documents").replaceChildren(...documents.map(documentRow));
    summary.textContent = total === 0 ? "No documents yet."
      : total > documents.length ? `Showing ${documents.length} of ${total} documents.`
        : `${total} document${total === 1 ? "" : "s"}.`;
  } catch (err) {
    summary.textContent = `Could not list documents: ${err.message}`;
  }
}

function documentRow(doc) {
  const remove = el("button", {
    class: "icon danger", type: "button", title: `Delete ${doc.title}`,
    "aria-label": `Delete ${doc.title}`,
    onclick: async () => {
      remove.disabled = true;
      try {
        await deleteDocument(doc.id);
        await refreshDocuments();
      } catch (err) {
        remove.disabled = false;
        $("doc-summary").textContent = `Could not delete ${doc.title}: ${err.message}`;
      }
    },
  }, "✕");
  return el("li", { class: "document", "data-id": doc.id },
    el("div", { class: "doc-main" },
      el("span", { class: "doc-title" }, doc.title),
      el("span", { class: "muted doc-meta" },
        `${doc.format} · ${doc.chunk_count} chunks · ${doc.char_count.toLocaleString("en")} chars`)),
    remove);
}

async function uploadAll(files) {
  const rows = [...files].map((file) => {
    const bar = el("progress", { max: 1, value: 0 });
    const state = el("span", { class: "upload-state muted" }, "waiting");
    const row = el("li", { class: "upload" }, el("span", { class: "upload-name" }, file.name),
      state, bar);
    $("uploads").prepend(row);
    return { file, bar, state, row };
  });
  for (const { file, bar, state, row } of rows) { // one at a time: indexing is CPU-bound
    state.textContent = "uploading";
    try {
      const doc = await uploadFile(file, {
        onProgress: (f) => { bar.value = f; },
        onSent: () => { bar.removeAttribute("value"); state.textContent = "indexing…"; },
      });
      bar.value = 1;
      row.classList.add("ok");
      state.textContent = doc.duplicate ? "already stored" : `added · ${doc.chunk_count} chunks`;
    } catch (err) {
      row.classList.add("failed");
      state.textContent = err.message;
    }
    refreshDocuments();
  }
}

function setUpUploads() {
  const zone = $("dropzone");
  const input = $("file-input");
  input.addEventListener("change", () => {
    if (input.files.length) uploadAll(input.files);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) uploadAll(e.dataTransfer.files);
  });
}

// ---------------------------------------------------------------- chat

let asked = 0;
let controller = null;

function askOptions(question) {
  const body = { question };
  const retrieval = $("opt-retrieval").value;
  const topK = $("opt-top-k").value;
  const prune = $("opt-prune").value;
  const llm = $("opt-llm").value;
  if (retrieval) body.retrieval = retrieval;
  if (llm) body.llm = llm;
  if (topK) body.top_k = Number(topK);
  if (prune) body.prune_threshold = Number(prune);
  return body;
}

/** One question and its answer; the handlers fill it in as stream events arrive. */
function answerView(question) {
  const prefix = `a${++asked}-src`;
  const text = el("div", { class: "answer-text streaming" });
  const meta = el("div", { class: "answer-meta" });
  const sources = el("ol", { class: "sources" });
  const message = el("article", { class: "message" },
    el("p", { class: "question" }, question), meta, text, sources);
  const messages = $("messages");
  messages.querySelector(".empty")?.remove();
  messages.append(message);
  message.scrollIntoView({ block: "start", behavior: "smooth" });

  let answer = "";
  let known = new Set();
  let pending = false;
  const redraw = () => { pending = false; renderAnswerText(text, answer, prefix, known); };
  const showContext = (data) => {
    known = new Set(data.citations.map((c) => c.n));
    sources.replaceChildren(...data.citations.map((c) => renderSource(c, prefix)));
    meta.querySelector(".stats")?.remove();
    meta.append(renderStats(data.stats));
    if (data.abstained) message.classList.add("abstained");
  };
  return {
    retrieval: (data) => meta.prepend(renderRetrieval(data)),
    context: showContext,
    token: (data) => {
      answer += data.text;
      if (!pending) { pending = true; requestAnimationFrame(redraw); }
    },
    done: (data) => {
      showContext(data);
      if (data.degraded) meta.append(el("p", { class: "degraded" }, data.degraded));
      answer = data.answer;
      redraw();
      text.classList.remove("streaming");
      message.classList.add("done");
    },
    error: (data) => fail(data.detail),
    fail,
  };
  function fail(detail) {
    text.classList.remove("streaming");
    message.classList.add("failed");
    message.append(el("p", { class: "error" }, detail));
  }
}

async function ask(event) {
  event.preventDefault();
  const button = $("ask-button");
  if (controller) { controller.abort(); return; } // the button reads "Stop" while streaming
  const question = $("question").value.trim();
  if (!question) return;
  const view = answerView(question);
  controller = new AbortController();
  button.textContent = "Stop";
  try {
    await askStream("", askOptions(question), view, controller.signal);
    $("question").value = "";
  } catch (err) {
    view.fail(err.name === "AbortError" ? "stopped" : err.message);
  } finally {
    controller = null;
    button.textContent = "Ask";
  }
}

function setUpChat() {
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => { // Enter asks, Shift+Enter a new line
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
}

/** Offer only the answer backends this server enables (the rest would be refused). */
async function setUpBackends() {
  try {
    const { llm, llm_backends: backends } = await serverInfo();
    const select = $("opt-llm");
    select.replaceChildren(el("option", { value: "" }, `server default (${llm})`),
      ...backends.map((name) => el("option", { value: name }, name)));
  } catch (_) { /* keep the static list; the server explains a refused backend */ }
}

setUpUploads();
setUpChat();
setUpBackends();
refreshDocuments();
