// The API's JSON shapes (docs/api.md, the Go package apitype). The wire's
// names are camelCase already; decoding keeps the fields this package
// knows, and the tests check it knows every field of the shared fixture.

import { AvatarError, errorFromBody, type ErrorBody } from './errors.js';

/** One file of a cached avatar; open localPath read-only. */
export interface Asset {
  path: string;
  size: number;
  sha256: string;
  localPath: string;
}

/** A cached avatar. `files` maps each asset path to its local path. */
export interface Avatar {
  avatarId: string;
  version: string;
  /** ready, stale, damaged, ... */
  state: string;
  sizeBytes: number;
  /** RFC 3339, as the daemon sent it (nanoseconds included). */
  lastUsed: string;
  pinned: boolean;
  /** origin or import */
  source?: string;
  /** paths of missing or damaged files */
  damaged?: string[];
  assets: Asset[];
  /** asset path -> local path */
  files: Record<string, string>;
}

/** A load in flight. */
export interface Load {
  avatarId: string;
  state: string;
  progress: number;
  bytesDone: number;
  bytesTotal: number;
  background?: boolean;
  /** queued or retrying while it waits; absent while it moves */
  waiting?: 'queued' | 'retrying' | string;
}

export type EventType = 'progress' | 'completed' | 'failed' | 'state';

/**
 * One event of a load's stream or of events(). A completed event carries
 * the avatar, a failed one the error. While a load waits, `waiting` says
 * why (`queued`, `retrying`); while retrying, `attempt` of `maxAttempts`
 * is the attempt to come and `lastError` why the last one failed.
 */
export interface AvatarEvent {
  type: EventType | string;
  avatarId: string;
  state: string;
  progress: number;
  bytesDone: number;
  bytesTotal: number;
  avatar?: Avatar;
  error?: AvatarError;
  bytesReceived?: number;
  waiting?: 'queued' | 'retrying' | string;
  attempt?: number;
  maxAttempts?: number;
  lastError?: string;
  fromCache?: boolean;
}

/** Every cached avatar and every load in flight. */
export interface CacheList {
  avatars: Avatar[];
  loads: Load[];
}

/** The cache's figures; totalSize counts each distinct file once. */
export interface CacheStats {
  totalEntries: number;
  totalSize: number;
  maxSize: number;
  pinned: number;
  damaged: number;
  stale: number;
  blobs: number;
  loadsInFlight: number;
  reserveBytes: number;
  freeBytes: number;
  /** files no cached avatar uses (part of blobs and totalSize) */
  unusedBlobs: number;
  unusedBytes: number;
  /** downloads kept for resume (not part of blobs and totalSize) */
  partials: number;
  partialBytes: number;
  /** whether the daemon holds its periodic refreshes, and why */
  background: Background;
}

/** Held periodic refreshes: outside every refresh window (until windowOpens, RFC 3339) or on a metered link. */
export interface Background {
  held: boolean;
  outsideWindow?: boolean;
  windowOpens?: string;
  meteredLink?: boolean;
}

/** What verify found; `healing`: a re-fetch was started. */
export interface VerifyResult {
  avatarId: string;
  state: string;
  checked: number;
  damaged?: string[];
  healing?: boolean;
}

type Obj = Record<string, unknown>;

function pick<T>(o: Obj, required: readonly string[], optional: readonly string[]): T {
  const out: Obj = {};
  for (const k of required) out[k] = o[k];
  for (const k of optional) if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
  return out as T;
}

const ASSET = ['path', 'size', 'sha256', 'localPath'] as const;
const AVATAR = ['avatarId', 'version', 'state', 'sizeBytes', 'lastUsed', 'pinned'] as const;
const AVATAR_OPT = ['source', 'damaged'] as const;
const LOAD = ['avatarId', 'state', 'progress', 'bytesDone', 'bytesTotal'] as const;
const EVENT = ['type', 'avatarId', 'state', 'progress', 'bytesDone', 'bytesTotal'] as const;
const EVENT_OPT = ['bytesReceived', 'waiting', 'attempt', 'maxAttempts', 'lastError', 'fromCache'] as const;
const STATS = ['totalEntries', 'totalSize', 'maxSize', 'pinned', 'damaged', 'stale', 'blobs',
  'loadsInFlight', 'reserveBytes', 'freeBytes', 'unusedBlobs', 'unusedBytes', 'partials', 'partialBytes'] as const;
const VERIFY = ['avatarId', 'state', 'checked'] as const;

export function decodeAsset(o: Obj): Asset {
  return pick<Asset>(o, ASSET, []);
}

export function decodeAvatar(o: Obj): Avatar {
  const av = pick<Avatar>(o, AVATAR, AVATAR_OPT);
  av.assets = ((o.assets as Obj[] | null) ?? []).map(decodeAsset);
  av.files = Object.fromEntries(av.assets.map((a) => [a.path, a.localPath]));
  return av;
}

export function decodeLoad(o: Obj): Load {
  return pick<Load>(o, LOAD, ['background', 'waiting']);
}

export function decodeEvent(o: Obj): AvatarEvent {
  const ev = pick<AvatarEvent>(o, EVENT, EVENT_OPT);
  if (o.avatar) ev.avatar = decodeAvatar(o.avatar as Obj);
  if (o.error) ev.error = errorFromBody(o.error);
  return ev;
}

export function decodeList(o: Obj): CacheList {
  return {
    avatars: ((o.avatars as Obj[] | null) ?? []).map(decodeAvatar),
    loads: ((o.loads as Obj[] | null) ?? []).map(decodeLoad),
  };
}

export function decodeStats(o: Obj): CacheStats {
  const st = pick<CacheStats>(o, STATS, []);
  st.background = pick<Background>((o.background as Obj | null) ?? { held: false }, ['held'],
    ['outsideWindow', 'windowOpens', 'meteredLink']);
  return st;
}

export function decodeVerify(o: Obj): VerifyResult {
  return pick<VerifyResult>(o, VERIFY, ['damaged', 'healing']);
}

/** The wire form of an avatar (without files, which the daemon does not send). */
export function encodeAvatar(av: Avatar): Obj {
  const { files: _files, ...wire } = av;
  return wire;
}

/** The wire form of an event. */
export function encodeEvent(ev: AvatarEvent): Obj {
  const out: Obj = { ...ev };
  if (ev.avatar) out.avatar = encodeAvatar(ev.avatar);
  if (ev.error) out.error = ev.error.toJSON() as ErrorBody;
  return out;
}

export function encodeList(l: CacheList): Obj {
  return { avatars: l.avatars.map(encodeAvatar), loads: l.loads };
}
