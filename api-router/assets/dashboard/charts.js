// uPlot helpers for the dashboard: a bounded sample history, a chart that follows its
// container's width and rebuilds when its series change, and time-series options.
// `uPlot` is the global that uPlot.iife.min.js defines.

import { clock } from "./format.js";

export const CHART_HEIGHT = 190;

export const COLORS = {
  blue: "#3b6fd8",
  orange: "#e8833a",
  red: "#d64545",
  green: "#1f9d55",
  purple: "#8a5cd0",
  teal: "#1a9aa0",
  grey: "#9aa3b5",
};
export const LINE_PALETTE = [COLORS.blue, COLORS.orange, COLORS.green, COLORS.purple, COLORS.teal, COLORS.red];

// ---------------------------------------------------------------------------------------
// Bounded history
// ---------------------------------------------------------------------------------------

/** Samples over time: `x` (unix seconds) and one column per named series, aligned. */
export class History {
  constructor(limit) {
    this.limit = limit;
    this.x = [];
    this.columns = new Map();
  }

  /** Appends one sample; names missing from `values` get null (a gap). */
  push(t, values) {
    for (const name of Object.keys(values)) {
      if (!this.columns.has(name)) this.columns.set(name, new Array(this.x.length).fill(null));
    }
    this.x.push(t);
    for (const [name, column] of this.columns) column.push(values[name] ?? null);
    if (this.x.length > this.limit) {
      this.x.shift();
      for (const column of this.columns.values()) column.shift();
    }
    // A series with no value left in the window (a replica removed) goes away.
    for (const [name, column] of this.columns) {
      if (column.every((v) => v == null)) this.columns.delete(name);
    }
  }

  names() {
    return [...this.columns.keys()];
  }

  column(name) {
    return this.columns.get(name) ?? new Array(this.x.length).fill(null);
  }
}

// ---------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------

/** Shows the latest values in the legend unless the cursor is over the chart. */
function legendAtLatest(u) {
  const last = u.data[0].length - 1;
  if (last >= 0 && (u.cursor.left == null || u.cursor.left < 0)) u.setLegend({ idx: last });
}

/** A y scale from zero to at least `floor`, so an idle chart is not all noise. */
export const fromZero = (floor) => (_u, _min, max) => [0, Math.max(floor, (max ?? 0) * 1.15)];

/** A uPlot instance in a container that follows the container's width. */
export class Chart {
  constructor(el, makeOpts) {
    this.el = el;
    this.makeOpts = makeOpts;
    this.plot = null;
    this.key = null;
    new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: CHART_HEIGHT });
    }).observe(el);
  }

  width() {
    return Math.max(200, this.el.clientWidth);
  }

  /**
   * Draws `data` (uPlot's column arrays). `key` names the series layout: when it
   * changes (a replica appears, a shard count changes) the chart is rebuilt.
   */
  draw(data, key, points, ...optArgs) {
    if (!this.plot || key !== this.key) {
      if (this.plot) this.plot.destroy();
      const opts = this.makeOpts(...optArgs);
      opts.width = this.width();
      opts.height = CHART_HEIGHT;
      this.plot = new uPlot(opts, data, this.el);
      this.key = key;
    } else {
      this.plot.setData(data);
    }
    legendAtLatest(this.plot);
    this.el.dataset.points = String(points);
  }
}

export function line(label, stroke, value, extra = {}) {
  return { label, stroke, width: 2, value: (_u, v) => value(v), points: { show: false }, ...extra };
}

/** Room for a y axis's longest label (about 7 px a character at this font size). */
function axisWidth(_u, values) {
  const longest = Math.max(0, ...(values ?? []).map((v) => String(v).length));
  return 20 + 7 * longest;
}

/** Options for a time-series chart; `extra` adds scales and axes (a right-hand axis). */
export function timeOpts(series, yFormat, yRange, extra = { scales: {}, axes: [] }) {
  const at = (secs) => clock(new Date(secs * 1000));
  return {
    series: [{ label: "at", value: (_u, v) => (v == null ? "–" : at(v)) }, ...series],
    scales: { x: { time: true }, y: { range: yRange }, ...extra.scales },
    axes: [
      {
        stroke: "#6b7385",
        grid: { stroke: "#eef1f6" },
        space: 70,
        values: (_u, splits) => splits.map(at),
      },
      {
        stroke: "#6b7385",
        grid: { stroke: "#eef1f6" },
        size: axisWidth,
        values: (_u, splits) => splits.map(yFormat),
      },
      ...extra.axes,
    ],
    cursor: { drag: { x: false, y: false } },
  };
}

/** Time-series charts: x is shared, one column per series. */
export function timeChart(id, series, yFormat, yRange, extra) {
  return new Chart(document.getElementById(id), () => timeOpts(series, yFormat, yRange, extra));
}

/** Samples where at least one series has a value. */
export function countPoints(columns) {
  if (columns.length === 0) return 0;
  let n = 0;
  for (let i = 0; i < columns[0].length; i++) {
    if (columns.some((c) => c[i] != null)) n += 1;
  }
  return n;
}
