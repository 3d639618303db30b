// Type definitions for pusher-native: a superset of `pusher` 5.3.4's index.d.ts.
//
// Everything `pusher` declares is declared here with the same names and shapes, so code
// written against `pusher`'s typings compiles unchanged; what is added is marked
// "beyond pusher". Differences are limited to declarations that `pusher` types but does
// not provide at run time (see `WebHook` and `Response` below): using those as values
// compiled against `pusher`'s typings and then threw, and is a type error here.
//
// CommonJS:  import Pusher = require("pusher-native")
//            import Pusher from "pusher-native"          (esModuleInterop, or nodenext)
// ESM:       import Pusher, { RequestError, WebHookError, Token } from "pusher-native"
//            (typed by index.d.mts, which re-exports this file)

import { Agent } from "http"

export = Pusher

declare class Pusher {
  constructor(opts: Pusher.Options)

  /**
   * Triggers `event` on one channel or up to 100 channels (more with `autoChunk`).
   * Resolves with the API's response; rejects with a `Pusher.RequestError`.
   */
  trigger(
    channel: string | Array<string>,
    event: string,
    data: any,
    params?: Pusher.TriggerParams
  ): Promise<Pusher.Response>

  /** Up to 10 events in one request (more with `autoChunk`). */
  triggerBatch(events: Array<Pusher.BatchEvent>): Promise<Pusher.Response>

  get(opts: Pusher.GetOptions): Promise<Pusher.Response>
  post(opts: Pusher.PostOptions): Promise<Pusher.Response>

  /**
   * @deprecated Use authorizeChannel
   */
  authenticate(
    socketId: string,
    channel: string,
    data?: Pusher.PresenceChannelData
  ): Pusher.ChannelAuthResponse

  authorizeChannel(
    socketId: string,
    channel: string,
    data?: Pusher.PresenceChannelData
  ): Pusher.ChannelAuthResponse

  authenticateUser(
    socketId: string,
    userData: Pusher.UserChannelData
  ): Pusher.UserAuthResponse

  sendToUser(userId: string, event: string, data: any): Promise<Pusher.Response>

  terminateUserConnections(userId: string): Promise<Pusher.Response>

  /** Reads a webhook request; check `isValid()` before reading its data. */
  webhook(request: Pusher.WebHookRequest): Pusher.WebHook

  createSignedQueryString(opts: Pusher.SignedQueryStringOptions): string

  /**
   * The 32-byte `shared_secret` of a `private-encrypted-` channel: SHA-256 of the
   * channel name and the master key. Needs `encryptionMasterKeyBase64`.
   */
  channelSharedSecret(channel: string): Buffer

  // ---- beyond pusher ----

  /**
   * Resolves once every request this instance has started so far has settled
   * (fulfilled or rejected; it never rejects itself). For serverless handlers that
   * fire triggers without awaiting them.
   */
  flush(): Promise<void>

  /**
   * Checks a webhook request, never throwing for the request itself (only for an unusable
   * `maxAgeMs`): content type, key, signature
   * (constant time), body and, with `maxAgeMs`, freshness. Events on
   * `private-encrypted-` channels come back decrypted.
   */
  verifyWebhook(
    request: Pusher.VerifyWebhookRequest,
    options?: Pusher.VerifyWebhookOptions
  ): Pusher.VerifyWebhookResult

  /**
   * `GET /channels`: the occupied channels (those starting with `filterByPrefix`, if
   * given), each with the attributes asked for in `info`. `user_count` needs a
   * `filterByPrefix` starting with `presence-`. Sends exactly what `get()` sends for
   * `{ path: "/channels", params: { filter_by_prefix, info } }` and rejects as it does;
   * invalid arguments throw synchronously, before any request.
   */
  channels(options?: Pusher.ChannelsQuery): Promise<Pusher.ChannelsResult>

