// AssetdClient: node:http over the daemon's Unix socket.

import * as http from 'node:http';

import { AvatarError, ErrorCode, errorFromBody, localError } from './errors.js';
import {
  decodeAvatar,
  decodeEvent,
  decodeList,
  decodeStats,
  decodeVerify,
  type Avatar,
  type AvatarEvent,
  type CacheList,
  type CacheStats,
  type VerifyResult,
} from './types.js';

export const DEFAULT_SOCKET = '/run/assetd/assetd.sock';
const USER_AGENT = 'assetd-node/0.1.0';
// A line of a stream is one event (a completed one carries an avatar, a few
// KiB); a plain answer is a list at most. Far bigger is not the daemon.
const MAX_LINE = 8 << 20;
const MAX_BODY = 16 << 20;

export interface ClientOptions {
  /** The daemon's socket: $ASSETD_SOCKET, then /run/assetd/assetd.sock. */
  socketPath?: string;
}

export interface CallOptions {
  /** Aborts this call (this caller's wait only: a load goes on for the others). */
  signal?: AbortSignal;
}

export interface LoadOptions extends CallOptions {
  /** Sees every event of the load's stream, the last one included. */
  onProgress?: (event: AvatarEvent) => void;
  /** Keep the avatar whatever the cache's quota. */
  pin?: boolean;
  /** Queue behind interactive downloads (preloads). */
  background?: boolean;
}

type Obj = Record<string, unknown>;

