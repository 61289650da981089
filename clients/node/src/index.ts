// @assetd/client: the Node client of the assetd daemon (docs/api.md).

export { AssetdClient, EventStream, DEFAULT_SOCKET } from './client.js';
export type { CallOptions, ClientOptions, LoadOptions } from './client.js';
export { AvatarError, ErrorCode, RECOVERY, errorFromBody } from './errors.js';
export type { ErrorBody } from './errors.js';
export type { Asset, Avatar, AvatarEvent, CacheList, CacheStats, EventType, Load, VerifyResult } from './types.js';
export { decodeAvatar, decodeEvent, decodeList, decodeLoad, decodeStats, decodeVerify, encodeAvatar, encodeEvent, encodeList } from './types.js';
