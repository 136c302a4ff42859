// Load per slot as a heat map: one row per shard, one cell per slot it owns (in slot
// order), shaded by the slot's requests per second over the last 10 s, relative to the
// hottest slot; and the hottest slots and keys beside it. Drawn from one
// `/api/shards/load` answer and the slot ranges of `/api/shards`.
//
// `#heatmap` carries `data-points` (cells with traffic) and `data-hot-slot` (the
// hottest slot, or empty), like the charts, for the browser test.

import { fmtRate } from "./format.js";

/** Slots owned by each shard, from `/api/shards` (`slots` strategy only: "0-341"). */
function ownedSlots(shards) {
  const rows = [];
  for (const shard of shards.shards) {
    const slots = [];
    for (const range of shard.slots || []) {
      const [low, high] = range.split("-").map(Number);
      for (let s = low; s <= (Number.isNaN(high) ? low : high); s++) slots.push(s);
    }
    rows.push({ shard: shard.shard, slots });
  }
  return rows;
}

/** Five shades, from idle to the hottest slot. */
function shade(rate, hottest) {
  if (!rate) return "heat-0";
  const level = Math.min(4, 1 + Math.floor((rate / hottest) * 4));
  return `heat-${level}`;
}

export function drawHeatmap(load, shards) {
  const box = document.getElementById("heatmap");
  const rate = new Map();
  for (const s of load.slots) {
    const w = s.windows["10s"];
    if (w && w.requests > 0) rate.set(s.slot, w.requests_per_sec);
  }
  const hottest = Math.max(0, ...rate.values());
  const rows = ownedSlots(shards).map(({ shard, slots }) => {
    const row = document.createElement("div");
    row.className = "heat-row";
    const label = document.createElement("span");
    label.className = "heat-label";
    const shardLoad = load.shards[String(shard)]?.["10s"];
    label.textContent = `shard ${shard} · ${fmtRate(shardLoad?.requests_per_sec ?? 0)}/s`;
    const cells = document.createElement("div");
    cells.className = "heat-cells";
    for (const slot of slots) {
      const cell = document.createElement("span");
      const r = rate.get(slot) ?? 0;
      cell.className = `heat ${shade(r, hottest)}`;
      cell.title = `slot ${slot}: ${fmtRate(r)} req/s`;
      cells.append(cell);
    }
    row.append(label, cells);
    return row;
  });
  document.getElementById("heatmap-rows").replaceChildren(...rows);
  box.dataset.points = String(rate.size);
  box.dataset.hotSlot = load.hot_slots.length ? String(load.hot_slots[0].slot) : "";

  const hot = load.hot_slots.slice(0, 5).map((h) => {
    const li = document.createElement("li");
    li.textContent =
      `slot ${h.slot} (shard ${h.shard ?? "–"}): ${fmtRate(h.load.requests_per_sec)} req/s, ` +
      `${Math.round(h.share_of_shard * 100)} % of its shard`;
    return li;
  });
  document.getElementById("hot-slots").replaceChildren(...hot);
  const keys = load.hot_keys.slice(0, 5).map((k) => {
    const li = document.createElement("li");
    li.textContent = `${k.key} (slot ${k.slot}, shard ${k.shard ?? "–"}): ${k.requests} requests`;
    return li;
  });
  document.getElementById("hot-keys").replaceChildren(...keys);
}
