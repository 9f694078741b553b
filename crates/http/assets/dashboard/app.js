// The dashboard's shell: the route table, navigation without reloads, and the polling loop
// that keeps the shown page live.
//
// Pages live under /ui/ (the broker answers every page path with this same document, so a
// page can be reloaded and bookmarked; crates/http/src/dashboard.rs holds the same table in
// `is_page`). A page is a function `(root, params) => ({refresh, unmount})`: it draws its
// skeleton once, `refresh` updates it from the API (called at once, then every poll), and
// `unmount` closes what it opened (event streams). A refresh still running when the next
// poll comes is not started twice; one asked for while another runs (a click on a tab, a new
// page) runs right after it, because the running one may have read the API before the click
// and would otherwise be the last word until the next poll.

import { el, fill } from './format.js';
import { overviewPage, streamsPage, streamPage, groupsPage, groupPage } from './streams.js';
import { queuesPage, queuePage, deadLettersPage } from './queues.js';
import { jobPage } from './jobs.js';
import { alertsPage } from './alerts.js';

const POLL_MS = 1500;

const ROUTES = [
  [[], overviewPage, 'overview'],
  [['overview'], overviewPage, 'overview'],
  [['streams'], streamsPage, 'streams'],
  [['streams', ':stream'], streamPage, 'streams'],
  [['groups'], groupsPage, 'groups'],
  [['groups', ':group'], groupPage, 'groups'],
  [['queues'], queuesPage, 'queues'],
  [['queues', ':queue'], queuePage, 'queues'],
  [['queues', ':queue', 'dlq'], deadLettersPage, 'queues'],
  [['queues', ':queue', 'jobs', ':id'], jobPage, 'queues'],
  [['alerts'], alertsPage, 'alerts'],
];

function match(segments) {
  for (const [pattern, page, section] of ROUTES) {
    if (pattern.length !== segments.length) continue;
    const params = {};
    const matched = pattern.every((part, index) => {
      if (part.startsWith(':')) {
        params[part.slice(1)] = segments[index];
        return true;
      }
      return part === segments[index];
    });
    if (matched) return { page, params, section };
  }
  return null;
}

function segmentsOf(pathname) {
  let path = pathname.replace(/\/+$/, '');
  if (path === '' || path === '/ui') return [];
  if (!path.startsWith('/ui/')) return null;
  path = path.slice('/ui/'.length);
  try {
    return path.split('/').map(decodeURIComponent);
  } catch (error) {
    return null;
  }
}

function notFoundPage(root) {
  fill(root, el('section', { class: 'not-found', id: 'not-found' },
    el('h1', {}, '404 · no such page'),
    el('p', {}, 'The dashboard has no page at this address.'),
    el('p', {}, el('a', { href: '/ui/overview' }, 'Go to the overview'))));
  return { refresh() {}, unmount() {} };
}

const banner = () => document.getElementById('banner');

export function showError(error) {
  const node = banner();
  node.textContent = error ? String(error.message || error) : '';
  node.hidden = !error;
}

let current = null;
let refreshing = false;
let refreshAgain = false;

/** Updates the shown page from the API. `requested`: asked for by the page or a navigation
 *  (not the poll), so it is not dropped while another refresh runs. */
async function refresh(requested = false) {
  if (!current) return;
  if (refreshing) {
    // A poll is dropped (the next one comes soon); a request is kept for later.
    if (requested) refreshAgain = true;
    return;
  }
  refreshing = true;
  const live = document.getElementById('live');
  const view = current;
  try {
    await view.refresh();
    if (view === current) {
      showError(null);
      live.classList.remove('stale');
      live.textContent = `live · ${new Date().toLocaleTimeString()}`;
    }
  } catch (error) {
    if (view === current) {
      showError(error);
      live.classList.add('stale');
    }
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      refresh(true);
    }
  }
}

function render() {
  if (current) current.unmount();
  current = null;
  showError(null);
  const root = document.getElementById('page');
  root.replaceChildren();
  const segments = segmentsOf(location.pathname);
  const route = segments && match(segments);
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', Boolean(route) && link.dataset.nav === route.section);
  }
  if (!route) {
    document.title = 'Not found · Omnibus';
    current = notFoundPage(root);
    return;
  }
  current = route.page(root, route.params, { navigate, refresh: () => refresh(true) });
  document.title = `${current.title || route.section} · Omnibus`;
  refresh(true);
}

/** Shows another page without reloading the document. */
export function navigate(path) {
  history.pushState(null, '', path);
  render();
}

document.addEventListener('click', (event) => {
  const anchor = event.target.closest('a');
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', render);
setInterval(() => refresh(false), POLL_MS);
render();
