// Queues: the list, one queue (depth and rate charts, its jobs by status, pause and resume)
// and its dead letters (inspect, redrive one or all).

import { get, post, segment } from './api.js';
import { History, lineChart } from './charts.js';
import { badge, bytes, card, duration, el, fill, link, number, progressBar, rate, stat, table, time } from './format.js';

export function queuesPage(root) {
  const list = el('div', {});
  fill(root, el('h1', {}, 'Queues'), el('section', { class: 'card' }, list));
  return {
    title: 'Queues',
    async refresh() {
      const { queues } = await get('/v1/queues');
      queues.sort((a, b) => a.name.localeCompare(b.name));
      fill(list, table(
        ['Queue', ['Ready', 'number'], ['Delayed', 'number'], ['Leased', 'number'], ['Dead letters', 'number'],
          ['In', 'number'], ['Out', 'number'], 'State'],
        queues.map((queue) => [
          link(`/ui/queues/${segment(queue.name)}`, queue.name),
          number(queue.ready), number(queue.delayed), number(queue.leased),
          link(`/ui/queues/${segment(queue.name)}/dlq`, number(queue.dead_letter_depth)),
          rate(queue.rates.enqueued.per_second), rate(queue.rates.delivered.per_second),
          queue.failure ? badge('failed') : queue.paused ? badge('paused') : badge('ok'),
        ]), 'No queue yet.'));
    },
    unmount() {},
  };
}

const JOB_STATUSES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'dead', 'cancelled'];
const JOBS_SHOWN = 50;

export function queuePage(root, { queue }, context) {
  const history = new History();
  let status = 'all';
  const stats = el('div', { class: 'grid four' });
  const depthChart = el('figure', { class: 'chart' });
  const rateChart = el('figure', { class: 'chart' });
  const tabs = el('div', { class: 'tabs', role: 'tablist' });
  const jobs = el('div', { id: 'jobs' });
  const pause = el('button', { id: 'pause', onclick: () => act(pause.dataset.paused === 'true' ? 'resume' : 'pause') }, 'Pause');
  async function act(action) {
    await post(`/v1/queues/${segment(queue)}/${action}`);
    context.refresh();
  }
  fill(root, el('div', { class: 'crumbs' }, link('/ui/queues', 'Queues'), ' /'), el('h1', {}, queue),
    el('div', { class: 'actions' }, pause, link(`/ui/queues/${segment(queue)}/dlq`, 'Dead letters')),
    stats,
    el('div', { class: 'grid' }, card('Depth', depthChart), card('Rates', rateChart)),
    el('section', { class: 'card' }, el('h2', {}, 'Jobs'), tabs, jobs));
  return {
    title: queue,
    async refresh() {
      // The tab this refresh draws: a click while it waits for the API changes `status`, and
      // the rows fetched here must not be shown under the newly clicked tab.
      const shown = status;
      const filter = shown === 'all' ? '' : `&status=${shown}`;
      const [info, page] = await Promise.all([
        get(`/v1/queues/${segment(queue)}`),
        get(`/v1/queues/${segment(queue)}/jobs?limit=${JOBS_SHOWN}${filter}`),
      ]);
      history.push(Date.now(), {
        ready: info.ready, leased: info.leased, delayed: info.delayed, 'dead letters': info.dead_letter_depth,
        enqueued: info.rates.enqueued.per_second, delivered: info.rates.delivered.per_second,
        completed: info.rates.completed.per_second, failed: info.rates.failed.per_second,
      });
      pause.dataset.paused = String(info.paused);
      pause.textContent = info.paused ? 'Resume' : 'Pause';
      fill(stats,
        card('Waiting', stat(number(info.ready), `ready · ${number(info.delayed)} delayed · ${bytes(info.waiting_bytes)}`, { id: 'queue-ready' })),
        card('Leased', stat(number(info.leased), 'being worked on')),
        card('Dead letters', stat(number(info.dead_letter_depth), 'not redriven', { id: 'queue-dead-letters' })),
        card('Oldest waiting', stat(duration(info.jobs.oldest_waiting_ms), info.failure ? `failed: ${info.failure}` : info.paused ? 'paused' : 'delivering')));
      lineChart(history.series(['ready', 'leased', 'delayed', 'dead letters']), { node: depthChart });
      lineChart(history.series(['enqueued', 'delivered', 'completed', 'failed']), { node: rateChart, unit: '/s' });
      fill(tabs, ['all', ...JOB_STATUSES].map((name) => el('button', {
        role: 'tab', class: name === shown ? 'active' : undefined, 'data-status': name, 'aria-selected': String(name === shown),
        onclick: () => { status = name; context.refresh(); },
      }, name === 'all' ? 'all' : `${name} (${number(info.jobs[name])})`)));
      fill(jobs, table(
        ['Job', 'Name', 'Status', ['Attempts', 'number'], 'Progress', ['Updated', 'hide-narrow']],
        page.jobs.map((job) => ({
          attributes: { 'data-job': job.id },
          cells: [link(`/ui/queues/${segment(queue)}/jobs/${segment(job.id)}`, job.id), job.name, badge(job.status),
            `${job.attempts}/${job.max_attempts}`, progressBar(job.progress), time(job.updated_ms)],
        })), shown === 'all' ? 'No job in this queue.' : `No ${shown} job.`));
    },
    unmount() {},
  };
}

