// The Sieve web UI: upload (drag and drop or picker, one progress bar per file), list and
// delete documents (after a confirmation), and ask questions with streamed, cited answers, in
// the collection picked at the top; when the server requires API keys, the key is asked for
// there too.

import {
  askStream, configure, deleteDocument, listCollections, listDocuments, serverInfo, uploadFile,
} from "./api.js";
import { el, renderAnswerText, renderRetrieval, renderSource, renderStats } from "./render.js";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- access

// The key is kept in localStorage so that a reload keeps it. Any script of this origin could
// read it there; the page's CSP admits only our own scripts. "Forget key" removes it.
const KEY_ITEM = "sieve.apiKey";
const COLLECTION_ITEM = "sieve.collection";
const stored = { // localStorage may be unavailable (blocked storage): then nothing is kept
  get(name) { try { return localStorage.getItem(name) || ""; } catch (_) { return ""; } },
  set(name, value) { try { localStorage.setItem(name, value); } catch (_) { /* not kept */ } },
  remove(name) { try { localStorage.removeItem(name); } catch (_) { /* nothing kept */ } },
};
let authRequired = false; // from GET /healthz
let keyInUse = ""; // what requests send (the field may hold an edit not yet applied)

function useKey(key) {
  keyInUse = key;
  configure({ key });
}

function keyStatus(text, problem = false) {
  $("key-status").textContent = text;
  $("key-status").classList.toggle("problem", problem);
  $("key-form").classList.toggle("attention", problem);
}

/** No key yet (or forgotten): ask for one, call nothing that would be refused. */
function askForKey(text = "This server needs an API key: enter it above to start.") {
  $("key-form").hidden = false;
  keyStatus(text);
  $("doc-summary").textContent = "Enter an API key to see the documents.";
}

/** Why a request failed, in words. A 401/403 asks for a valid key next to the key field. */
function describe(err) {
  let text;
  if (err.status === 401) {
    text = keyInUse
      ? `The API key was refused (${err.message}): enter a valid key at the top of the page.`
      : "This server needs an API key: enter one at the top of the page.";
  } else if (err.status === 403) {
    text = `Not allowed with this API key (${err.message}): enter a key that may, at the top`
      + " of the page.";
  } else {
    return err.message;
  }
  $("key-form").hidden = false;
  keyStatus(text, true);
  return text;
}

/** The picker offers `names` (hidden while there are none), `chosen` selected. */
function showCollections(names, chosen = "") {
  const select = $("collection");
  select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  select.value = chosen;
  select.disabled = names.length === 0;
  $("picker").hidden = names.length === 0;
}

/** Fill the collection picker from GET /v1/models; false when the key was refused. */
async function loadCollections() {
  let names;
  try {
    names = await listCollections();
  } catch (err) {
    showCollections([]);
    configure({ collection: "" }); // the server's default, if it answers at all
    const text = describe(err);
    $("doc-summary").textContent = `Could not list the collections: ${text}`;
    return !(err.status === 401 || err.status === 403);
  }
  const wanted = stored.get(COLLECTION_ITEM);
  const chosen = names.includes(wanted) ? wanted
    : names.includes("default") ? "default" : names[0] || "";
  showCollections(names, chosen);
  configure({ collection: chosen });
  if (authRequired) {
    keyStatus(names.length ? "" : "This key may read no collection.", !names.length);
  }
  return true;
}

/** (Re)load collections and documents with the current key; false when it was refused. */
async function connect() {
  if (!await loadCollections()) return false;
  await refreshDocuments();
  return true;
}

function setUpAccess() {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (!/^[\x21-\x7e]+$/.test(key)) { // a header value: printable ASCII, no spaces
      keyStatus("That is not an API key: it is one word of letters, digits and _ (sieve_…).",
        true);
      return;
    }
    stored.set(KEY_ITEM, key);
    useKey(key);
    connect().then((ok) => { if (ok && !$("key-status").textContent) keyStatus("Key accepted."); });
  });
  $("forget-key").addEventListener("click", () => {
    stored.remove(KEY_ITEM);
    $("api-key").value = "";
    useKey("");
    configure({ collection: "" });
    showCollections([]);
    $("documents").replaceChildren();
    askForKey("Key forgotten. Enter an API key to use this server.");
  });
  $("collection").addEventListener("change", () => {
    const name = $("collection").value;
    stored.set(COLLECTION_ITEM, name);
    configure({ collection: name });
    refreshDocuments();
  });
}

/** Offer only the answer backends this server enables (the rest would be refused). */
function showBackends({ llm, llm_backends: backends }) {
  const select = $("opt-llm");
  select.replaceChildren(el("option", { value: "" }, `server default (${llm})`),
    ...backends.map((name) => el("option", { value: name }, name)));
}

async function start() {
  try {
    const info = await serverInfo();
    authRequired = info.auth === true;
    showBackends(info);
  } catch (_) { /* keep the static lists; the requests below say what is wrong */ }
  if (authRequired) {
    const key = stored.get(KEY_ITEM);
    $("key-form").hidden = false;
    $("api-key").value = key;
    useKey(key);
    if (!key) {
      askForKey();
      $("api-key").focus();
      return;
    }
  }
  await connect();
}

// ---------------------------------------------------------------- documents

// document id -> file name (where it says more than the title), for the sources of answers
const fileNames = new Map();

/** The upload's file name when it says more than the title ("json": sent as JSON, no file). */
function fileName(doc) {
  const name = doc.source || "";
  return name && name !== "json" && name !== doc.title ? name : "";
}

