// The shared wire fixture (clients/fixtures/wire.json, generated from the Go
// package apitype): every shape decodes and re-encodes unchanged, so a
// field the daemon sends that this package does not know fails here; every
// error code is known, with its recovery.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import {
  AvatarError,
  ErrorCode,
  RECOVERY,
  decodeAvatar,
  decodeEvent,
  decodeList,
  decodeLoad,
  decodeStats,
  decodeVerify,
  encodeAvatar,
  encodeEvent,
  encodeList,
  errorFromBody,
} from '../dist/index.js';
import { FIXTURES } from './harness.mjs';

const WIRE = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'wire.json'), 'utf8'));
const S = WIRE.shapes;

const ROUND_TRIPS = {
  Asset: (o) => decodeAvatar({ ...S.Avatar, assets: [o] }).assets[0],
  Avatar: (o) => encodeAvatar(decodeAvatar(o)),
  Load: (o) => decodeLoad(o),
  Event: (o) => encodeEvent(decodeEvent(o)),
  List: (o) => encodeList(decodeList(o)),
  Stats: (o) => decodeStats(o),
  VerifyResult: (o) => decodeVerify(o),
  Error: (o) => errorFromBody(o).toJSON(),
};

test('every shape is known', () => {
  const plain = ['Size', 'Health', 'Session', 'Removed', 'Cancelled', 'ErrorResponse'];
  assert.deepEqual(Object.keys(S).sort(), [...Object.keys(ROUND_TRIPS), ...plain].sort());
});

test('shapes round-trip unchanged', () => {
  for (const [name, rt] of Object.entries(ROUND_TRIPS)) {
    assert.deepEqual(JSON.parse(JSON.stringify(rt(S[name]))), S[name], name);
  }
});

test('errors carry every field', () => {
  const e = errorFromBody({ ...S.Error, code: 'failedToDownloadAvatarAssets' });
  assert.ok(e instanceof AvatarError);
  assert.deepEqual(
    [e.phase, e.transient, e.reason, e.avatarId, e.asset, e.httpStatus, e.serverCode, e.hint, e.recovery],
    ['phase', true, 'reason', 'avatarId', 'asset', S.Error.httpStatus, 'serverCode', 'hint', 'recovery'],
  );
  assert.deepEqual(S.ErrorResponse.error, S.Error);
  assert.equal(String(e), 'failedToDownloadAvatarAssets [avatarId asset]: message');
});

test('plain answers have the keys the client reads', () => {
  assert.deepEqual(Object.keys(S.Size), ['bytes']);
  assert.deepEqual(Object.keys(S.Removed), ['removed']);
  assert.deepEqual(Object.keys(S.Cancelled), ['cancelled']);
  assert.deepEqual(Object.keys(S.Session).sort(), ['appId', 'sessionToken']);
  assert.deepEqual(Object.keys(S.Health).sort(), ['status', 'version']);
});

test('every code is known, with its recovery', () => {
  assert.deepEqual(Object.values(ErrorCode).sort(), WIRE.errorCodes.map((c) => c.code).sort());
  for (const c of WIRE.errorCodes) {
    assert.equal(ErrorCode[c.code], c.code);
    assert.equal(RECOVERY[c.code], c.recovery, c.code);
    assert.equal(errorFromBody({ code: c.code, message: 'm', transient: false }).recovery, c.recovery);
  }
});

test('event types and waiting values', () => {
  assert.deepEqual(WIRE.eventTypes.sort(), ['completed', 'failed', 'progress', 'state']);
  assert.deepEqual(WIRE.waiting.sort(), ['queued', 'retrying']);
});
