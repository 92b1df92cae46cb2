// Requests to the explorer's API (/api/...), the only requests the page makes: all to this server. In a
// static export (window.EMBEDLENS_DATA) offline.js answers them from the data scripts instead: no requests.
import { sleep } from "./dom.js";
import { offline, offlineApi, offlineBinary, offlinePost } from "./offline.js";

async function answer(r) {
  const body = await r.json().catch(() => ({ error: "bad response (" + r.status + ")" }));
  if (!r.ok) { const e = new Error(body.error || ("HTTP " + r.status)); e.status = r.status; throw e; }
  return body;
}

export async function api(path, params) {
  if (offline) return offlineApi(path, params);
  const url = "/api/" + path + (params ? "?" + new URLSearchParams(params).toString() : "");
  return answer(await fetch(url, { headers: { Accept: "application/json" } }));
}

// Binary answers (the map's float32 coordinates).
export async function binary(path, params) {
  if (offline) return offlineBinary(path, params);
  const r = await fetch("/api/" + path + "?" + new URLSearchParams(params).toString());
  if (!r.ok) throw new Error(path + " unavailable (" + r.status + ")");
  return r.arrayBuffer();
}

export async function post(path, body) {
  if (offline) return offlinePost(path);
  return answer(await fetch("/api/" + path, { method: "POST", body: JSON.stringify(body),
    headers: { Accept: "application/json", "Content-Type": "application/json" } }));
}

// Poll a long-work endpoint until its job is ready. Every one answers {job, result} (the job's state, then the
// library result's to_dict() and the rows the page needs beside it); onState(job) shows progress. Returns the
// answer, or null when `alive()` turns false.
export async function poll(path, params, onState, alive, every) {
  for (;;) {
    if (alive && !alive()) return null;
    const r = await api(path, params);
    if (r.job.state === "ready") return r;
    if (r.job.state === "error") throw new Error(r.job.error || "failed");
    if (onState) onState(r.job);
    await sleep(every || 700);
  }
}
