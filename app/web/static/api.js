// Talks to the Sieve HTTP API: documents (list, upload with progress, delete) and /ask streamed
// over server-sent events. EventSource cannot POST, so the stream is read with fetch() and the
// `event:` / `data:` lines are parsed here. Every request carries the API key (if the UI has
// one) as `Authorization: Bearer`, and works in the chosen collection (if any: else the
// server's default, i.e. the key's only collection).

const session = { key: "", collection: "" };

/** Set the API key and/or the collection later requests use ("" for none). */
export function configure({ key = session.key, collection = session.collection } = {}) {
  session.key = key;
  session.collection = collection;
}

/** An API failure: the server's `detail` as the message, and the HTTP status (0: network). */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

function headers(extra = {}) {
  return session.key ? { ...extra, Authorization: `Bearer ${session.key}` } : extra;
}

function inCollection(path) {
  if (!session.collection) return path;
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}collection=${encodeURIComponent(session.collection)}`;
}

/** The error body of the API is {"detail": reason}; fall back to the status line. */
async function errorOf(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.detail) detail = typeof body.detail === "string"
      ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON: keep the status line */ }
  return new ApiError(detail, response.status);
}

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function listDocuments(limit = 100, offset = 0) {
  return (await call(inCollection(`/documents?limit=${limit}&offset=${offset}`))).json();
}

/** GET /healthz: `auth` (whether keys are required), the default LLM and the backends a
 * request may choose. Public: it answers without a key. */
export async function serverInfo() {
  return (await call("/healthz")).json();
}

/** The collections this key may read, from GET /v1/models (`sieve:<name>` model ids). */
export async function listCollections() {
  const { data } = await (await call("/v1/models")).json();
  return data.map((m) => m.id).filter((id) => id.startsWith("sieve:"))
    .map((id) => id.slice("sieve:".length));
}

export async function deleteDocument(id) {
  await call(`/documents/${encodeURIComponent(id)}`, { method: "DELETE" });
}

/**
 * Upload one file as multipart `files`. fetch() has no upload progress, XMLHttpRequest does.
 * onProgress(fraction) runs while bytes go out; onSent() once they all have (the server is
 * then parsing and indexing). Resolves with the stored document, rejects with ApiError(detail).
 */
export function uploadFile(file, { onProgress = () => {}, onSent = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append("files", file, file.name);
    xhr.open("POST", inCollection("/documents"));
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.upload.onload = () => onSent();
    xhr.onerror = () => reject(new ApiError("network error", 0));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status === 201 && body && body.documents) resolve(body.documents[0]);
      else {
        const detail = (body && body.detail) || `${xhr.status} ${xhr.statusText}`;
        reject(new ApiError(detail, xhr.status));
      }
    };
    xhr.send(form);
  });
}

/** Feed text chunks in, get back complete {event, data} records (data parsed as JSON). */
export function sseParser(onEvent) {
  let buffer = "";
  let event = "message";
  let data = [];
  return (text) => {
    buffer += text;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // the last piece may be an unfinished line
    for (const line of lines) {
      if (line === "") { // a blank line ends one event
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
        event = "message";
        data = [];
      } else if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      } // ":" comments (keep-alives) and unknown fields are ignored
    }
  };
}

/**
 * POST /ask with stream: true. handlers.<event>(data) runs for retrieval, context, token, done
 * and error. Validation errors arrive as a normal JSON 4xx and reject the promise; a server
 * that answers plain JSON is treated as one `done` event.
 */
export async function askStream(base, body, handlers, signal) {
  const scoped = session.collection ? { collection: session.collection, ...body } : body;
  const response = await call(`${base}/ask`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ ...scoped, stream: true }),
    signal,
  });
  let finished = false; // a stream cut before `done` or `error` must not look complete
  const dispatch = (event, data) => {
    if (event === "done" || event === "error") finished = true;
    if (handlers[event]) handlers[event](data);
  };
  if (!(response.headers.get("content-type") || "").includes("text/event-stream")) {
    dispatch("done", await response.json());
    return;
  }
  const feed = sseParser(dispatch);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    feed(value);
  }
  feed("\n\n"); // flush an event the server did not end with a blank line
  if (!finished) dispatch("error", { detail: "the answer stream ended before it was complete" });
}