function avatarPath(id: string, suffix = ''): string {
  return '/v1/avatars/' + encodeURIComponent(id) + suffix;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * A client of the assetd daemon, with the AvatarKit SDK's AvatarManager
 * names. Calls keep their connections alive; close() ends them.
 */
export class AssetdClient {
  readonly socketPath: string;
  private readonly agent: http.Agent;
  private readonly open = new Set<http.ClientRequest>();

  constructor(options: ClientOptions = {}) {
    this.socketPath = options.socketPath || process.env.ASSETD_SOCKET || DEFAULT_SOCKET;
    this.agent = new http.Agent({ keepAlive: true });
  }

  /** Ends every call and stream still open and the kept-alive connections. */
  close(): void {
    for (const req of this.open) req.destroy();
    this.open.clear();
    this.agent.destroy();
  }

  /** Sends one request; resolves with the answer once its head is in. */
  private request(method: string, path: string, body: Obj | undefined, signal?: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: http.OutgoingHttpHeaders = { 'User-Agent': USER_AGENT, Host: 'assetd' };
      if (data) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = data.length;
      }
      const req = http.request({ socketPath: this.socketPath, agent: this.agent, method, path, headers });
      this.open.add(req);
      const onAbort = (): void => {
        req.destroy();
        reject(abortReason(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        this.open.delete(req);
        signal?.removeEventListener('abort', onAbort);
      };
      req.on('close', done);
      req.on('error', (err: NodeJS.ErrnoException) => {
        done();
        if (signal?.aborted) return;
        reject(this.transportError(err));
      });
      req.on('response', (res) => {
        res.on('error', () => {}); // reported through the readers below
        resolve(res);
      });
      req.end(data);
    });
  }

  private transportError(err: NodeJS.ErrnoException): AvatarError {
    switch (err.code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
        return localError(ErrorCode.daemonNotRunning, `assetd is not running at ${this.socketPath}`, {}, err);
      case 'EACCES':
      case 'EPERM':
        return localError(ErrorCode.forbidden, `no permission to use the socket ${this.socketPath}`, {}, err);
    }
    return localError(ErrorCode.daemonNotRunning, `talking to assetd at ${this.socketPath} failed: ${err.message}`, {}, err);
  }

  private async readAll(res: http.IncomingMessage, signal?: AbortSignal): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > MAX_BODY) {
          res.destroy();
          throw localError(ErrorCode.internalError, `assetd's answer is over ${MAX_BODY} bytes`);
        }
        parts.push(chunk);
      }
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (err instanceof AvatarError) throw err;
      throw this.transportError(err as NodeJS.ErrnoException);
    }
    return Buffer.concat(parts);
  }

  private static answerError(status: number, data: Buffer): AvatarError {
    try {
      const body = JSON.parse(data.toString('utf8')) as { error?: Obj };
      if (body.error && typeof body.error.code === 'string') return errorFromBody(body.error);
    } catch {
      // below
    }
    return localError(ErrorCode.internalError, `assetd answered ${status} without an error body`);
  }

  private async call(method: string, path: string, opts?: CallOptions, body?: Obj): Promise<Obj | undefined> {
    const res = await this.request(method, path, body, opts?.signal);
    const data = await this.readAll(res, opts?.signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw AssetdClient.answerError(status, data);
    if (data.length === 0) return undefined;
    try {
      return JSON.parse(data.toString('utf8')) as Obj;
    } catch (err) {
      throw localError(ErrorCode.internalError, `assetd's answer is not JSON: ${(err as Error).message}`);
    }
  }

  private async stream(method: string, path: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const res = await this.request(method, path, undefined, signal);
    if (res.statusCode !== 200) {
      throw AssetdClient.answerError(res.statusCode ?? 0, await this.readAll(res, signal));
    }
    return res;
  }

  /** GET /v1/health: {status: "ok", version}. */
  async health(opts?: CallOptions): Promise<{ status: string; version: string }> {
    return (await this.call('GET', '/v1/health', opts)) as { status: string; version: string };
  }

  /**
   * Loads an avatar, or joins its load in flight, and resolves with it once
   * it is cached. A failed load rejects with its AvatarError (code
   * `cancelled` when someone cancelled it). Aborting `signal` rejects with
   * its reason and stops this caller's wait only; the load goes on for the
   * other waiters (cancelLoad stops it for all).
   */
  async load(id: string, opts: LoadOptions = {}): Promise<Avatar> {
    const q = new URLSearchParams();
    if (opts.pin) q.set('pin', 'true');
    if (opts.background) q.set('background', 'true');
    const qs = q.toString();
    const res = await this.stream('POST', avatarPath(id, '/load') + (qs ? '?' + qs : ''), opts.signal);
    try {
      for await (const ev of this.lines(res, opts.signal)) {
        opts.onProgress?.(ev);
        if (ev.type === 'completed') {
          if (!ev.avatar) throw localError(ErrorCode.internalError, 'a completed event without an avatar', { avatarId: id });
          return ev.avatar;
        }
        if (ev.type === 'failed') {
          throw ev.error ?? localError(ErrorCode.internalError, 'a failed event without an error', { avatarId: id });
        }
      }
    } finally {
      res.destroy();
    }
    throw localError(ErrorCode.internalError, "the load's stream ended without a result", { avatarId: id });
  }

  /** Decodes an NDJSON stream. */
  private async *lines(res: http.IncomingMessage, signal?: AbortSignal): AsyncGenerator<AvatarEvent> {
    let buf = '';
    res.setEncoding('utf8');
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) yield AssetdClient.parseLine(line);
        }
        if (buf.length > MAX_LINE) throw localError(ErrorCode.internalError, `a stream line over ${MAX_LINE} bytes`);
      }
      if (signal?.aborted) throw abortReason(signal);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (err instanceof AvatarError) throw err;
      throw this.transportError(err as NodeJS.ErrnoException);
    }
  }

  private static parseLine(line: string): AvatarEvent {
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      o = undefined;
    }
    if (typeof o !== 'object' || o === null || !('type' in o)) {
      throw localError(ErrorCode.internalError, 'assetd sent a stream line that is not an event');
    }
    return decodeEvent(o as Obj);
  }

  /** The cached avatar, or null when it is not cached; never downloads.
   * A cached avatar with a file gone or damaged rejects with avatarAssetMissing. */
  async retrieve(id: string, opts?: CallOptions): Promise<Avatar | null> {
    try {
      return decodeAvatar((await this.call('GET', avatarPath(id), opts))!);
    } catch (err) {
      if (err instanceof AvatarError && err.code === ErrorCode.avatarAssetMissing && err.reason === 'notCached') return null;
      throw err;
    }
  }

  /** Every cached avatar and every load in flight. */
  async list(opts?: CallOptions): Promise<CacheList> {
    return decodeList((await this.call('GET', '/v1/avatars', opts))!);
  }

  /** Removes one avatar from the cache (avatarAssetMissing if it was not cached). */
  async clear(id: string, opts?: CallOptions): Promise<string[]> {
    return (await this.call('DELETE', avatarPath(id), opts))!.removed as string[];
  }

  /** Removes every avatar; resolves with their IDs. */
  async clearAll(opts?: CallOptions): Promise<string[]> {
    return (await this.call('DELETE', '/v1/avatars', opts))!.removed as string[];
  }

  /** Keeps the keepCount most recently used avatars (and the pinned ones). */
  async clearLRU(keepCount: number, opts?: CallOptions): Promise<string[]> {
    if (!Number.isInteger(keepCount) || keepCount < 0) {
      throw localError(ErrorCode.badRequest, `keepCount must be an integer of 0 or more, not ${keepCount}`);
    }
    return (await this.call('POST', `/v1/cache/lru?keep=${keepCount}`, opts))!.removed as string[];
  }

  /** Cancels the avatar's load for every waiter; resolves with [id] if one was in flight. */
  async cancelLoad(id: string, opts?: CallOptions): Promise<string[]> {
    return (await this.call('DELETE', avatarPath(id, '/load'), opts))!.cancelled as string[];
  }

  /** Cancels every load in flight; resolves with their IDs. */
  async cancelAllLoading(opts?: CallOptions): Promise<string[]> {
    return (await this.call('DELETE', '/v1/loads', opts))!.cancelled as string[];
  }

  /** Bytes one cached avatar takes. */
  async getCacheSize(id: string, opts?: CallOptions): Promise<number> {
    return (await this.call('GET', avatarPath(id, '/size'), opts))!.bytes as number;
  }

  /** Bytes the whole cache takes (each distinct file once). */
  async getAllCacheSize(opts?: CallOptions): Promise<number> {
    return (await this.getCacheStats(opts)).totalSize;
  }

  /** The cache's figures. */
  async getCacheStats(opts?: CallOptions): Promise<CacheStats> {
    return decodeStats((await this.call('GET', '/v1/cache/stats', opts))!);
  }

  /** Re-hashes a cached avatar's files. */
  async verify(id: string, opts?: CallOptions): Promise<VerifyResult> {
    return decodeVerify((await this.call('POST', avatarPath(id, '/verify'), opts))!);
  }

  /** Gives the daemon a new session token (and app ID); loads that failed on
   * the old token are retried. The token is never logged. */
  async setSessionToken(token: string, appId?: string, opts?: CallOptions): Promise<void> {
    await this.call('PUT', '/v1/session', opts, appId ? { sessionToken: token, appId } : { sessionToken: token });
  }

  /**
   * Every event of the daemon, for every avatar, as an async iterator:
   * `for await (const ev of client.events()) ...`. Leaving the loop or
   * aborting `signal` hangs up; `await stream.ready` resolves once the
   * daemon has subscribed this caller.
   */
  events(opts: CallOptions = {}): EventStream {
    return new EventStream(this.stream('GET', '/v1/events', opts.signal), (res) => this.lines(res, opts.signal));
  }
}

/** The stream of events(): an async iterator that starts at once. */
export class EventStream implements AsyncIterableIterator<AvatarEvent> {
  /** Resolves once the daemon has subscribed this caller; rejects as events() would. */
  readonly ready: Promise<void>;
  private readonly it: Promise<{ res: http.IncomingMessage; gen: AsyncGenerator<AvatarEvent> }>;
  private closed = false;

  constructor(res: Promise<http.IncomingMessage>, lines: (res: http.IncomingMessage) => AsyncGenerator<AvatarEvent>) {
    this.it = res.then((r) => ({ res: r, gen: lines(r) }));
    this.ready = this.it.then(() => undefined);
    this.ready.catch(() => {}); // reported by next()
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<AvatarEvent>> {
    if (this.closed) return { done: true, value: undefined };
    const { gen } = await this.it;
    return gen.next();
  }

  /** Hangs up. */
  async return(): Promise<IteratorResult<AvatarEvent>> {
    this.closed = true;
    try {
      const { res, gen } = await this.it;
      res.destroy();
      await gen.return(undefined);
    } catch {
      // the stream never opened: nothing to end
    }
    return { done: true, value: undefined };
  }

  /** Hangs up (as return()). */
  async close(): Promise<void> {
    await this.return();
  }
}
