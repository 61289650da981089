// The real thing: the assetd binary built from this repository, a real
// `assetd origin` serving the demo's sample avatars, and `assetd serve` on
// a socket in a temporary directory.
//
// ASSETD_BIN names a built binary; without it, `go build` makes one.
// Downloads are capped at 8 MiB/s so that the 48 MiB avatar "big" is still
// loading seconds after it started: the cancel tests need a load in flight.

import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { AssetdClient } from '../dist/index.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO, 'clients', 'fixtures');
export const BIG = 'big';
const BIG_BYTES = 48 << 20;
export const LIMIT = 30_000; // ms any one wait may take, however loaded the machine

export async function waitUntil(what, cond, limit = LIMIT) {
  const deadline = Date.now() + limit;
  for (;;) {
    const got = await cond();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${limit} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function env() {
  const e = { ...process.env };
  delete e.ASSETD_SOCKET;
  delete e.ASSETD_CONFIG;
  return e;
}

export class Daemon {
  static async start() {
    const d = new Daemon();
    await d.init();
    return d;
  }

  async init() {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'assetd-node-'));
    this.procs = [];
    this.bin = process.env.ASSETD_BIN ? path.resolve(process.env.ASSETD_BIN) : path.join(this.tmp, 'assetd');
    if (!process.env.ASSETD_BIN) {
      execFileSync('go', ['build', '-o', this.bin, './cmd/assetd'], { cwd: REPO, stdio: 'inherit' });
    }
    this.socket = path.join(this.tmp, 'assetd.sock');
    const src = path.join(this.tmp, 'src');
    const site = path.join(this.tmp, 'site');
    this.src = src;
    this.run('samples', src);
    fs.mkdirSync(path.join(src, BIG));
    fs.writeFileSync(path.join(src, BIG, 'VERSION'), '1\n');
    const block = Buffer.alloc(1 << 20, 0);
    for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
    const fd = fs.openSync(path.join(src, BIG, 'model.splat'), 'w');
    for (let i = 0; i < BIG_BYTES / block.length; i++) fs.writeSync(fd, block);
    fs.closeSync(fd);
    this.run('publish', src, site);

    const origin = this.spawn(['origin', '--root', site, '--listen', '127.0.0.1:0'], 'origin.log', 'pipe');
    const lines = createInterface({ input: origin.stdout });
    this.origin = await new Promise((resolve, reject) => {
      lines.once('line', (l) => (l.startsWith('listening on ') ? resolve(l.slice(13).trim()) : reject(new Error(l))));
      origin.once('exit', (c) => reject(new Error(`assetd origin exited (${c})`)));
    });
    lines.on('line', () => {});

    const config = path.join(this.tmp, 'assetd.toml');
    fs.writeFileSync(config, `
[origin]
url = "${this.origin}"

[fetch]
bytes_per_second = "8MiB"
retry_wait_min = "10ms"
retry_wait_max = "200ms"

[store]
dir = "${path.join(this.tmp, 'state')}"
max_bytes = "1GiB"
reserve_bytes = "0"
self_heal = false
scrub_interval = "0"

[api]
socket = "${this.socket}"
socket_mode = "0600"

[log]
level = "debug"
`);
    const daemon = this.spawn(['serve', '--config', config], 'daemon.log', 'ignore');
    let exited = false;
    daemon.once('exit', () => (exited = true));
    const c = new AssetdClient({ socketPath: this.socket });
    await waitUntil('the daemon answers', async () => {
      if (exited) throw new Error('assetd serve exited: ' + fs.readFileSync(path.join(this.tmp, 'daemon.log'), 'utf8'));
      try {
        return (await c.health()).status === 'ok';
      } catch (err) {
        if (err.code === 'daemonNotRunning') return false;
        throw err;
      }
    });
    c.close();
  }

  run(...args) {
    execFileSync(this.bin, args, { env: env(), stdio: ['ignore', 'ignore', 'inherit'] });
  }

  spawn(args, log, stdout) {
    const p = spawn(this.bin, args, { env: env(), stdio: ['ignore', stdout, fs.openSync(path.join(this.tmp, log), 'w')] });
    this.procs.push(p);
    return p;
  }

  async stop() {
    await Promise.all(
      this.procs.reverse().map(
        (p) =>
          new Promise((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', resolve);
            p.kill('SIGTERM');
          }),
      ),
    );
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
