// A tiny SVG chart generator: line charts for growth curves and horizontal bar charts for ratios.
// Plain strings, no dependencies; the output renders on the repository page.

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];
const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceNum(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return `${+v.toPrecision(3)}`;
  return `${+v.toPrecision(2)}`;
}

interface Scale {
  map(v: number): number;
  ticks: number[];
}

function scale(lo: number, hi: number, a: number, b: number, log: boolean): Scale {
  if (log) {
    const l0 = Math.floor(Math.log10(lo));
    const l1 = Math.ceil(Math.log10(hi));
    const span = Math.max(l1 - l0, 1);
    const ticks: number[] = [];
    for (let e = l0; e <= l0 + span; e++) ticks.push(10 ** e);
    return { map: (v) => a + ((Math.log10(v) - l0) / span) * (b - a), ticks };
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) ?? step * 10;
  const t0 = Math.floor(lo / nice) * nice;
  const t1 = Math.ceil(hi / nice) * nice;
  const ticks: number[] = [];
  for (let t = t0; t <= t1 + nice / 2; t += nice) ticks.push(+t.toPrecision(12));
  return { map: (v) => a + ((v - t0) / (t1 - t0 || 1)) * (b - a), ticks };
}

export interface Series {
  name: string;
  points: [number, number][];
}

export function lineChart(o: { title: string; xLabel: string; yLabel: string; series: Series[]; logX?: boolean; logY?: boolean; xTicks?: number[] }): string {
  const W = 720;
  const H = 400;
  const L = 70;
  const R = 190;
  const T = 40;
  const B = 50;
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  if (pts.length === 0) return '';
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const sx = scale(Math.min(...xs), Math.max(...xs), L, W - R, !!o.logX);
  const sy = scale(o.logY ? Math.min(...ys) : Math.min(0, ...ys), Math.max(...ys), H - B, T, !!o.logY);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${W / 2 - R / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(o.title)}</text>`);
  for (const t of sy.ticks) {
    const y = sy.map(t);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${L - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="#555">${niceNum(t)}</text>`);
  }
  for (const t of o.xTicks ?? sx.ticks) {
    const x = sx.map(t);
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${H - B + 16}" text-anchor="middle" fill="#555">${niceNum(t)}</text>`);
  }
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    if (p.length > 0) {
      parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${p.map(([x, y]) => `${sx.map(x).toFixed(1)},${sy.map(y).toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y] of p) parts.push(`<circle cx="${sx.map(x).toFixed(1)}" cy="${sy.map(y).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    const ly = T + 10 + i * 20;
    parts.push(`<line x1="${W - R + 14}" x2="${W - R + 34}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    parts.push(`<text x="${W - R + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export interface Bar {
  label: string;
  value: number;
  lo?: number;
  hi?: number;
  /** Shown instead of a bar (e.g. "n/a"). */
  text?: string;
}

/** Horizontal bars on a log axis, with whiskers for the spread and a reference line (1× = baseline). */
export function barChart(o: { title: string; xLabel: string; bars: Bar[]; ref?: number; goal?: number }): string {
  const W = 720;
  const rowH = 26;
  const L = 230;
  const R = 90;
  const T = 40;
  const B = 44;
  const H = T + B + rowH * o.bars.length;
  const vals = o.bars.flatMap((b) => (b.text ? [] : [b.value, b.lo ?? b.value, b.hi ?? b.value])).filter((v) => v > 0 && Number.isFinite(v));
  if (vals.length === 0) return '';
  const sx = scale(Math.min(...vals, o.ref ?? Infinity, 1) * 0.9, Math.max(...vals, o.ref ?? 0) * 1.1, L, W - R, true);
  const p: string[] = [];
  p.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  p.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  p.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(o.title)}</text>`);
  for (const t of sx.ticks) {
    const x = sx.map(t);
    p.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#e5e5e5"/>`);
    p.push(`<text x="${x.toFixed(1)}" y="${H - B + 16}" text-anchor="middle" fill="#555">${niceNum(t)}×</text>`);
  }
  o.bars.forEach((b, i) => {
    const y = T + i * rowH;
    p.push(`<text x="${L - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(b.label)}</text>`);
    if (b.text) {
      p.push(`<text x="${L + 6}" y="${y + rowH / 2 + 4}" fill="#888" font-style="italic">${esc(b.text)}</text>`);
      return;
    }
    const x0 = L;
    const x1 = sx.map(Math.max(b.value, 1e-9));
    const c = b.label.startsWith('ovlfs') ? '#e15759' : '#4e79a7';
    p.push(`<rect x="${x0}" y="${y + 5}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${rowH - 10}" fill="${c}" opacity="0.85"/>`);
    if (b.lo !== undefined && b.hi !== undefined && b.lo > 0) {
      const a = sx.map(b.lo);
      const z = sx.map(b.hi);
      const cy = y + rowH / 2;
      p.push(`<line x1="${a.toFixed(1)}" x2="${z.toFixed(1)}" y1="${cy}" y2="${cy}" stroke="#222"/>`);
      p.push(`<line x1="${a.toFixed(1)}" x2="${a.toFixed(1)}" y1="${cy - 4}" y2="${cy + 4}" stroke="#222"/>`);
      p.push(`<line x1="${z.toFixed(1)}" x2="${z.toFixed(1)}" y1="${cy - 4}" y2="${cy + 4}" stroke="#222"/>`);
    }
    p.push(`<text x="${Math.max(x1, sx.map(b.hi ?? b.value)) + 6}" y="${y + rowH / 2 + 4}" fill="#333">${b.value >= 10 ? b.value.toFixed(0) : b.value.toFixed(2)}×</text>`);
  });
  for (const [v, color, dash] of [[o.ref, '#000', ''], [o.goal, '#2a9d2a', 'stroke-dasharray="5,4"']] as const) {
    if (v === undefined) continue;
    const x = sx.map(v);
    p.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${T - 4}" y2="${H - B}" stroke="${color}" ${dash}/>`);
  }
  p.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  p.push('</svg>');
  return `${p.join('\n')}\n`;
}
