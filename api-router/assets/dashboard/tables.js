// The dashboard's tables, all drawn from one `/api/shards` answer: servers as traffic
// sees them, the live gateways and their map versions, and the slot moves.
//
// The servers and gateways tables carry `data-points` (rows drawn), like the charts; the
// moves table carries `data-moves` instead, since no move is the usual state.

import { fmtBytes, fmtCount, fmtDuration, fmtMs } from "./format.js";

function pill(text, kind, title) {
  const span = document.createElement("span");
  span.className = `pill ${kind}`;
  span.textContent = text;
  if (title) span.title = title;
  return span;
}

function cell(row, content, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  return td;
}

/** Requests per batch, and the batches: "×2.4 (1,203)"; "–" before the first. */
function perTrip(counts) {
  if (!counts || counts.batches === 0) return "–";
  return `×${(counts.requests / counts.batches).toFixed(1)} (${fmtCount(counts.batches)})`;
}

export function drawServers(shards) {
  const body = document.getElementById("servers-body");
  const rows = [];
  for (const shard of shards.shards) {
    for (const s of shard.servers) {
      const row = document.createElement("tr");
      cell(row, String(shard.shard));
      cell(row, s.server);
      cell(row, s.role);
      let health;
      if (!s.up) health = pill("down", "bad", s.down_reason);
      else if (s.banned) health = pill("banned", "warn", s.ban_reason);
      else health = pill("up", "ok");
      cell(row, health);
      cell(row, s.lag_bytes == null ? "–" : fmtBytes(s.lag_bytes), "num");
      cell(row, s.lag_ms == null ? "–" : String(s.lag_ms), "num");
      const reads = cell(row, pill(s.takes_reads ? "yes" : "no", s.takes_reads ? "ok" : "warn"));
      if (s.not_taking_reads_because) {
        const why = document.createElement("span");
        why.className = "why";
        why.textContent = s.not_taking_reads_because;
        reads.append(why);
      }
      cell(row, String(s.in_flight), "num");
      cell(row, String(s.served), "num");
      cell(row, perTrip(s.read_batches), "num");
      cell(row, perTrip(s.write_batches), "num");
      rows.push(row);
    }
  }
  body.replaceChildren(...rows);
  document.getElementById("servers").dataset.points = String(rows.length);
}

/** The live gateways and the map version each routes with (all from `/api/shards`). */
export function drawGateways(shards) {
  const map = shards.map;
  const note = map.reachable ? "" : " (metadata database unreachable: last map kept)";
  document.getElementById("map-version").textContent = `v${map.version} (${map.source})${note}`;
  const rows = (shards.gateways || []).map((g) => {
    const row = document.createElement("tr");
    cell(row, g.address);
    cell(row, g.host);
    cell(row, String(g.pid), "num");
    cell(row, g.binary_version);
    cell(row, pill(`v${g.map_version}`, g.map_version === map.version ? "ok" : "warn"), "num");
    cell(row, String(g.seen_ms_ago), "num");
    return row;
  });
  document.getElementById("gateways-body").replaceChildren(...rows);
  document.getElementById("gateways").dataset.points = String(rows.length);
}

const PHASE_KIND = { done: "ok", aborted: "warn" };

/** Slot moves: the active ones, then the newest finished ones; hidden when there are none. */
export function drawMoves(shards) {
  const moves = shards.moves || [];
  const rows = moves.map((m) => {
    const row = document.createElement("tr");
    cell(row, `${m.id} · ${m.kind}`);
    cell(row, `${m.slots} (${m.slot_count})`);
    cell(row, `${m.source} → ${m.target}`);
    const kind = m.stuck ? "bad" : PHASE_KIND[m.phase] ?? (m.running ? "live" : "warn");
    const phase = m.phase.replace("_", " ") + (m.stuck ? " · stuck" : "");
    cell(row, pill(phase, kind, m.advice));
    const bar = document.createElement("progress");
    bar.max = Math.max(1, m.rows_total);
    bar.value = Math.min(m.rows_copied, bar.max);
    const copied = cell(row, bar, "copied");
    copied.append(` ${fmtCount(m.rows_copied)} / ${fmtCount(m.rows_total)}`);
    cell(row, fmtCount(m.rows_behind), "num");
    cell(row, m.eta_secs == null ? "–" : fmtDuration(Math.round(m.eta_secs)), "num");
    cell(row, m.fence_ms == null ? "–" : fmtMs(m.fence_ms), "num");
    // A stuck move says why and what to do instead of its last step.
    cell(row, m.stuck ? m.stuck.warning : m.note, m.stuck ? "note stuck" : "note");
    row.dataset.move = String(m.id);
    row.dataset.phase = m.phase;
    row.dataset.stuck = m.stuck ? (m.stuck.two_owners ? "two-owners" : "stopped") : "";
    return row;
  });
  document.getElementById("moves-body").replaceChildren(...rows);
  const panel = document.getElementById("moves");
  panel.dataset.moves = String(rows.length);
  panel.closest("section").hidden = rows.length === 0;
  const read = shards.moves_read;
  const stale = read?.error ? ` (not read lately: ${read.error})` : "";
  const stuck = moves.filter((m) => m.stuck).length;
  const stuckText = stuck ? `, ${stuck} stuck` : "";
  const active = document.getElementById("moves-active");
  active.textContent = `${moves.filter((m) => m.active).length} active${stuckText}${stale}`;
  active.dataset.stuck = String(stuck);
}