  /**
   * `GET /channels/<name>`: whether the channel is occupied, with the attributes asked
   * for in `info` (`user_count` for presence channels only).
   */
  channel(name: string, options?: Pusher.ChannelQuery): Promise<Pusher.ChannelResult>

  /** `GET /channels/<name>/users`: the ids of the users in a presence channel. */
  users(name: string): Promise<Pusher.UsersResult>
}

declare namespace Pusher {
  export function forCluster(cluster: string, opts: BaseOptions): Pusher
  export function forURL(
    connectionString: string,
    opts?: Partial<Options>
  ): Pusher

  export interface BaseOptions {
    appId: string
    key: string
    secret: string
    useTLS?: boolean
    /** @deprecated Use useTLS */
    encrypted?: boolean
    /** `"http"` or `"https"`; defaults from `useTLS`. */
    scheme?: string
    /** Defaults to 80, or 443 with TLS. */
    port?: string | number
    /** Milliseconds for the whole request; no timeout by default. */
    timeout?: number
    /** Used only for the proxy it carries (https-proxy-agent, http-proxy-agent). */
    agent?: Agent
    /** Base64 of 32 bytes, from which each encrypted channel's key is derived. */
    encryptionMasterKeyBase64?: string
    /** @deprecated Use encryptionMasterKeyBase64 */
    encryptionMasterKey?: string

    // ---- beyond pusher (all opt-in) ----

    /**
     * Sends every request through this proxy, e.g. `"http://proxy:3128"`. pusher's README
     * placeholder `"HTTP_PROXY_URL"` is ignored; anything else that is not an http(s) URL
     * makes the constructor throw (`code: "PUSHER_INVALID_OPTION"`).
     */
    proxy?: string
    /**
     * Extra trusted certificates (PEM), besides Mozilla's roots and NODE_EXTRA_CA_CERTS; a
     * self-signed server certificate given here is accepted. One without a readable
     * certificate makes the constructor throw (`code: "PUSHER_INVALID_OPTION"`).
     */
    ca?: string | Buffer | Array<string | Buffer>
    /** Retries with jittered exponential backoff; see the README for what is retried. */
    retry?: boolean | RetryOptions
    /** Rejects oversize events and batches synchronously, before any request. */
    limits?: boolean | LimitsOptions
    /** Splits large batches and channel lists into concurrent requests. */
    autoChunk?: boolean
    /** Bytes of response body read at most (default 128 MiB); past it the call rejects (`FetchError` type `"max-size"`). `Infinity`: no limit. */
    maxResponseSize?: number
    /** Connections per origin (default 256); more requests wait their turn within `timeout`. */
    maxSockets?: number
  }
  export interface ClusterOptions extends BaseOptions {
    cluster: string
  }
  export interface HostOptions extends BaseOptions {
    host: string
    port?: string | number
  }

  export type Options = ClusterOptions | HostOptions

  /** Beyond pusher. */
  export interface RetryOptions {
    /** Total attempts, the first included. Default 3. */
    attempts?: number
    /** Default 100. */
    minDelayMs?: number
    /** Default 5000. Also the longest `Retry-After` waited for; a longer one ends the retries. */
    maxDelayMs?: number
  }

  /** Beyond pusher. Defaults: 10240 bytes, 10 events, 100 channels. */
  export interface LimitsOptions {
    eventBytes?: number
    batchSize?: number
    channels?: number
  }

  export interface TriggerParams {
    socket_id?: string
    info?: string
  }

  export interface BatchEvent {
    channel: string
    name: string
    data: any
    socket_id?: string
    info?: string
  }

  export type ReservedParams =
    | "auth_key"
    | "auth_timestamp"
    | "auth_version"
    | "auth_signature"
    | "body_md5"

  // Any key except the reserved ones (as pusher declares it): a reserved key must fit
  // the right-hand side of the intersection, where its type is `never`.
  export type Params = { [key: string]: any } & {
    [K in ReservedParams]?: never
  }

