// Talks to the Sieve HTTP API: documents (list, upload with progress, delete) and /ask streamed
// over server-sent events. EventSource cannot POST, so the stream is read with fetch() and the
// `event:` / `data:` lines are parsed here.

/** The error body of the API is {"detail": reason}; fall back to the status line. */
async function errorOf(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.detail) detail = typeof body.detail === "string"
      ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON: keep the status line */ }
  return new Error(detail);
}

export async function listDocuments(limit = 100, offset = 0) {
  const response = await fetch(`/documents?limit=${limit}&offset=${offset}`);
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

/** GET /healthz: counts, the default LLM and the backends a request may choose. */
export async function serverInfo() {
  const response = await fetch("/healthz");
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

export async function deleteDocument(id) {
  const response = await fetch(`/documents/${encodeURIComponent(id)}`, { method: "DELETE" });
  if (!response.ok) throw await errorOf(response);
}

/**
 * Upload one file as multipart `files`. fetch() has no upload progress, XMLHttpRequest does.
 * onProgress(fraction) runs while bytes go out; onSent() once they all have (the server is
 * then parsing and indexing). Resolves with the stored document, rejects with Error(detail).
 */
export function uploadFile(file, { onProgress = () => {}, onSent = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append("files", file, file.name);
    xhr.open("POST", "/documents");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.upload.onload = () => onSent();
    xhr.onerror = () => reject(new Error("network error"));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status === 201 && body && body.documents) resolve(body.documents[0]);
      else reject(new Error((body && body.detail) || `${xhr.status} ${xhr.statusText}`));
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
  const response = await fetch(`${base}/ask`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!response.ok) throw await errorOf(response);
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
