// Number and time formatting for the dashboard's charts, legends and table.

export const fmtRate = (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
export const fmtMs = (v) => (v == null ? "–" : v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`);
export const fmtCount = (v) => (v == null ? "–" : v.toLocaleString("en-US"));
export const fmtPct = (v) => (v == null ? "–" : `${v.toFixed(v >= 10 ? 0 : 1)} %`);

export function fmtBytes(v) {
  if (v == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  if (i === 0) return `${Math.round(v)} B`;
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(secs) {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export const clock = (date) => date.toLocaleTimeString([], { hour12: false });
