// Charts drawn as inline SVG from samples the page keeps. No library: a few polylines, two
// axis lines and their labels are all a broker dashboard needs.

import { el } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 170;
const LEFT = 52;
const BOTTOM = 18;
const TOP = 8;
const RIGHT = 8;

/** Samples over time for a few named series, at most `capacity` of them (the oldest go). */
export class History {
  constructor(capacity = 120) {
    this.capacity = capacity;
    this.samples = [];
  }

  /** `values` maps a series name to a number (or null: no value at this time). */
  push(timeMs, values) {
    this.samples.push({ timeMs, values });
    if (this.samples.length > this.capacity) this.samples.shift();
  }

  last() {
    return this.samples[this.samples.length - 1];
  }

  series(names) {
    return names.map((name) => ({
      name,
      points: this.samples
        .filter((sample) => typeof sample.values[name] === 'number')
        .map((sample) => [sample.timeMs, sample.values[name]]),
    }));
  }
}

/** The per-second rate of a counter between two samples, or null. */
export function perSecond(previous, current, name, timeMs) {
  if (!previous || typeof previous.values[name] !== 'number') return null;
  const seconds = (timeMs - previous.timeMs) / 1000;
  if (seconds <= 0) return null;
  return Math.max(0, (current - previous.values[name]) / seconds);
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

function label(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** A line chart of `series` ([{name, points: [[timeMs, value]]}]); `unit` follows the
 *  y-axis maximum. Redraws in place when given the node it returned before. */
export function lineChart(series, { title, unit = '', node } = {}) {
  const container = node || el('figure', { class: 'chart' });
  const points = series.flatMap((one) => one.points);
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img',
    'aria-label': title || series.map((one) => one.name).join(', ') });
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  chart.append(svg('line', { class: 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: TOP + plotHeight }));
  chart.append(svg('line', { class: 'axis', x1: LEFT, y1: TOP + plotHeight, x2: WIDTH - RIGHT, y2: TOP + plotHeight }));
  const yMax = niceMax(Math.max(0, ...points.map((point) => point[1])));
  const maxLabel = svg('text', { class: 'axis-label', x: LEFT - 6, y: TOP + 10, 'text-anchor': 'end' });
  maxLabel.textContent = `${label(yMax)}${unit}`;
  const zeroLabel = svg('text', { class: 'axis-label', x: LEFT - 6, y: TOP + plotHeight, 'text-anchor': 'end' });
  zeroLabel.textContent = '0';
  chart.append(maxLabel, zeroLabel);
  if (points.length > 0) {
    const tMin = Math.min(...points.map((point) => point[0]));
    const tMax = Math.max(...points.map((point) => point[0]));
    const span = Math.max(1, tMax - tMin);
    const spanLabel = svg('text', { class: 'axis-label', x: WIDTH - RIGHT, y: HEIGHT - 3, 'text-anchor': 'end' });
    spanLabel.textContent = `last ${Math.round(span / 1000)} s`;
    chart.append(spanLabel);
    series.forEach((one, index) => {
      if (one.points.length === 0) return;
      const coordinates = one.points.map(([timeMs, value]) => {
        const x = LEFT + ((timeMs - tMin) / span) * plotWidth;
        const y = TOP + plotHeight - (value / yMax) * plotHeight;
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      chart.append(svg('polyline', { class: `series series-${index % 4}`, points: coordinates.join(' '),
        'data-series': one.name }));
    });
  } else {
    const waiting = svg('text', { class: 'axis-label', x: LEFT + 10, y: TOP + plotHeight / 2 });
    waiting.textContent = 'collecting samples…';
    chart.append(waiting);
  }
  const legend = el('figcaption', { class: 'legend' }, series.map((one, index) => {
    const latest = one.points.length ? one.points[one.points.length - 1][1] : null;
    return el('span', {}, el('span', { class: `swatch series-${index % 4}` }),
      `${one.name}${latest === null ? '' : `: ${label(latest)}${unit}`}`);
  }));
  container.replaceChildren(chart, legend);
  return container;
}
