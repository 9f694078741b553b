// One job: its record, a progress bar that follows the job live over Server-Sent Events
// (`GET /v1/queues/{q}/jobs/{id}/events`), its payload, result and errors, and the cancel
// and retry buttons.
//
// While the event stream is open the page does not poll: every change arrives as an event
// (the stream starts with a snapshot of the job, read after subscribing, so nothing is
// missed). The server ends a job's stream after its final event; the page then closes its
// EventSource (which would otherwise reconnect) and falls back to polling.

import { get, post, segment } from './api.js';
import { badge, card, el, fill, link, number, progressBar, setProgress, time } from './format.js';

const FINAL = new Set(['completed', 'dead', 'cancelled']);
const EVENT_KINDS = ['enqueued', 'active', 'progress', 'completed', 'failed', 'dead', 'cancelled', 'lagged', 'queue_failed'];
const EVENTS_SHOWN_MAX = 200;

function json(value) {
  if (value === null || value === undefined) return '(none)';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

export function jobPage(root, { queue, id }, context) {
  const base = `/v1/queues/${segment(queue)}/jobs/${segment(id)}`;
  const status = el('span', { id: 'job-status' });
  const bar = progressBar(null, true);
  bar.id = 'job-progress';
  const progressText = el('div', { class: 'label', id: 'job-progress-text' });
  const fields = el('dl', { class: 'kv' });
  const payload = el('pre', { id: 'job-payload' });
  const result = el('pre', { id: 'job-result' });
  const errors = el('div', {});
  const events = el('ol', { class: 'events', id: 'job-events' });
  const message = el('p', { class: 'notice', id: 'job-action-result' });
  const cancel = el('button', { id: 'cancel-job', class: 'danger', onclick: () => act('cancel') }, 'Cancel');
  const retry = el('button', { id: 'retry-job', onclick: () => act('retry') }, 'Retry');
  let source = null;
  let job = null;

  async function act(action) {
    try {
      const answer = await post(`${base}/${action}`);
      if (action === 'retry') {
        const next = answer.jobs[0];
        message.replaceChildren('Retried as job ', link(`/ui/queues/${segment(queue)}/jobs/${segment(next.id)}`, next.id), '.');
      } else {
        message.textContent = `Job ${id} cancelled.`;
        show(answer);
      }
    } catch (error) {
      message.textContent = `${action} refused: ${error.message}`;
    }
  }

  function show(record) {
    job = record;
    fill(status, badge(record.status));
    setProgress(bar, record.progress);
    progressText.textContent = record.progress === null || record.progress === undefined ? 'no progress reported'
      : `progress ${JSON.stringify(record.progress)}`;
    fill(fields,
      el('dt', {}, 'Name'), el('dd', {}, record.name),
      el('dt', {}, 'Attempts'), el('dd', {}, `${record.attempts} of ${record.max_attempts}`),
      el('dt', {}, 'Priority'), el('dd', {}, number(record.priority)),
      el('dt', {}, 'Created'), el('dd', {}, time(record.created_ms)),
      el('dt', {}, 'Started'), el('dd', {}, time(record.started_ms)),
      el('dt', {}, 'Finished'), el('dd', {}, time(record.finished_ms)),
      record.parent ? [el('dt', {}, 'Parent'), el('dd', {}, record.parent)] : null,
      record.unique_key ? [el('dt', {}, 'Unique key'), el('dd', {}, record.unique_key)] : null);
    if ('payload' in record || 'payload_base64' in record) payload.textContent = json(record.payload ?? record.payload_base64);
    result.textContent = json(record.result);
    fill(errors, record.errors && record.errors.length
      ? el('ol', {}, record.errors.map((error) => el('li', {}, `attempt ${error.attempt} at ${time(error.at_ms)}: ${error.message}`)))
      : el('p', { class: 'empty' }, 'No error.'));
    cancel.disabled = FINAL.has(record.status);
    retry.disabled = !(record.status === 'dead' || record.status === 'cancelled');
  }

  function logEvent(kind, data) {
    const detail = data.progress !== undefined && data.progress !== null ? ` ${JSON.stringify(data.progress)}` : '';
    events.prepend(el('li', { 'data-kind': kind }, `${time(data.at_ms || Date.now())} ${kind}${data.attempt ? ` (attempt ${data.attempt})` : ''}${detail}${data.error ? `: ${data.error}` : ''}`));
    while (events.childElementCount > EVENTS_SHOWN_MAX) events.lastElementChild.remove();
  }

  function closeStream() {
    if (source) source.close();
    source = null;
  }

  function openStream() {
    source = new EventSource(`${base}/events`);
    source.addEventListener('snapshot', (event) => {
      const record = JSON.parse(event.data);
      show({ ...job, ...record });
      if (FINAL.has(record.status)) closeStream();
    });
    for (const kind of EVENT_KINDS) {
      source.addEventListener(kind, (event) => {
        const data = event.data ? JSON.parse(event.data) : {};
        logEvent(kind, data);
        if (job && data.status) {
          const next = { ...job, status: data.status, attempts: data.attempt || job.attempts };
          if ('progress' in data && data.progress !== null) next.progress = data.progress;
          if ('result' in data && data.result !== null) next.result = data.result;
          if (kind === 'active') next.started_ms = data.at_ms;
          if (FINAL.has(data.status)) next.finished_ms = data.at_ms;
          show(next);
        }
        // A final event ends the stream; read the whole record once more (errors, result).
        if (FINAL.has(data.status) || kind === 'queue_failed') {
          closeStream();
          context.refresh();
        }
      });
    }
  }

  fill(root, el('div', { class: 'crumbs' }, link('/ui/queues', 'Queues'), ' / ', link(`/ui/queues/${segment(queue)}`, queue), ' / jobs /'),
    el('h1', {}, `Job ${id} `, status),
    el('div', { class: 'actions' }, cancel, retry), message,
    el('div', { class: 'grid' },
      el('section', { class: 'card wide' }, el('h2', {}, 'Progress'), bar, progressText),
      card('Job', fields), card('Events (live)', events),
      card('Payload', payload), card('Result', result),
      el('section', { class: 'card wide' }, el('h2', {}, 'Errors'), errors)));

  return {
    title: `Job ${id}`,
    async refresh() {
      // First the whole record (with its payload), then live events; once the stream is
      // closed (a finished job), poll.
      if (source) return;
      show(await get(base));
      if (job && !FINAL.has(job.status) && !source) openStream();
    },
    unmount() {
      closeStream();
    },
  };
}
