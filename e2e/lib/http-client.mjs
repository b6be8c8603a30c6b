// A small HTTP client that keeps cookies and does not follow redirects, as a browser's forms do,
// for load and for requests from a chosen source address (node:http, so `localAddress` works:
// any 127.x.y.z is this machine, so a test can be "another client" for the proxy).

import http from 'node:http';

/** What a request got: status, Location (path), body text. */
export class Client {
  /** `base` is the app's URL; `localAddress` the source address of every connection. */
  constructor(base, { localAddress, headers = {} } = {}) {
    this.base = new URL(base);
    this.localAddress = localAddress;
    this.headers = headers;
    this.cookies = new Map();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** The cookie header this client sends. */
  cookieHeader() {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  /** One request; `form` is sent as application/x-www-form-urlencoded, `json` as JSON. */
  request(method, path, { form, json, headers = {}, timeout = 15_000 } = {}) {
    let body;
    const all = { ...this.headers, ...headers };
    if (form) {
      body = new URLSearchParams(form).toString();
      all['content-type'] = 'application/x-www-form-urlencoded';
    } else if (json) {
      body = JSON.stringify(json);
      all['content-type'] = 'application/json';
    }
    if (this.cookies.size) all.cookie = this.cookieHeader();
    const url = new URL(path, this.base);
    return new Promise((resolveResponse, reject) => {
      const req = http.request(url, {
        method, headers: all, agent: this.agent, localAddress: this.localAddress, timeout,
      }, (res) => {
        this.#keepCookies(res.headers['set-cookie'] ?? []);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => { text += chunk; });
        res.on('end', () => resolveResponse({
          status: res.statusCode,
          location: res.headers.location ? new URL(res.headers.location, url).pathname : null,
          text,
        }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeout} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  #keepCookies(lines) {
    for (const line of lines) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** Signs in through the form; resolves with whether it worked (a redirect to /todos). */
  async login(email, password) {
    const response = await this.request('POST', '/login', { form: { email, password } });
    return response.status === 303 && response.location === '/todos';
  }

  close() {
    this.agent.destroy();
  }
}
