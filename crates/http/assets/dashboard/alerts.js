// Alarms: `GET /v1/alerts` (newest first). A broker without the alarms API answers 404; the
// page then says so instead of failing.

import { ApiError, get } from './api.js';
import { badge, el, fill, number, table } from './format.js';

export function alertsPage(root, params, context) {
  let state = 'firing';
  const tabs = el('div', { class: 'tabs', role: 'tablist' });
  const list = el('div', { id: 'alerts' });
  fill(root, el('h1', {}, 'Alarms'), tabs, el('section', { class: 'card' }, list));
  return {
    title: 'Alarms',
    async refresh() {
      // The tab this refresh draws (a click while it waits changes `state`), drawn with its
      // alarms only once they have arrived.
      const shown = state;
      let answer;
      try {
        answer = await get(shown === 'all' ? '/v1/alerts' : '/v1/alerts?state=firing');
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          fill(list, el('p', { class: 'notice', id: 'alarms-unavailable' }, 'Alarms unavailable: this broker has no alarms API.'));
          return;
        }
        throw error;
      }
      fill(tabs, ['firing', 'all'].map((name) => el('button', {
        role: 'tab', class: name === shown ? 'active' : undefined, 'data-state': name, 'aria-selected': String(name === shown),
        onclick: () => { state = name; context.refresh(); },
      }, name)));
      fill(list, table(
        ['State', 'Rule', 'Kind', 'Target', ['Value', 'number'], ['Threshold', 'number'], 'Since', 'Resolved', 'Message'],
        (answer.alerts || []).map((alert) => [badge(alert.state), alert.rule, alert.kind, alert.target,
          number(alert.value), number(alert.threshold), alert.since, alert.resolved_at || '–', alert.message]),
        shown === 'firing' ? 'No alarm is firing.' : 'No alarm so far.'));
    },
    unmount() {},
  };
}
