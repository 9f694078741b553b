// DOM building and number formatting shared by the pages. Every text goes in as a text node,
// never as HTML: names, payloads and error messages come from clients.

/** `el('td', {class: 'number'}, '12')`; attributes starting with `on` are listeners. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const link = (path, text) => el('a', { href: path }, text);

export function number(value) {
  if (value === null || value === undefined) return '–';
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: 1 });
}

export function rate(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return `${Number(value).toLocaleString('en-US', { maximumFractionDigits: value < 10 ? 2 : 0 })}/s`;
}

export function bytes(value) {
  if (value === null || value === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let amount = Number(value);
  let unit = 0;
  while (amount >= 1024 && unit < units.length - 1) {
    amount /= 1024;
    unit += 1;
  }
  return `${amount.toLocaleString('en-US', { maximumFractionDigits: unit ? 1 : 0 })} ${units[unit]}`;
}

export function duration(milliseconds) {
  if (milliseconds === null || milliseconds === undefined) return '–';
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

export function time(milliseconds) {
  if (!milliseconds) return '–';
  const date = new Date(milliseconds);
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function badge(status) {
  return el('span', { class: `status status-${status}` }, status);
}

/** A job's progress as a percentage 0–100, or null when it is not a number we understand:
 *  a bare number, or an object with `percent` (or `progress`). */
export function percentOf(progress) {
  let value = progress;
  if (value && typeof value === 'object') value = value.percent ?? value.progress;
  if (typeof value !== 'number' || Number.isNaN(value)) return null;
  return Math.max(0, Math.min(100, value));
}

/** A progress bar (ARIA progressbar); `setProgress` moves it. */
export function progressBar(progress, big = false) {
  const fillNode = el('div', { class: 'fill' });
  const bar = el('div', { class: big ? 'progress big' : 'progress', role: 'progressbar',
    'aria-valuemin': 0, 'aria-valuemax': 100 }, fillNode);
  setProgress(bar, progress);
  return bar;
}

export function setProgress(bar, progress) {
  const percent = percentOf(progress);
  bar.setAttribute('aria-valuenow', percent === null ? '' : String(percent));
  bar.title = progress === null || progress === undefined ? 'no progress reported'
    : JSON.stringify(progress);
  // Set through the CSSOM, which the page's Content-Security-Policy allows (style attributes
  // in markup it does not).
  bar.firstChild.style.width = `${percent ?? 0}%`;
}

/** A table with a header row; `rows` are arrays of cells (a cell is a node, text or an
 *  `{node, class}` pair). */
export function table(headers, rows, empty = 'Nothing here yet.') {
  if (rows.length === 0) return el('p', { class: 'empty' }, empty);
  const head = el('tr', {}, headers.map((header) => {
    const [text, className] = Array.isArray(header) ? header : [header, undefined];
    return el('th', { class: className }, text);
  }));
  const body = rows.map((row) => {
    // `{wide: node}`: one cell across every column (an opened row's details).
    if (row.wide) return el('tr', {}, el('td', { colspan: headers.length }, row.wide));
    const cells = row.cells || row;
    const tr = el('tr', row.attributes || {}, cells.map((cell, index) => {
      const header = headers[index];
      const className = Array.isArray(header) ? header[1] : undefined;
      return el('td', { class: className }, cell);
    }));
    return tr;
  });
  return el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, head), el('tbody', {}, body)));
}

export function card(title, ...children) {
  return el('section', { class: 'card' }, el('h2', {}, title), ...children);
}

export function stat(value, label, attributes = {}) {
  return el('div', {}, el('div', { class: 'stat', ...attributes }, value), el('div', { class: 'label' }, label));
}