  export interface RequestOptions {
    path: string
    params?: Params
  }
  export type GetOptions = RequestOptions
  export interface PostOptions extends RequestOptions {
    /**
     * Sent as `JSON.stringify(body)` (pusher declares `string`; an object is what the
     * API expects, and a string is sent as a JSON string).
     */
    body: any
  }
  export interface SignedQueryStringOptions {
    method: string
    path: string
    body?: string | Buffer
    params?: Params
  }

  /**
   * @deprecated Use ChannelAuthResponse
   */
  export interface AuthResponse {
    auth: string
    channel_data?: string
    shared_secret?: string
  }

  export interface ChannelAuthResponse {
    auth: string
    channel_data?: string
    shared_secret?: string
  }

  export interface UserAuthResponse {
    auth: string
    user_data: string
  }

  export interface PresenceChannelData {
    user_id: string
    user_info?: {
      [key: string]: any
    }
  }

  export interface UserChannelData {
    id: string
    [key: string]: any
  }

  export interface WebHookRequest {
    headers: object
    rawBody: string
  }

  export interface Event {
    name: string
    channel: string
    event: string
    data: string
    socket_id: string
    /** Present on presence and client events. */
    user_id?: string
  }

  export interface WebHookData {
    time_ms: number
    events: Array<Event>
  }

  /**
   * An app key and secret. `pusher` types `Token` as this plain shape and takes plain
   * objects wherever a token is expected (`webhook.isValid([{ key, secret }])`), so the
   * type `Pusher.Token` stays that shape and `const t: Pusher.Token = { key, secret }`
   * keeps compiling. The value `Pusher.Token` is the runtime class: `new Pusher.Token(
   * key, secret)` is a `SigningToken` (the same object plus `sign` and `verify`), and
   * `instanceof Pusher.Token` narrows to it.
   */
  export interface Token {
    key: string
    secret: string
  }
  export interface SigningToken extends Token {
    /** Lowercase hex HMAC-SHA256 of `message` under the secret. */
    sign(message: string | Uint8Array): string
    /** Whether `signature` is `sign(message)`, compared in constant time. */
    verify(message: string | Uint8Array, signature: string): boolean
  }
  export interface TokenConstructor {
    new (key: string, secret: string): SigningToken
    readonly prototype: SigningToken
  }
  export const Token: TokenConstructor

  /**
   * What `pusher.webhook(request)` returns.
   *
   * `pusher` declares this as an exported class, but neither it nor pusher-native
   * exports a `WebHook` value (`Pusher.WebHook` is undefined at run time). Declared as
   * an interface, so `new Pusher.WebHook(...)` and `x instanceof Pusher.WebHook` are
   * type errors here instead of run-time TypeErrors, while `Pusher.WebHook` as a type
   * (the common use) works as before.
   */
  export interface WebHook {
    isValid(extraTokens?: Token | Array<Token>): boolean
    isContentTypeValid(): boolean
    isBodyValid(): boolean
    getData(): WebHookData
    getEvents(): Array<Event>
    getTime(): Date
  }

  /** Beyond pusher: what `verifyWebhook` reads. An Express/Node request fits. */
  export interface VerifyWebhookRequest {
    /** A plain object (any header case), `IncomingMessage.headers` or a `Headers`. */
    headers: object | { get(name: string): string | null }
    /** The body exactly as received; preferred over `body`. */
    rawBody?: string | Buffer
    /** Used when `rawBody` is absent, e.g. after `express.raw()` or `express.text()`. */
    body?: string | Buffer
  }

  /** Beyond pusher. */
  export interface VerifyWebhookOptions {
    /**
     * Rejects (`reason: "stale"`) a webhook whose `time_ms` is further away than this many
     * milliseconds. Not a number, or negative: `verifyWebhook` throws
     * (`code: "PUSHER_INVALID_OPTION"`).
     */
    maxAgeMs?: number
    /** Other keys and secrets to accept, e.g. during a key rotation. */
    extraTokens?: Token | Array<Token>
  }

