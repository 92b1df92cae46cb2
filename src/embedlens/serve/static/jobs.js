// The background-jobs panel: every job of the server and its progress, polled every two seconds.
import { api } from "./api.js";
import { $, clear, el } from "./dom.js";

// -- jobs -------------------------------------------------------------------------------------------------------
export async function pollJobs() {
  try {
    const r = await api("jobs");
    const ul = $("jobs"); clear(ul);
    r.jobs.forEach((j) => ul.appendChild(el("li", j.label + " · " + j.state + (j.state === "running" ? " " + j.elapsed_s.toFixed(0) + " s" : "") + (j.error ? " · " + j.error : ""))));
  } catch (e) { /* the page keeps working without it */ }
  setTimeout(pollJobs, 2000);
}
