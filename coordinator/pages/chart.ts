// A small line chart on a plain <canvas> (browser only): one series, axes with round
// ticks, sized to the element and sharp on high-DPI screens. Enough for loss and
// accuracy curves; no charting dependency.

export interface ChartOptions {
  readonly color: string;
  /** Fixed y range, e.g. [0, 1] for accuracy; otherwise fitted to the data. */
  readonly yRange?: readonly [number, number];
  readonly xLabel: string;
  /** Draw a dot on every point (for sparse series). */
  readonly dots?: boolean;
}

/** Round tick values covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

export function drawLineChart(
  canvas: HTMLCanvasElement,
  xs: readonly number[],
  ys: readonly number[],
  o: ChartOptions,
): void {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.dataset.points = String(xs.length);
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '11px system-ui, sans-serif';
  const pad = { left: 48, right: 12, top: 10, bottom: 28 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  if (xs.length === 0) {
    ctx.fillStyle = '#9aa3b5';
    ctx.fillText('no data yet', pad.left + w / 2 - 30, pad.top + h / 2);
    return;
  }
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  let [yMin, yMax] = o.yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!(yMax > yMin)) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  if (o.yRange === undefined) {
    const margin = (yMax - yMin) * 0.08;
    [yMin, yMax] = [Math.max(0, yMin - margin), yMax + margin];
  }
  const px = (x: number): number => pad.left + ((x - xMin) / (xMax - xMin)) * w;
  const py = (y: number): number => pad.top + h - ((y - yMin) / (yMax - yMin)) * h;
  ctx.strokeStyle = '#e4e7ee';
  ctx.fillStyle = '#5b6475';
  ctx.lineWidth = 1;
  for (const t of niceTicks(yMin, yMax, 4)) {
    ctx.beginPath();
    ctx.moveTo(pad.left, py(t));
    ctx.lineTo(pad.left + w, py(t));
    ctx.stroke();
    ctx.fillText(String(t), 4, py(t) + 4);
  }
  for (const t of niceTicks(xMin, xMax, 6).filter(Number.isInteger))
    ctx.fillText(String(t), px(t) - 4, pad.top + h + 14);
  ctx.fillText(o.xLabel, pad.left + w - ctx.measureText(o.xLabel).width, height - 2);
  ctx.strokeStyle = o.color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  xs.forEach((x, i) => (i === 0 ? ctx.moveTo(px(x), py(ys[i])) : ctx.lineTo(px(x), py(ys[i]))));
  ctx.stroke();
  if (o.dots === true || xs.length === 1) {
    ctx.fillStyle = o.color;
    xs.forEach((x, i) => {
      ctx.beginPath();
      ctx.arc(px(x), py(ys[i]), 3.5, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
}
