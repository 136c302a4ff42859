// The dashboard's request tables, this gateway's alone: its slowest requests of the last
// five minutes (`/api/analytics/slowest`) and its most recent errors
// (`/api/analytics/errors`), each with the trace it was recorded under when the gateway
// exports traces, to look up in the trace backend. Both tables carry `data-points`
// (rows drawn), like the charts.

import { fmtMs } from "./format.js";

/** "2026-11-25T11:36:18.412Z" as "11:36:18". */
function time(at) {
  const m = /T(\d{2}:\d{2}:\d{2})/.exec(at ?? "");
  return m ? m[1] : at ?? "–";
}

function cell(row, text, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

/** The trace id, in a <code> the user can select and copy; "–" when not traced. */
function traceCell(row, traceId) {
  const td = row.insertCell();
  td.className = "trace";
  if (traceId) {
    const code = document.createElement("code");
    code.textContent = traceId;
    td.append(code);
  } else {
    td.textContent = "–";
    td.title = "not traced: the gateway exports no traces, or did not sample this request";
  }
}

function fill(panel, body, rows, empty) {
  if (rows.length === 0) {
    const row = document.createElement("tr");
    const td = row.insertCell();
    td.colSpan = 7;
    td.className = "none";
    td.textContent = empty;
    rows.push(row);
  }
  document.getElementById(body).replaceChildren(...rows);
}

export function drawSlowest(slowest) {
  const rows = slowest.map((r) => {
    const row = document.createElement("tr");
    cell(row, time(r.at));
    cell(row, fmtMs(r.latency_ms), "num");
    cell(row, `${r.method} ${r.endpoint}`);
    cell(row, String(r.status), "num");
    cell(row, r.shard == null ? "–" : String(r.shard), "num");
    traceCell(row, r.trace_id);
    return row;
  });
  document.getElementById("slowest").dataset.points = String(slowest.length);
  fill("slowest", "slowest-body", rows, "No request in the last five minutes.");
}

export function drawErrors(errors) {
  const rows = errors.map((e) => {
    const row = document.createElement("tr");
    cell(row, time(e.at));
    cell(row, `${e.method} ${e.endpoint}`);
    cell(row, String(e.status), "num");
    cell(row, e.shard == null ? "–" : String(e.shard), "num");
    cell(row, e.class);
    cell(row, e.message);
    traceCell(row, e.trace_id);
    return row;
  });
  document.getElementById("errors").dataset.points = String(errors.length);
  fill("errors", "errors-body", rows, "No error since the gateway started.");
}
