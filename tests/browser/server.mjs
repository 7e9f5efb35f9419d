// The real server binary for the browser tests: a free port, a fresh data folder, readiness.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const targetDir = process.env.CARGO_TARGET_DIR || new URL('../../target', import.meta.url).pathname;
// The shipped binary by default (`cargo xtask dist`); MALLARD_BIN for another build.
export const binary = process.env.MALLARD_BIN || join(targetDir, 'dist', 'mallard-metrics');

export function freePort() {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// Starts the server with extra environment variables; resolves once /health/ready answers.
export async function startServer(env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'mallard-browser-'));
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const child = spawn(binary, ['--port', String(port), '--data-dir', dataDir], {
    env: { ...process.env, MALLARD_SECRET: 'browser-test-secret-0123456789abcdef', MALLARD_LOG: 'warn',
      // The tests poll the stats until an event shows: a cached empty answer would hide it.
      MALLARD_CACHE_TTL: '0', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${api}/health/ready`)).ok) break;
    } catch {}
    if (i > 300) throw new Error(`the server (${binary}) did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = () => {
    child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { api, stop };
}

// Logs in; returns the `Cookie` header value (mallard_session=…) for later requests.
export async function login(api, password) {
  const response = await fetch(`${api}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  if (response.status !== 200) throw new Error(`login answered ${response.status}`);
  return response.headers.getSetCookie()[0].split(';')[0];
}