  /** Beyond pusher: why `verifyWebhook` rejected a request. */
  export type VerifyWebhookReason =
    | "content-type"
    | "missing-signature"
    | "unknown-key"
    | "invalid-signature"
    | "invalid-body"
    | "stale"
    | "no-master-key"
    | "decryption-failed"
    | "invalid-request"

  /** Beyond pusher: narrow on `valid` to read `time` or `reason`. */
  export type VerifyWebhookResult =
    | { valid: true; reason?: undefined; events: Array<Event>; time: Date }
    | { valid: false; reason: VerifyWebhookReason; events: Array<Event>; time?: undefined }

  /** Beyond pusher: an attribute `channels()` and `channel()` can ask for. */
  export type ChannelAttribute = "user_count" | "subscription_count"

  /** Beyond pusher: `info` of a query, as a list or as the comma-separated string the API takes. */
  export type ChannelInfo =
    | ChannelAttribute
    | "user_count,subscription_count"
    | "subscription_count,user_count"
    | ReadonlyArray<ChannelAttribute>

  /** Beyond pusher: what `channels()` takes. */
  export interface ChannelsQuery {
    /** Only channels whose name starts with this, e.g. `"presence-"`. */
    filterByPrefix?: string
    info?: ChannelInfo
  }

  /** Beyond pusher: what `channel()` takes. */
  export interface ChannelQuery {
    info?: ChannelInfo
  }

  /** Beyond pusher: the attributes of a channel; each is present when asked for. */
  export interface ChannelCounts {
    /** Distinct users (presence channels). */
    user_count?: number
    /** Connections; on Pusher, only when enabled in the app's settings. */
    subscription_count?: number
  }

  /** Beyond pusher: what `channels()` resolves with. */
  export interface ChannelsResult {
    channels: Record<string, ChannelCounts>
  }

  /** Beyond pusher: what `channel()` resolves with. */
  export interface ChannelResult extends ChannelCounts {
    occupied: boolean
  }

  /** Beyond pusher: a member of a presence channel. */
  export interface PresenceUser {
    id: string
  }

  /** Beyond pusher: what `users()` resolves with. */
  export interface UsersResult {
    users: Array<PresenceUser>
  }

  /**
   * node-fetch v2's `FetchError`, as `RequestError.error` of a failure without a
   * response (its enumerable fields: `message`, `type`, then `errno` and `code`).
   */
  export interface FetchError extends Error {
    name: "FetchError"
    /** node-fetch's type: `"system"` for network and TLS failures, `"max-redirect"`, … */
    type: string
    /**
     * The OS-style or TLS code, as Node reports it: `ECONNREFUSED`, `ECONNRESET`,
     * `ENOTFOUND`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`, … (node-fetch sets
     * it for system errors; pusher-native on every one).
     */
    code?: string
    /** The same as `code` for a system error (node-fetch's field). */
    errno?: string
  }

  /** node-fetch v2's `AbortError`, as `RequestError.error` of a timeout. */
  export interface AbortError extends Error {
    name: "AbortError"
    type: "aborted"
    /** Beyond node-fetch: `"ETIMEDOUT"`. */
    code?: string
  }

  /** A request URL that cannot be used: a `TypeError` with Node's `ERR_INVALID_URL`. */
  export interface InvalidUrlError extends TypeError {
    name: "TypeError"
    code?: string
  }

  /** What `RequestError.error` holds when no response arrived. */
  export type RequestErrorCause = FetchError | AbortError | InvalidUrlError

  /** Beyond pusher: `RequestError.code`. */
  export type RequestErrorCode =
    | "PUSHER_HTTP"
    | "PUSHER_TIMEOUT"
    | "PUSHER_NETWORK"
    | "PUSHER_TLS"

