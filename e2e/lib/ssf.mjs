// The Shared Signals transmitter of the tests (e2e/ssf/transmitter.mjs) as a child process.

import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { E2E_DIR } from './server.mjs';

/** The bearer the transmitter accepts. */
export const TRANSMITTER_BEARER = 'tx-secret';

/**
 * Starts a transmitter; resolves with { issuer, example(name, vars), stop() } once it is ready.
 * `example` makes it sign and deliver one of its published example payloads (e2e/ssf/examples.json),
 * `vars` naming the subject identifiers to put in it.
 */
export function startTransmitter() {
  const child = spawn(process.execPath, [resolve(E2E_DIR, 'ssf/transmitter.mjs')], {
    env: { ...process.env, SSF_CONFIG: JSON.stringify({ port: 0, bearers: [TRANSMITTER_BEARER] }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ready, fail) => {
    let out = '';
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`the transmitter exited (${code})`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes('\n')) return;
      child.removeAllListeners('exit');
      const { issuer } = JSON.parse(out.split('\n')[0]);
      ready({
        issuer,
        example: async (name, vars) => {
          const response = await fetch(`${issuer}/test/example`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ name, vars }),
          });
          const body = await response.json();
          if (!response.ok) throw new Error(`the transmitter refused the example ${name}: ${JSON.stringify(body)}`);
          return body;
        },
        stop: () => child.kill('SIGTERM'),
      });
    });
  });
}
