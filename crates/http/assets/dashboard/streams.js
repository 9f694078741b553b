// Overview, streams and consumer groups.

import { ApiError, get, segment } from './api.js';
import { History, lineChart, perSecond } from './charts.js';
import { badge, bytes, card, el, fill, link, number, rate, stat, table } from './format.js';

/** The firing alarms, or a note that the alarms API is not there (404: a broker built
 *  without it) — not an error of the page. */
export async function firingAlarms() {
  try {
    const answer = await get('/v1/alerts?state=firing');
    return { alerts: answer.alerts || [] };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { unavailable: true };
    throw error;
  }
}

export function alarmsList(result) {
  if (result.unavailable) {
    return el('p', { class: 'notice', id: 'alarms-unavailable' }, 'Alarms unavailable: this broker has no alarms API.');
  }
  if (result.alerts.length === 0) return el('p', { class: 'good', id: 'no-alarms' }, 'No alarm is firing.');
  return el('ul', { id: 'firing-alarms' }, result.alerts.map((alert) =>
    el('li', {}, badge(alert.state), ' ', el('strong', {}, alert.rule), ` ${alert.target}: ${alert.message}`)));
}

export function overviewPage(root) {
  const history = new History();
  const cards = el('div', { class: 'grid four' });
  const throughput = el('figure', { class: 'chart' });
  const depth = el('figure', { class: 'chart' });
  const alarms = el('div', {}, el('p', { class: 'notice' }, 'loading…'));
  fill(root, el('h1', {}, 'Overview'), cards,
    el('div', { class: 'grid' }, card('Throughput', throughput), card('Queue depth', depth)),
    el('div', { class: 'grid' }, el('section', { class: 'card wide' }, el('h2', {}, 'Firing alarms'), alarms)));
  return {
    title: 'Overview',
    async refresh() {
      const [overview, alarmResult] = await Promise.all([get('/v1/overview'), firingAlarms()]);
      const previous = history.last();
      const now = overview.time_ms;
      const streams = overview.streams;
      const queues = overview.queues;
      history.push(now, {
        records: streams.high_watermarks_total,
        published: perSecond(previous, streams.high_watermarks_total, 'records', now),
        enqueued: queues.enqueued_per_second,
        delivered: queues.delivered_per_second,
        completed: queues.completed_per_second,
        ready: queues.ready,
        leased: queues.leased,
        delayed: queues.delayed,
        dead: queues.dead_letter_depth,
      });
      const disk = overview.disk;
      const usedShare = disk.total_bytes ? 1 - disk.available_bytes / disk.total_bytes : 0;
      const diskBar = el('div', { class: 'bar' }, el('div', { class: `fill ${usedShare > 0.9 ? 'bad' : usedShare > 0.8 ? 'warn' : ''}` }));
      diskBar.firstChild.style.width = `${Math.round(usedShare * 100)}%`;
      fill(cards,
        card('Health', el('div', { id: 'health' }, badge(overview.health)),
          overview.problems.map((problem) => el('p', { class: 'bad' }, problem))),
        card('Disk', stat(bytes(disk.available_bytes), `free of ${bytes(disk.total_bytes)}`, { id: 'disk-free' }), diskBar,
          el('div', { class: 'label mono' }, disk.data_dir)),
        card('Streams', stat(number(streams.count), `${number(streams.partitions)} partitions · ${bytes(streams.log_bytes)}`, { id: 'stream-count' }),
          el('div', { class: 'label' }, `publishing ${rate(history.last().values.published)}`)),
        card('Queues', stat(number(queues.count), `${number(queues.ready)} ready · ${number(queues.leased)} leased · ${number(queues.dead_letter_depth)} dead letters`, { id: 'queue-count' }),
          el('div', { class: 'label' }, `${number(overview.groups)} consumer groups`)));
      lineChart(history.series(['published', 'enqueued', 'delivered', 'completed']), { node: throughput, unit: '/s', title: 'Records and messages per second' });
      lineChart(history.series(['ready', 'leased', 'delayed', 'dead']), { node: depth, title: 'Messages waiting in queues' });
      fill(alarms, alarmsList(alarmResult));
    },
    unmount() {},
  };
}

function retained(stream) {
  return stream.partition_info.reduce((sum, p) => sum + (p.high_watermark - p.log_start_offset), 0);
}

export function streamsPage(root) {
  const list = el('div', {});
  fill(root, el('h1', {}, 'Streams'), el('section', { class: 'card' }, list));
  return {
    title: 'Streams',
    async refresh() {
      const { streams } = await get('/v1/streams');
      streams.sort((a, b) => a.name.localeCompare(b.name));
      fill(list, table(
        ['Stream', ['Partitions', 'number'], ['Records kept', 'number'], ['Size', 'number'], ['Subjects', 'hide-narrow']],
        streams.map((stream) => [
          link(`/ui/streams/${segment(stream.name)}`, stream.name),
          number(stream.partitions), number(retained(stream)),
          bytes(stream.partition_info.reduce((sum, p) => sum + p.size_bytes, 0)),
          (stream.subjects || []).join(', '),
        ]), 'No stream yet.'));
    },
    unmount() {},
  };
}