  export class RequestError extends Error {
    constructor(
      message: string,
      url: string,
      error?: Error,
      status?: number,
      body?: string
    )
    /** The request URL, signature included (never the secret). */
    url: string
    /**
     * Why no response arrived: node-fetch's `FetchError` (network and TLS failures) or
     * `AbortError` (a timeout), each with `code`. Undefined when the server answered with
     * an error status (`PUSHER_HTTP`): read `err.error?.code`. (`pusher` declares a
     * required `Error`, which it is not at run time.)
     */
    error?: RequestErrorCause
    status?: number
    body?: string

    // ---- beyond pusher: set on every error the library rejects with ----

    /** `PUSHER_HTTP` (an error status), `PUSHER_TIMEOUT`, `PUSHER_NETWORK` or `PUSHER_TLS`. */
    code?: RequestErrorCode
    /**
     * Whether another attempt is safe and may succeed. For a GET: timeouts, network
     * errors, 429 and 5xx. For a POST, only when nothing can have been delivered: the
     * connection failed before any byte was sent, or 429/503 with `Retry-After`.
     * Certificate/TLS failures are never retryable.
     */
    retryable?: boolean
    /** How many attempts were made (more than 1 only with `retry`). */
    attempts?: number
    /** With `autoChunk`: the indexes of the requests that failed. */
    failedChunks?: number[]
    /** With `autoChunk` (`triggerBatch`): the indexes, in your batch, of the events not accepted. */
    failedEvents?: number[]
    /** With `autoChunk` (`trigger`): the channels the event was not accepted for. */
    failedChannels?: string[]
    /** With `autoChunk`: every failed request's error, in request order. */
    errors?: unknown[]
  }

  export class WebHookError extends Error {
    constructor(
      message: string,
      contentType: string,
      body: string,
      signature: string
    )
    contentType: string
    body: string
    signature: string
  }

  /**
   * The response headers, as node-fetch v2's `Headers` (names are case-insensitive;
   * iteration is sorted by name, repeated headers joined with ", ").
   */
  export interface Headers extends Iterable<[string, string]> {
    get(name: string): string | null
    has(name: string): boolean
    set(name: string, value: string): void
    append(name: string, value: string): void
    delete(name: string): void
    /** Every value of every header, as arrays. */
    raw(): Record<string, string[]>
    forEach(
      callback: (value: string, name: string, headers: Headers) => void,
      thisArg?: any
    ): void
    entries(): IterableIterator<[string, string]>
    keys(): IterableIterator<string>
    values(): IterableIterator<string>
    [Symbol.iterator](): IterableIterator<[string, string]>
  }

  /**
   * What the request methods resolve with: node-fetch v2's `Response`, as `pusher`
   * returns it (written here: no dependency on `@types/node-fetch`). Like `WebHook`,
   * a type only: `pusher` re-exports node-fetch's class in its typings but
   * `Pusher.Response` is undefined at run time.
   */
  export interface Response {
    readonly status: number
    readonly statusText: string
    /** `status` is 200-299. */
    readonly ok: boolean
    readonly url: string
    readonly redirected: boolean
    readonly headers: Headers
    readonly size: number
    readonly timeout: number
    readonly bodyUsed: boolean
    /** The body as a Node stream. */
    readonly body: NodeJS.ReadableStream
    text(): Promise<string>
    json(): Promise<any>
    buffer(): Promise<Buffer>
    arrayBuffer(): Promise<ArrayBuffer>
    clone(): Response
  }

  /**
   * Beyond pusher: the message published on the `node:diagnostics_channel` channel
   * `pusher-native:request` when a request settles.
   */
  export interface RequestDiagnosticsMessage {
    method: string
    /** The path as requested, `/apps/<appId>/…`. */
    path: string
    /** 0 when no response arrived. */
    status: number
    durationMs: number
    attempts: number
    error: RequestError | Error | undefined
  }
}
