// The change streams this gateway serves, from `/api/shards`' `streams`: per table the
// Server-Sent Events streams open now, the changes sent per second since the last poll,
// all sent since start and the lag of the newest change sent (commit to send).
//
// The table carries `data-points`: the tables that sent changes since the last poll.

import { fmtCount, fmtMs, fmtRate } from "./format.js";

/** Each table's changes sent at the previous poll, and when. */
const previous = { at: null, sent: new Map() };

export function drawStreams(shards, t) {
  const streams = shards.streams || [];
  const secs = previous.at == null ? null : Math.max(0.001, t - previous.at);
  let active = 0;
  const rows = streams.map((s) => {
    const before = previous.sent.get(s.table);
    const rate = secs == null || before == null ? null : Math.max(0, s.sent - before) / secs;
    if (rate > 0) active += 1;
    const row = document.createElement("tr");
    for (const [text, cls] of [
      [s.table, ""],
      [String(s.open), "num"],
      [fmtRate(rate), "num"],
      [fmtCount(s.sent), "num"],
      [s.sent > 0 ? fmtMs(s.lag_secs * 1000) : "–", "num"],
    ]) {
      const td = row.insertCell();
      td.textContent = text;
      if (cls) td.className = cls;
    }
    row.dataset.table = s.table;
    return row;
  });
  previous.at = t;
  previous.sent = new Map(streams.map((s) => [s.table, s.sent]));
  document.getElementById("streams-body").replaceChildren(...rows);
  const panel = document.getElementById("streams");
  panel.dataset.points = String(active);
  panel.closest("section").hidden = rows.length === 0;
}
