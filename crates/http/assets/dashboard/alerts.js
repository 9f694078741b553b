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
      fill(tabs, ['firing', 'all'].map((name) => el('button', {
        role: 'tab', class: name === state ? 'active' : undefined, 'aria-selected': String(name === state),
        onclick: () => { state = name; context.refresh(); },
      }, name)));
      let answer;
      try {
        answer = await get(state === 'all' ? '/v1/alerts' : '/v1/alerts?state=firing');
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          fill(list, el('p', { class: 'notice', id: 'alarms-unavailable' }, 'Alarms unavailable: this broker has no alarms API.'));
          return;
        }
        throw error;
      }
      fill(list, table(
        ['State', 'Rule', 'Kind', 'Target', ['Value', 'number'], ['Threshold', 'number'], 'Since', 'Resolved', 'Message'],
        (answer.alerts || []).map((alert) => [badge(alert.state), alert.rule, alert.kind, alert.target,
          number(alert.value), number(alert.threshold), alert.since, alert.resolved_at || '–', alert.message]),
        state === 'firing' ? 'No alarm is firing.' : 'No alarm so far.'));
    },
    unmount() {},
  };
}