const LETTERS_SHOWN = 100;

function header(record, name) {
  return record.headers ? record.headers[name] : undefined;
}

export function deadLettersPage(root, { queue }, context) {
  let start = null;
  const opened = new Set();
  const summary = el('div', {});
  const letters = el('div', { id: 'dead-letters' });
  const message = el('p', { class: 'notice', id: 'redrive-result' });
  const redriveAll = el('button', { id: 'redrive-all', onclick: async () => {
    redriveAll.disabled = true;
    try {
      const answer = await post(`/v1/queues/${segment(queue)}/dlq/redrive`, {});
      message.textContent = `${answer.redriven} dead letters moved back to ${queue}.`;
    } finally {
      redriveAll.disabled = false;
      context.refresh();
    }
  } }, 'Redrive all');
  async function redriveOne(offset) {
    const answer = await post(`/v1/queues/${segment(queue)}/dlq/${offset}/redrive`);
    message.textContent = `Dead letter ${offset} moved back to ${queue} (${answer.redriven}).`;
    context.refresh();
  }
  // Paging: `start` null follows the newest letters; Older/Newer step by a page.
  const older = el('button', { id: 'older-letters', onclick: () => {
    start = Math.max(0, (start ?? Number(older.dataset.from || 0)) - LETTERS_SHOWN);
    context.refresh();
  } }, 'Older');
  const newest = el('button', { id: 'newest-letters', onclick: () => {
    start = null;
    context.refresh();
  } }, 'Newest');
  fill(root, el('div', { class: 'crumbs' }, link('/ui/queues', 'Queues'), ' / ', link(`/ui/queues/${segment(queue)}`, queue), ' /'),
    el('h1', {}, `Dead letters of ${queue}`),
    el('div', { class: 'actions' }, redriveAll, older, newest), message, summary,
    el('section', { class: 'card' }, letters));
  return {
    title: `${queue} dead letters`,
    async refresh() {
      let from = start ?? 0;
      let page = await get(`/v1/queues/${segment(queue)}/dlq?offset=${from}&limit=${LETTERS_SHOWN}`);
      if (start === null && page.high_watermark - Math.max(from, page.log_start_offset) > LETTERS_SHOWN) {
        from = page.high_watermark - LETTERS_SHOWN;
        page = await get(`/v1/queues/${segment(queue)}/dlq?offset=${from}&limit=${LETTERS_SHOWN}`);
      }
      // Remember where the newest page begins, so Older steps back from it.
      if (start === null) older.dataset.from = String(from);
      older.disabled = Math.max(from, page.log_start_offset) <= page.log_start_offset;
      newest.disabled = start === null;
      const redriven = new Set(page.redriven_offsets);
      const isRedriven = (offset) => offset < page.redriven_below || redriven.has(offset);
      const waiting = page.records.filter((record) => !isRedriven(record.offset)).length;
      fill(summary, el('p', {}, `${number(page.high_watermark - page.log_start_offset)} dead letters kept; `,
        el('strong', { id: 'dead-letters-waiting' }, number(waiting)), ' shown not yet redriven.'));
      const rows = [];
      for (const record of [...page.records].reverse()) {
        const done = isRedriven(record.offset);
        const toggle = () => {
          if (opened.has(record.offset)) opened.delete(record.offset);
          else opened.add(record.offset);
          context.refresh();
        };
        rows.push({
          attributes: { class: 'clickable', 'data-offset': record.offset, onclick: toggle },
          cells: [number(record.offset), time(record.timestamp_ms), header(record, 'omnibus.dlq.reason') || '–',
            header(record, 'omnibus.dlq.attempts') || '–', header(record, 'omnibus.dlq.last_error') || '–',
            done ? badge('redriven') : el('button', { class: 'redrive-one', 'data-offset': record.offset,
              onclick: (event) => { event.stopPropagation(); redriveOne(record.offset); } }, 'Redrive')],
        });
        if (opened.has(record.offset)) {
          const headers = Object.entries(record.headers || {});
          rows.push({ wide: el('div', { class: 'letter-detail' },
            el('h2', {}, 'Headers'),
            table(['Name', 'Value'], headers.map(([name, value]) => [el('code', {}, name), value]), 'No headers.'),
            el('h2', {}, 'Key'), el('pre', {}, record.key ?? record.key_base64 ?? '(none)'),
            el('h2', {}, 'Payload'), el('pre', { class: 'payload' }, record.value ?? record.value_base64 ?? '(empty)')) });
        }
      }
      fill(letters, table(['Offset', 'Dead since', 'Reason', ['Attempts', 'number'], 'Last error', ''], rows,
        'No dead letter: nothing failed for good here.'));
    },
    unmount() {},
  };
}
