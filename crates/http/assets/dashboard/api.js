// The broker's JSON API, as the pages use it. Same origin only: the page is served by the
// broker it shows, so there is no URL to configure and no CORS.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const TIMEOUT_MS = 10000;

/** Calls the API; resolves to the parsed JSON (or null for an empty answer), rejects with
 *  an ApiError carrying the broker's `{"error":{"code","message"}}`. */
export async function api(method, path, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const init = { method, headers: { accept: 'application/json' }, signal: controller.signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'unreachable', `the broker did not answer ${method} ${path}`);
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ApiError(response.status, 'bad_response', `${method} ${path}: not JSON`);
    }
  }
  if (!response.ok) {
    const detail = parsed && parsed.error ? parsed.error : {};
    throw new ApiError(response.status, detail.code || 'http_' + response.status,
      detail.message || `${method} ${path} answered ${response.status}`);
  }
  return parsed;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);

/** One path segment, escaped. */
export const segment = (text) => encodeURIComponent(String(text));
