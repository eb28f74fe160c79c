/**
 * `BookingsClient`: the API's operations as typed methods over openapi-fetch, with the types openapi-typescript
 * generated from `/openapi.json` (`schema.ts`). Failures are thrown as `ProblemError`s; an access token that
 * the server refuses is renewed once with the refresh token and the call sent again.
 */

import createFetchClient, { type Client, type Middleware } from "openapi-fetch";

import { AuthenticationError, problemError } from "./errors.js";
import { EventStream, type EventStreamOptions, type WebSocketConstructor } from "./events.js";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
export type User = Schemas["UserOut"];
export type Provider = Schemas["ProviderOut"];
export type Booking = Schemas["BookingOut"];
export type BookingCreate = Schemas["BookingCreate"];
export type BookingPatch = Schemas["BookingPatch"];
export type HistoryEntry = Schemas["HistoryOut"];
export type TokenPair = Schemas["TokenPair"];
export type Registration = Schemas["RegisterIn"];
export type Credentials = Schemas["LoginIn"];
export type BookingWindow = Schemas["BookingWindow"];
export type Page<Item> = Omit<Schemas["Page_BookingOut_"], "items"> & { items: Item[] };

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

export interface ClientOptions {
  /** The service's root, e.g. `https://bookings.example.com` (the API is under `/v1`). */
  baseUrl: string;
  /** Tokens kept from an earlier session; `login()` sets them otherwise. */
  tokens?: Tokens | null;
  /** Called whenever the tokens change (login, refresh, logout, a refused refresh): to persist them. */
  onTokens?: (tokens: Tokens | null) => void;
  fetch?: (request: Request) => Promise<Response>;
  /** The browser's `WebSocket` (the default), or any class with its interface. */
  WebSocket?: WebSocketConstructor;
}

/** What `If-Match` may be given as: the booking as last read, its `version`, or its `ETag`. */
export type Version = Booking | number | string;

export interface WriteOptions {
  /** Only if the booking is still at this version; else a `PreconditionFailedError` and nothing changes. */
  ifMatch?: Version;
  /** The same key with the same body replays the first success instead of applying it twice. */
  idempotencyKey?: string;
}

export interface PageOptions {
  page?: number;
  limit?: number;
  cursor?: string;
}

interface Answer<Data> {
  data?: Data;
  error?: unknown;
  response: Response;
}

const UNAUTHENTICATED = new Set(["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout"]);

export function etag(version: Version): string {
  if (typeof version === "string") return version;
  return `"${typeof version === "number" ? version : version.version}"`;
}