async function refreshDocuments() {
  const summary = $("doc-summary");
  try {
    const { total, documents } = await listDocuments(100, 0);
    fileNames.clear();
    for (const doc of documents) if (fileName(doc)) fileNames.set(doc.id, fileName(doc));
    $("documents").replaceChildren(...documents.map(documentRow));
    $("chat-hint")?.toggleAttribute("hidden", total > 0); // "Upload a document, then ask…"
    summary.textContent = total === 0 ? "No documents yet."
      : total > documents.length ? `Showing ${documents.length} of ${total} documents.`
        : `${total} document${total === 1 ? "" : "s"}.`;
  } catch (err) {
    summary.textContent = `Could not list documents: ${describe(err)}`;
  }
}

/** One document: title (and file name), counts, and ✕, which asks before it deletes. */
function documentRow(doc) {
  const name = fileName(doc);
  const label = name ? `${doc.title} (${name})` : doc.title;
  const ask = el("button", {
    class: "icon danger", type: "button", title: `Delete ${label}`, "aria-label": `Delete ${label}`,
    onclick: () => confirming(true),
  }, "✕");
  const yes = el("button", { class: "confirm-delete", type: "button", onclick: remove }, "Delete");
  const no = el("button", {
    class: "confirm-cancel", type: "button", onclick: () => confirming(false),
  }, "Cancel");
  const confirm = el("div", {
    class: "confirm", role: "group", "aria-label": `Delete ${label}?`, hidden: true,
    onkeydown: (e) => { if (e.key === "Escape") confirming(false); },
  }, el("span", {}, "Delete this document?"), yes, no);
  function confirming(on) {
    confirm.hidden = !on;
    ask.hidden = on;
    (on ? no : ask).focus();
  }
  async function remove() {
    yes.disabled = no.disabled = true;
    try {
      await deleteDocument(doc.id);
      await refreshDocuments();
    } catch (err) {
      yes.disabled = no.disabled = false;
      confirming(false);
      $("doc-summary").textContent = `Could not delete ${label}: ${describe(err)}`;
    }
  }
  return el("li", { class: "document", "data-id": doc.id },
    el("div", { class: "doc-main" },
      el("div", { class: "doc-head" },
        el("span", { class: "doc-title", title: doc.title }, doc.title),
        name ? el("span", { class: "doc-source", title: name }, name) : null),
      el("span", { class: "muted doc-meta" }, `${doc.format} · ${doc.chunk_count} chunks`
        + ` · ${doc.char_count.toLocaleString("en")} chars`)),
    ask, confirm);
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
    } catch (err) { // stop the bar (no longer indeterminate) and say why
      bar.value = 1;
      row.classList.add("failed");
      state.textContent = `Failed: ${describe(err)}`;
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
  const budget = $("opt-budget").value;
  const llm = $("opt-llm").value;
  if (retrieval) body.retrieval = retrieval;
  if (llm) body.llm = llm;
  if (topK) body.top_k = Number(topK);
  if (prune) body.prune_threshold = Number(prune);
  if (budget) body.max_context_tokens = Number(budget);
  return body;
}

// The server refuses longer questions (422). The textarea has no maxlength: that would cut a
// pasted question silently, so the length is counted here and the question refused in words.
const MAX_CHARS = Number($("question").dataset.maxChars) || 4000;
const COUNT_FROM = Math.floor(MAX_CHARS * 0.75); // the counter shows from here on
const thousands = (x) => x.toLocaleString("en");

function questionNote(text = "") {
  $("question-message").textContent = text;
  $("question-note").classList.toggle("problem", Boolean(text));
}

/** Update the counter; true when the question is within the limit (else say so). */
function checkLength() {
  const length = $("question").value.trim().length;
  const count = $("question-count");
  count.hidden = length < COUNT_FROM;
  count.textContent = `${thousands(length)} / ${thousands(MAX_CHARS)}`;
  const over = length - MAX_CHARS;
  $("question").setAttribute("aria-invalid", String(over > 0));
  questionNote(over > 0 ? `Too long: a question may have up to ${thousands(MAX_CHARS)}`
    + ` characters; shorten it by ${thousands(over)} to ask.` : "");
  return over <= 0;
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
  let frame = 0; // a redraw waiting for the next animation frame (0: none)
  const redraw = () => { frame = 0; renderAnswerText(text, answer, prefix, known); };
  const showContext = (data) => {
    known = new Set(data.citations.map((c) => c.n));
    sources.replaceChildren(
      ...data.citations.map((c) => renderSource(c, prefix, fileNames.get(c.document_id))));
    meta.querySelector(".stats")?.remove();
    meta.append(renderStats(data.stats));
    if (data.abstained) message.classList.add("abstained");
  };
  return {
    retrieval: (data) => meta.prepend(renderRetrieval(data)),
    context: showContext,
    token: (data) => {
      answer += data.text;
      if (!frame) frame = requestAnimationFrame(redraw);
    },
    done: (data) => {
      showContext(data);
      if (data.degraded) meta.append(el("p", { class: "degraded" }, data.degraded));
      answer = data.answer;
      // a token's redraw still waiting would render the same text again after "done", and
      // replace the elements a reader (or a test) already holds
      if (frame) cancelAnimationFrame(frame);
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
  if (!question) {
    questionNote("Type a question first.");
    $("question").focus();
    return;
  }
  if (!checkLength()) {
    $("question").focus();
    return;
  }
  const view = answerView(question);
  controller = new AbortController();
  button.textContent = "Stop";
  try {
    await askStream("", askOptions(question), view, controller.signal);
    $("question").value = "";
    checkLength();
  } catch (err) {
    view.fail(err.name === "AbortError" ? "stopped" : describe(err));
  } finally {
    controller = null;
    button.textContent = "Ask";
  }
}

function setUpChat() {
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("input", checkLength);
  $("question").addEventListener("keydown", (e) => { // Enter asks, Shift+Enter a new line
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
}

setUpAccess();
setUpUploads();
setUpChat();
start();
