// AssetdClient against the real daemon and a real assetd origin (harness.mjs).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';

import { AssetdClient, AvatarError, ErrorCode } from '../dist/index.js';
import { BIG, Daemon, LIMIT, waitUntil } from './harness.mjs';

let d;
let client;

before(async () => {
  d = await Daemon.start();
  client = new AssetdClient({ socketPath: d.socket });
});

after(async () => {
  client?.close();
  await d?.stop();
});

const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('load with progress, then a cache hit', async () => {
  const events = [];
  const av = await client.load('rohan', { onProgress: (ev) => events.push(ev) });
  assert.equal(av.avatarId, 'rohan');
  assert.equal(av.state, 'ready');
  assert.equal(events.at(-1).type, 'completed');
  const progress = events.filter((e) => e.type === 'progress');
  assert.ok(progress.length > 0, 'no progress event reached onProgress');
  assert.ok(progress.every((e) => e.progress >= 0 && e.progress <= 1));
  const srcDir = path.join(d.src, 'rohan');
  for (const a of av.assets) {
    assert.equal(av.files[a.path], a.localPath);
    assert.equal(sha256(a.localPath), a.sha256);
    assert.equal(sha256(path.join(srcDir, a.path)), a.sha256);
  }
  assert.ok(!Number.isNaN(Date.parse(av.lastUsed)));

  const again = [];
  const hit = await client.load('rohan', { onProgress: (ev) => again.push(ev) });
  assert.deepEqual(hit.files, av.files);
  assert.equal(again.at(-1).type, 'completed');
  assert.ok(again.slice(0, -1).every((e) => e.bytesDone === 0), 'a cache hit downloads nothing');
  assert.deepEqual((await client.retrieve('rohan')).files, av.files);
  assert.equal(await client.getCacheSize('rohan'), av.sizeBytes);
  assert.ok((await client.getAllCacheSize()) >= av.sizeBytes);
  const stats = await client.getCacheStats();
  assert.ok(stats.totalEntries >= 1 && stats.maxSize > 0);
  assert.ok((await client.list()).avatars.some((a) => a.avatarId === 'rohan'));
  const v = await client.verify('rohan');
  assert.equal(v.checked, av.assets.length);
  assert.equal(v.damaged, undefined);
});

test('an unknown ID', async () => {
  const err = await client.load('nobody-here').then(
    () => assert.fail('loaded'),
    (e) => e,
  );
  assert.ok(err instanceof AvatarError && err instanceof Error);
  assert.equal(err.code, ErrorCode.avatarIDUnrecognized);
  assert.equal(err.avatarId, 'nobody-here');
  assert.equal(err.recovery, 'Check the avatar ID exists and is published.');
  await assert.rejects(client.load('not valid'), { code: 'avatarIDUnrecognized', reason: 'invalidId' });
});

test('not cached: retrieve is null, the cache calls say avatarAssetMissing', async () => {
  assert.equal(await client.retrieve('aria'), null);
  await assert.rejects(client.getCacheSize('aria'), { code: 'avatarAssetMissing', reason: 'notCached' });
  await assert.rejects(client.clear('aria'), { code: 'avatarAssetMissing' });
});

test('an avatar missing locally', async () => {
  const av = await client.load('mei');
  fs.rmSync(av.assets[0].localPath);
  const err = await waitUntil('retrieve sees the file gone', () =>
    client.retrieve('mei').then(
      () => null,
      (e) => e,
    ),
  );
  assert.equal(err.code, ErrorCode.avatarAssetMissing);
  assert.equal(err.reason, 'damaged');
  assert.equal(err.recovery, 'Re-download with AvatarManager.load().');
  const healed = await client.load('mei');
  assert.ok(fs.existsSync(healed.files[av.assets[0].path]));
  assert.deepEqual(await client.clear('mei'), ['mei']);
});