export class BookingsClient {
  /** The typed openapi-fetch client, signed in: for the operations this class has no method for. */
  readonly api: Client<paths>;
  readonly baseUrl: string;
  readonly auth: AuthOperations;
  readonly users: UserOperations;
  readonly bookings: BookingOperations;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #onTokens: ((tokens: Tokens | null) => void) | undefined;
  #tokens: Tokens | null;
  #renewing: Promise<boolean> | null = null;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#tokens = options.tokens ?? null;
    this.#onTokens = options.onTokens;
    this.#WebSocket = options.WebSocket;
    this.api = createFetchClient<paths>({
      baseUrl: this.baseUrl,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.api.use(this.#bearer());
    this.auth = new AuthOperations(this);
    this.users = new UserOperations(this);
    this.bookings = new BookingOperations(this);
  }

  get tokens(): Tokens | null {
    return this.#tokens;
  }

  set tokens(tokens: Tokens | null) {
    this.#tokens = tokens;
    this.#onTokens?.(tokens);
  }

  /** Live booking events over `/ws`, resumed with `since` after every drop: see `EventStream`. */
  events(options: EventStreamOptions = {}): EventStream {
    const WebSocketClass = this.#WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketClass) {
      throw new TypeError("no WebSocket: pass options.WebSocket (on Node 20, run it with --experimental-websocket)");
    }
    const url = `${this.baseUrl.replace(/^http/, "ws")}/ws`;
    return new EventStream({ url, WebSocket: WebSocketClass, token: (force) => this.streamToken(force) }, options);
  }

  /** The access token for a new socket; `force` renews it first (the server closed the last one with 4401). */
  async streamToken(force: boolean): Promise<string> {
    const current = this.#tokens;
    if (current === null) throw notSignedIn();
    if (force && !(await this.#renew(current.accessToken))) throw notSignedIn();
    return (this.#tokens ?? current).accessToken;
  }

  /**
   * Send, renew the token and send again if it was refused (`renew`: not for the auth routes themselves), and
   * return the data or throw the problem.
   */
  async call<Data>(send: () => Promise<Answer<Data>>, renew = true): Promise<Data> {
    const used = this.#tokens?.accessToken;
    let answer = await send();
    if (renew && answer.response.status === 401 && used !== undefined && (await this.#renew(used))) {
      answer = await send();
    }
    if (!answer.response.ok) throw problemError(answer.error, answer.response);
    return answer.data as Data;
  }

  /** A new pair from the refresh token, once however many calls were refused with the same access token. */
  async #renew(refused: string): Promise<boolean> {
    if (this.#tokens === null) return false;
    if (this.#tokens.accessToken !== refused) return true; // renewed meanwhile: just send again
    this.#renewing ??= this.auth
      .refresh()
      .then(() => true)
      .catch((error: unknown) => {
        if (!(error instanceof AuthenticationError)) throw error;
        this.tokens = null; // the refresh token is spent, expired or revoked: sign in again
        return false;
      })
      .finally(() => {
        this.#renewing = null;
      });
    return this.#renewing;
  }

  #bearer(): Middleware {
    return {
      onRequest: ({ request, schemaPath }) => {
        const token = this.#tokens?.accessToken;
        if (token !== undefined && !UNAUTHENTICATED.has(schemaPath) && !request.headers.has("authorization")) {
          request.headers.set("authorization", `Bearer ${token}`);
        }
        return request;
      },
    };
  }
}

function notSignedIn(): AuthenticationError {
  const problem = { type: "about:blank", title: "Not authenticated", status: 401, requestId: "" };
  return new AuthenticationError({ ...problem, detail: "Sign in first (client.auth.login)." }, new Headers());
}

function writeHeaders(options: WriteOptions): Record<string, string> {
  return {
    ...(options.ifMatch !== undefined ? { "If-Match": etag(options.ifMatch) } : {}),
    ...(options.idempotencyKey !== undefined ? { "Idempotency-Key": options.idempotencyKey } : {}),
  };
}

class AuthOperations {
  constructor(private readonly client: BookingsClient) {}

  register(body: Registration): Promise<User> {
    return this.client.call(() => this.client.api.POST("/v1/auth/register", { body }), false);
  }

  async login(body: Credentials): Promise<TokenPair> {
    const pair = await this.client.call(() => this.client.api.POST("/v1/auth/login", { body }), false);
    this.client.tokens = { accessToken: pair.accessToken, refreshToken: pair.refreshToken };
    return pair;
  }

  /** Exchange the refresh token for a new pair (each refresh token works once). */
  async refresh(): Promise<TokenPair> {
    const refreshToken = this.client.tokens?.refreshToken;
    if (refreshToken === undefined) throw notSignedIn();
    const body = { refreshToken };
    const pair = await this.client.call(() => this.client.api.POST("/v1/auth/refresh", { body }), false);
    this.client.tokens = { accessToken: pair.accessToken, refreshToken: pair.refreshToken };
    return pair;
  }

  /** Revoke the refresh token (and every token rotated from it) and forget the tokens. */
  async logout(): Promise<void> {
    const refreshToken = this.client.tokens?.refreshToken;
    if (refreshToken !== undefined) {
      await this.client.call(() => this.client.api.POST("/v1/auth/logout", { body: { refreshToken } }), false);
    }
    this.client.tokens = null;
  }
}

class UserOperations {
  constructor(private readonly client: BookingsClient) {}

  me(): Promise<User> {
    return this.client.call(() => this.client.api.GET("/v1/users/me"));
  }

  providers(query: PageOptions = {}): Promise<Page<Provider>> {
    return this.client.call(() => this.client.api.GET("/v1/providers", { params: { query } }));
  }
}

class BookingOperations {
  constructor(private readonly client: BookingsClient) {}

  create(body: BookingCreate, options: Omit<WriteOptions, "ifMatch"> = {}): Promise<Booking> {
    const header = writeHeaders(options);
    return this.client.call(() => this.client.api.POST("/v1/bookings", { body, params: { header } }));
  }

  list(query: PageOptions & { type?: BookingWindow } = {}): Promise<Page<Booking>> {
    return this.client.call(() => this.client.api.GET("/v1/bookings", { params: { query } }));
  }

  get(bookingId: string): Promise<Booking> {
    const path = { bookingId };
    return this.client.call(() => this.client.api.GET("/v1/bookings/{bookingId}", { params: { path } }));
  }

  /** Reschedule (`startTime`, `endTime`) or edit the notes. */
  update(bookingId: string, body: BookingPatch, options: WriteOptions = {}): Promise<Booking> {
    const params = { path: { bookingId }, header: writeHeaders(options) };
    return this.client.call(() => this.client.api.PATCH("/v1/bookings/{bookingId}", { params, body }));
  }

  reschedule(bookingId: string, times: { startTime: string; endTime: string }, options: WriteOptions = {}) {
    return this.update(bookingId, times, options);
  }

  /** Cancel; safe to repeat (a cancelled booking is answered unchanged). Without a reason no body is sent. */
  cancel(bookingId: string, options: WriteOptions & { reason?: string } = {}): Promise<Booking> {
    const params = { path: { bookingId }, header: writeHeaders(options) };
    const body = options.reason === undefined ? {} : { body: { reason: options.reason } };
    return this.client.call(() => this.client.api.POST("/v1/bookings/{bookingId}/cancel", { params, ...body }));
  }

  history(bookingId: string, query: Omit<PageOptions, "page"> = {}): Promise<Page<HistoryEntry>> {
    const params = { path: { bookingId }, query };
    return this.client.call(() => this.client.api.GET("/v1/bookings/{bookingId}/history", { params }));
  }
}