export function streamPage(root, { stream }) {
  const history = new History();
  const info = el('div', {});
  const chart = el('figure', { class: 'chart' });
  const partitions = el('div', {});
  fill(root, el('div', { class: 'crumbs' }, link('/ui/streams', 'Streams'), ' /'), el('h1', {}, stream),
    el('div', { class: 'grid' }, card('Settings', info), card('Records per second', chart)),
    el('section', { class: 'card' }, el('h2', {}, 'Partitions'), partitions));
  return {
    title: stream,
    async refresh() {
      const detail = await get(`/v1/streams/${segment(stream)}`);
      const now = Date.now();
      const total = detail.partition_info.reduce((sum, p) => sum + p.high_watermark, 0);
      const previous = history.last();
      history.push(now, { total, published: perSecond(previous, total, 'total', now) });
      fill(info, el('dl', { class: 'kv' },
        el('dt', {}, 'Subjects'), el('dd', {}, (detail.subjects || []).join(', ') || '–'),
        el('dt', {}, 'Retention'), el('dd', {}, `${detail.retention_ms ? `${number(detail.retention_ms / 1000)} s` : 'no age limit'} · ${detail.retention_bytes ? bytes(detail.retention_bytes) : 'no size limit'}`),
        el('dt', {}, 'Fsync'), el('dd', {}, JSON.stringify(detail.fsync)),
        el('dt', {}, 'Records kept'), el('dd', {}, number(retained(detail)))));
      lineChart(history.series(['published']), { node: chart, unit: '/s' });
      fill(partitions, table(
        [['Partition', 'number'], ['Log start', 'number'], ['High watermark', 'number'], ['Size', 'number'], ['Segments', 'number'], 'Writes'],
        detail.partition_info.map((p) => [number(p.partition), number(p.log_start_offset), number(p.high_watermark),
          bytes(p.size_bytes), number(p.segments), p.write_error ? el('span', { class: 'bad' }, p.write_error) : badge('ok')])));
    },
    unmount() {},
  };
}

/** Groups whose lag is fetched on the groups page, at most (each is one request a poll). */
const GROUPS_SHOWN_MAX = 50;

export function groupsPage(root) {
  const list = el('div', {});
  fill(root, el('h1', {}, 'Consumer groups'), el('section', { class: 'card' }, list));
  return {
    title: 'Groups',
    async refresh() {
      const { groups } = await get('/v1/groups');
      groups.sort();
      const shown = groups.slice(0, GROUPS_SHOWN_MAX);
      const lags = await Promise.all(shown.map((group) => get(`/v1/groups/${segment(group)}/lag`)));
      fill(list, table(['Group', ['Partitions', 'number'], ['Total lag', 'number']],
        shown.map((group, index) => [link(`/ui/groups/${segment(group)}`, group),
          number(lags[index].partitions.length), number(lags[index].total_lag)]),
        'No consumer group has committed an offset yet.'),
      groups.length > shown.length ? el('p', { class: 'notice' }, `Showing ${shown.length} of ${groups.length} groups.`) : null);
    },
    unmount() {},
  };
}

export function groupPage(root, { group }) {
  const history = new History();
  const total = el('div', {});
  const chart = el('figure', { class: 'chart' });
  const partitions = el('div', {});
  fill(root, el('div', { class: 'crumbs' }, link('/ui/groups', 'Groups'), ' /'), el('h1', {}, group),
    el('div', { class: 'grid' }, card('Lag', total), card('Lag over time (records)', chart)),
    el('section', { class: 'card' }, el('h2', {}, 'Partitions'), partitions));
  return {
    title: group,
    async refresh() {
      const lag = await get(`/v1/groups/${segment(group)}/lag`);
      const perStream = {};
      for (const p of lag.partitions) perStream[p.stream] = (perStream[p.stream] || 0) + p.lag;
      const names = Object.keys(perStream).sort().slice(0, 3);
      history.push(Date.now(), { total: lag.total_lag, ...perStream });
      fill(total, stat(number(lag.total_lag), 'records behind, all partitions', { id: 'total-lag' }));
      lineChart(history.series(['total', ...names]), { node: chart, title: 'Lag in records' });
      fill(partitions, table(
        ['Stream', ['Partition', 'number'], ['Committed', 'number'], ['High watermark', 'number'], ['Lag', 'number']],
        lag.partitions.map((p) => [link(`/ui/streams/${segment(p.stream)}`, p.stream), number(p.partition),
          number(p.committed), number(p.high_watermark), el('span', { class: p.lag > 0 ? 'warn' : 'good' }, number(p.lag))]),
        'This group has no committed offset.'));
    },
    unmount() {},
  };
}
