// Errors: AvatarError, with the AvatarKit SDKs' code strings.

/** The error codes: the AvatarKit SDKs' own, then the local API's. */
export const ErrorCode = {
  appIDUnrecognized: 'appIDUnrecognized',
  sessionTokenInvalid: 'sessionTokenInvalid',
  sessionTokenExpired: 'sessionTokenExpired',
  insufficientBalance: 'insufficientBalance',
  sessionTimeout: 'sessionTimeout',
  concurrentLimitExceeded: 'concurrentLimitExceeded',
  avatarIDUnrecognized: 'avatarIDUnrecognized',
  avatarAssetMissing: 'avatarAssetMissing',
  failedToFetchAvatarMetadata: 'failedToFetchAvatarMetadata',
  failedToDownloadAvatarAssets: 'failedToDownloadAvatarAssets',
  serverError: 'serverError',
  cancelled: 'cancelled',
  badRequest: 'badRequest',
  notFound: 'notFound',
  methodNotAllowed: 'methodNotAllowed',
  forbidden: 'forbidden',
  payloadTooLarge: 'payloadTooLarge',
  internalError: 'internalError',
  daemonNotRunning: 'daemonNotRunning',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What to do about each code, as the daemon says it; errors the client
 * makes itself (daemonNotRunning) carry it too. */
export const RECOVERY: Readonly<Record<ErrorCode, string>> = {
  appIDUnrecognized: 'Verify your app ID in the dashboard.',
  sessionTokenInvalid: 'Verify token generation on your server.',
  sessionTokenExpired: 'Request a new token from your server.',
  insufficientBalance: 'Top up your account in the dashboard.',
  sessionTimeout: 'Reconnect by calling start() again.',
  concurrentLimitExceeded: 'Close other active sessions before starting a new one.',
  avatarIDUnrecognized: 'Check the avatar ID exists and is published.',
  avatarAssetMissing: 'Re-download with AvatarManager.load().',
  failedToFetchAvatarMetadata: 'Check network connectivity and retry.',
  failedToDownloadAvatarAssets: 'Check network connectivity and retry.',
  serverError: 'Check the error message for details.',
  cancelled: 'Load the avatar again if it is still needed.',
  badRequest: 'Fix the request; see docs/api.md.',
  notFound: 'See docs/api.md for the routes.',
  methodNotAllowed: 'See docs/api.md for the routes.',
  forbidden:
    "Run as root, the daemon's user, a member of its group (usermod -aG assetd USER), or a user in api.allowed_uids or api.allowed_gids; browsers may not call the API.",
  payloadTooLarge: 'Send a body of at most 64 KiB.',
  internalError: "Check the daemon's log; retry.",
  daemonNotRunning: "Start it with 'assetd serve' or 'systemctl start assetd'.",
};

/** The codes of the account: refresh the session token (setSessionToken) or fix the account. */
export const ACCOUNT_CODES: ReadonlySet<string> = new Set([
  ErrorCode.appIDUnrecognized,
  ErrorCode.sessionTokenInvalid,
  ErrorCode.sessionTokenExpired,
  ErrorCode.insufficientBalance,
]);

/** The wire form of an error, inside {"error": ...} and failed events. */
export interface ErrorBody {
  code: string;
  message: string;
  transient: boolean;
  phase?: string;
  avatarId?: string;
  recovery?: string;
  hint?: string;
  reason?: string;
  httpStatus?: number;
  serverCode?: string;
  asset?: string;
}

const OPTIONAL = ['phase', 'avatarId', 'recovery', 'hint', 'reason', 'httpStatus', 'serverCode', 'asset'] as const;

/**
 * An assetd error. `code` is the SDK's code string (`avatarAssetMissing`);
 * `phase` the lifecycle phase (metadata, download, verify, store, local);
 * `transient` says a retry with backoff may help; `recovery` what to do;
 * `hint` a line for the operator; `reason` a finer cause (`notCached`,
 * `hashMismatch`); `httpStatus` and `serverCode` what the origin answered.
 */
export class AvatarError extends Error {
  readonly code: ErrorCode | string;
  readonly transient: boolean;
  readonly phase?: string;
  readonly avatarId?: string;
  readonly recovery?: string;
  readonly hint?: string;
  readonly reason?: string;
  readonly httpStatus?: number;
  readonly serverCode?: string;
  readonly asset?: string;

  constructor(body: ErrorBody, options?: { cause?: unknown }) {
    super(body.message, options);
    this.name = 'AvatarError';
    this.code = body.code;
    this.transient = Boolean(body.transient);
    const self = this as unknown as Record<string, unknown>;
    for (const k of OPTIONAL) {
      if (body[k] !== undefined && body[k] !== null && body[k] !== '') self[k] = body[k];
    }
    if (this.recovery === undefined && body.code in RECOVERY) {
      self.recovery = RECOVERY[body.code as ErrorCode];
    }
  }

  /** An account error: refresh the session token or fix the account. */
  get isAccountError(): boolean {
    return ACCOUNT_CODES.has(this.code);
  }

  /** The wire form, as the daemon sends it. */
  toJSON(): ErrorBody {
    const out: ErrorBody = { code: this.code, message: this.message, transient: this.transient };
    const src = this as unknown as Record<string, unknown>;
    const dst = out as unknown as Record<string, unknown>;
    for (const k of OPTIONAL) if (src[k] !== undefined) dst[k] = src[k];
    return out;
  }

  override toString(): string {
    let s = String(this.code);
    if (this.avatarId) s += ` [${this.avatarId}${this.asset ? ' ' + this.asset : ''}]`;
    return this.message ? `${s}: ${this.message}` : s;
  }
}

/** Builds an AvatarError from a wire body. */
export function errorFromBody(body: unknown): AvatarError {
  const b = (body ?? {}) as Partial<ErrorBody>;
  return new AvatarError({
    ...(b as ErrorBody),
    code: typeof b.code === 'string' && b.code ? b.code : ErrorCode.internalError,
    message: typeof b.message === 'string' ? b.message : '',
    transient: Boolean(b.transient),
  });
}

export function localError(code: ErrorCode, message: string, extra: Partial<ErrorBody> = {}, cause?: unknown): AvatarError {
  return new AvatarError({ code, message, transient: false, phase: 'local', ...extra }, { cause });
}
