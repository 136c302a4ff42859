// The dashboard's failover events, drawn from one `/api/shards` answer (and, above
// them, a pause under way: `drawHeld`): one line per
// failover or switchover of the map's history, newest first, as the gateway wrote it
// ("shard-1 failed over to 127.0.0.1:25533 in 4.2 s, term 3"), with when it was
// recorded and the map version that recorded it. The panel carries `data-events`
// (lines drawn), like the charts' `data-points`.

/** "2026-11-25T11:36:18.412Z" as "2026-11-25 11:36:18 UTC". */
function utc(at) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(at ?? "");
  return m ? `${m[1]} ${m[2]} UTC` : at ?? "–";
}

export function drawFailovers(shards) {
  const events = shards.failovers || [];
  const items = events.map((e) => {
    const li = document.createElement("li");
    li.className = `event ${e.kind}`;
    const when = document.createElement("time");
    when.dateTime = e.at;
    when.textContent = utc(e.at);
    const line = document.createElement("span");
    line.className = "line";
    line.textContent = e.line;
    const where = document.createElement("span");
    where.className = "why";
    where.textContent = `from ${e.from} · map v${e.map_version}`;
    li.append(when, line, where);
    li.dataset.shard = String(e.shard);
    li.dataset.term = String(e.term);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "No failover or switchover in the map's history: every shard is at its first primary.";
    items.push(li);
  }
  document.getElementById("failovers-body").replaceChildren(...items);
  document.getElementById("failovers").dataset.events = String(events.length);
}

/**
 * A pause as it happens, from `/api/shards`' `held`: the shards whose primary is being
 * handed over (a switchover's drain, a promotion) and the requests this gateway holds
 * for them. Hidden when nothing is held and no handover is open; `data-held` carries
 * the requests waiting.
 */
export function drawHeld(shards) {
  const held = shards.held || { now: 0, handovers: [] };
  const p = document.getElementById("held");
  p.dataset.held = String(held.now);
  p.hidden = held.now === 0 && held.handovers.length === 0;
  const which = held.handovers
    .map((h) => `shard-${h.shard} (up to ${(h.ends_in_ms / 1000).toFixed(1)} s more)`)
    .join(", ");
  p.textContent = `Paused now: ${held.now} request(s) waiting for a new primary` +
    (which ? ` of ${which}` : "") +
    ` · since start ${held.released} released, ${held.timed_out} answered 503 at the bound`;
}

/** The map version routed with and how many gateways are live, for the headline. */
export function drawMapHeadline(shards) {
  const map = shards.map;
  const version = document.getElementById("map-headline");
  version.textContent = `v${map.version}`;
  version.title = map.reachable
    ? `from the ${map.source}`
    : `metadata database unreachable: last map kept (${map.error ?? ""})`;
  const live = (shards.gateways || []).length;
  document.getElementById("gateways-live").textContent = live > 0 ? String(live) : "–";
}