test('cancel from another caller', async () => {
  const mine = new AssetdClient({ socketPath: d.socket });
  let started;
  const progressed = new Promise((r) => (started = r));
  const load = mine.load(BIG, { onProgress: started });
  load.catch(() => {});
  await progressed;
  assert.deepEqual(await client.cancelLoad(BIG), [BIG]);
  await assert.rejects(load, (err) => err instanceof AvatarError && err.code === ErrorCode.cancelled);
  assert.deepEqual(await client.cancelLoad(BIG), []);
  mine.close();
});

test('aborting one waiter leaves the other waiting', async () => {
  const ac = new AbortController();
  let aStarted;
  const aProgress = new Promise((r) => (aStarted = r));
  const bEvents = [];
  let bWake = () => {};
  const a = client.load(BIG, { signal: ac.signal, onProgress: aStarted });
  const b = client.load(BIG, {
    onProgress: (ev) => {
      bEvents.push(ev);
      bWake();
    },
  });
  a.catch(() => {});
  b.catch(() => {});
  await aProgress;
  await waitUntil('b has progress', () => bEvents.length > 0);
  ac.abort();
  await assert.rejects(a, { name: 'AbortError' });
  const seen = bEvents.length;
  const before = bEvents.at(-1).bytesDone;
  await waitUntil('b sees the load move on', () => bEvents.length > seen && bEvents.at(-1).bytesDone > before);
  const loads = (await client.list()).loads;
  assert.deepEqual(
    loads.map((l) => l.avatarId),
    [BIG],
  );
  assert.deepEqual(await client.cancelAllLoading(), [BIG]);
  await assert.rejects(b, { code: 'cancelled' });
});

test('an aborted signal rejects at once', async () => {
  await assert.rejects(client.load('rohan', { signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('events stream', async () => {
  const evs = client.events();
  await evs.ready;
  const load = client.load('aria');
  const types = [];
  for await (const ev of evs) {
    if (ev.avatarId !== 'aria') continue;
    types.push(ev.type);
    if (ev.type === 'completed' || ev.type === 'failed') break;
  }
  const av = await load;
  assert.equal(types.at(-1), 'completed');
  assert.ok(Object.keys(av.files).length > 0);
  assert.equal((await evs.next()).done, true, 'leaving the loop ends the stream');
});

test('events end on abort', async () => {
  const ac = new AbortController();
  const evs = client.events({ signal: ac.signal });
  await evs.ready;
  const next = evs.next();
  ac.abort();
  await assert.rejects(next, { name: 'AbortError' });
});

test('session token and clearLRU', async () => {
  await client.setSessionToken('node-test-token', 'kiosk');
  await assert.rejects(client.setSessionToken(''), { code: 'badRequest' });
  await client.load('rohan');
  assert.ok((await client.clearLRU(0)).includes('rohan'));
  assert.equal(await client.retrieve('rohan'), null);
  await assert.rejects(client.clearLRU(-1), { code: 'badRequest' });
});

test('daemon not running', async () => {
  const sock = path.join(d.tmp, 'none.sock');
  const c = new AssetdClient({ socketPath: sock });
  await assert.rejects(c.getCacheStats(), (err) => {
    assert.equal(err.code, ErrorCode.daemonNotRunning);
    assert.ok(err.message.includes(sock));
    assert.ok(err.recovery.startsWith('Start it with'));
    return true;
  });
  const evs = c.events();
  await assert.rejects(evs.ready, { code: 'daemonNotRunning' });
  c.close();
});

test('socket from ASSETD_SOCKET', () => {
  const old = process.env.ASSETD_SOCKET;
  process.env.ASSETD_SOCKET = d.socket;
  try {
    assert.equal(new AssetdClient().socketPath, d.socket);
    delete process.env.ASSETD_SOCKET;
    assert.equal(new AssetdClient().socketPath, '/run/assetd/assetd.sock');
  } finally {
    if (old !== undefined) process.env.ASSETD_SOCKET = old;
  }
});

void LIMIT;
