/**
 * The `/ws` event stream as a resumable async iterator over the browser's `WebSocket`.
 *
 * The access token travels in `Sec-WebSocket-Protocol` (`bookings.v1` plus `bearer.<token>`; the server selects
 * `bookings.v1`), never in the URL. The server's first message, `stream.ready`, says where the stream starts:
 * every event after its `lastId` follows. After any drop the stream reconnects with `?since=<the last id it
 * received>` (the ready's `lastId` until the first event), so nothing is missed, and it drops what it already
 * had, so nothing comes twice. A socket closed with 4401 (the token expired) reconnects at once with a renewed
 * token; 4400 (a `since` the server refuses) ends the stream with an error.
 */

import { AuthenticationError } from "./errors.js";
import type { components } from "./schema.js";

export type EventType = components["schemas"]["EventType"];
export type Booking = components["schemas"]["BookingOut"];

/** One message of the stream: a booking as it is after a change. `id` increases in commit order. */
export interface BookingEvent {
  id: number;
  event: EventType;
  data: Booking;
  occurredAt: string;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface EventStreamOptions {
  /** Resume after this event id (one kept from an earlier stream's `lastId`). */
  since?: number;
  /** Milliseconds to wait before reconnection attempt `attempt` (0, 1, ...); capped exponential by default. */
  backoff?: (attempt: number) => number;
}

/** What a stream needs from its client. */
export interface StreamSource {
  url: string;
  WebSocket: WebSocketConstructor;
  token: (force: boolean) => Promise<string>;
}

export const SUBPROTOCOL = "bookings.v1";
const CLOSE_ABNORMAL = 1006;
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_BAD_REQUEST = 4400;
const REFUSED_AT_ONCE_MS = 5000;
const MAX_UNAUTHORIZED_IN_A_ROW = 2;
const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>([
  "booking.created",
  "booking.updated",
  "booking.cancelled",
  "booking.reminder",
]);

function defaultBackoff(attempt: number): number {
  return Math.min(5000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function isBookingEvent(message: Record<string, unknown>): message is Record<string, unknown> & BookingEvent {
  return (
    typeof message.id === "number" &&
    typeof message.event === "string" &&
    EVENT_TYPES.has(message.event) &&
    typeof message.data === "object" &&
    message.data !== null &&
    typeof message.occurredAt === "string"
  );
}

/**
 * `for await (const event of client.events()) { ... }`. It connects at once; `await stream.ready` to know it
 * is subscribed. `lastId` is the id of the last event handed out: keep it to resume later with `since`.
 * `close()` (or leaving the `for await`) ends it.
 */
export class EventStream implements AsyncIterableIterator<BookingEvent> {
  /** The id of the last event handed out. */
  lastId: number | null;
  /** Reconnections so far (a drop, a refused connection). */
  reconnects = 0;
  /** Resolves once the first `stream.ready` has arrived. */
  readonly ready: Promise<void>;

  readonly #source: StreamSource;
  readonly #backoff: (attempt: number) => number;
  #received: number | null; // where a reconnection resumes
  #events: BookingEvent[] = [];
  #waiting: (() => void)[] = [];
  #onReady: (() => void)[] = [];
  #rejectReady: ((error: Error) => void) | null = null;
  #failure: Error | null = null;
  #closed = false;
  #connected = false;
  #socket: WebSocket | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #attempt = 0;
  #unauthorized = 0;
  #openedAt = 0;

  constructor(source: StreamSource, options: EventStreamOptions = {}) {
    const since = options.since;
    if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) {
      throw new RangeError(`since must be a non-negative integer, got ${since}`);
    }
    this.#source = source;
    this.#backoff = options.backoff ?? defaultBackoff;
    this.#received = since ?? null;
    this.lastId = since ?? null;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#onReady.push(resolve);
      this.#rejectReady = reject;
    });
    this.ready.catch(() => undefined); // a failure is also thrown by next(): not an unhandled rejection
    void this.#connect(false);
  }

  /** Subscribed right now: `stream.ready` arrived on the current socket. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Resolves at the next `stream.ready` (at once while connected). */
  whenConnected(): Promise<void> {
    return this.#connected ? Promise.resolve() : new Promise((resolve) => this.#onReady.push(resolve));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<BookingEvent, undefined>> {
    for (;;) {
      const event = this.#events.shift();
      if (event !== undefined) {
        this.lastId = event.id;
        return { value: event, done: false };
      }
      if (this.#failure !== null) throw this.#failure;
      if (this.#closed) return { value: undefined, done: true };
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  async return(): Promise<IteratorResult<BookingEvent, undefined>> {
    this.close();
    return { value: undefined, done: true };
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#socket?.close(1000, "closed by the client");
    this.#socket = null;
    this.#connected = false;
    this.#wake();
  }

  async #connect(force: boolean): Promise<void> {
    if (this.#closed) return;
    let token: string;
    try {
      token = await this.#source.token(force);
    } catch (error) {
      if (error instanceof AuthenticationError) return this.#fail(error);
      return this.#retry(); // the service is down: the renewal can wait
    }
    if (this.#closed) return;
    const url = this.#received === null ? this.#source.url : `${this.#source.url}?since=${this.#received}`;
    let socket: WebSocket;
    try {
      socket = new this.#source.WebSocket(url, [SUBPROTOCOL, `bearer.${token}`]);
    } catch {
      return this.#retry();
    }
    this.#socket = socket;
    socket.onopen = () => {
      this.#openedAt = Date.now();
    };
    socket.onmessage = (message: MessageEvent) => this.#receive(message.data);
    socket.onclose = (close: CloseEvent) => this.#dropped(socket, close.code);
    // A failed connection: browsers follow it with `close`, Node 20's WebSocket (undici) does not.
    socket.onerror = () => this.#dropped(socket, CLOSE_ABNORMAL);
  }

  #receive(raw: unknown): void {
    let message: unknown;
    try {
      message = typeof raw === "string" ? JSON.parse(raw) : null;
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null) return;
    const fields = message as Record<string, unknown>;
    if (fields.event === "stream.ready" && typeof fields.lastId === "number") {
      this.#received ??= fields.lastId; // a drop before the first event resumes from here, not from "now"
      this.#connected = true;
      this.#attempt = 0;
      this.#unauthorized = 0;
      this.#rejectReady = null;
      for (const resolve of this.#onReady.splice(0)) resolve();
      return;
    }
    if (typeof fields.id !== "number") return;
    if (this.#received !== null && fields.id <= this.#received) return; // delivered at least once: had it
    this.#received = fields.id; // an event type this version does not know is skipped, but never gone back to
    if (isBookingEvent(fields)) {
      this.#events.push({ id: fields.id, event: fields.event, data: fields.data, occurredAt: fields.occurredAt });
      this.#wake();
    }
  }

  #dropped(socket: WebSocket, code: number): void {
    if (socket !== this.#socket) return; // already handled (an error, then its close), or closed by us
    this.#socket = null;
    if (socket.readyState !== socket.CLOSED) socket.close();
    this.#connected = false;
    if (this.#closed) return;
    if (code === CLOSE_UNAUTHORIZED) {
      // The token expired on an open stream (normal), or a renewed token was refused at once (not).
      const atOnce = Date.now() - this.#openedAt < REFUSED_AT_ONCE_MS;
      this.#unauthorized = atOnce ? this.#unauthorized + 1 : 1;
      if (this.#unauthorized > MAX_UNAUTHORIZED_IN_A_ROW) {
        const problem = { type: "about:blank", title: "Not authenticated", status: 401, requestId: "" };
        return this.#fail(new AuthenticationError({ ...problem, detail: "The event stream refused" }, new Headers()));
      }
      void this.#connect(true);
      return;
    }
    if (code === CLOSE_BAD_REQUEST) return this.#fail(new RangeError(`the server refused since=${this.#received}`));
    this.#retry();
  }

  #retry(): void {
    if (this.#closed) return;
    this.reconnects += 1;
    this.#timer = setTimeout(() => void this.#connect(false), this.#backoff(this.#attempt++));
  }

  #fail(error: Error): void {
    this.#failure = error;
    this.#rejectReady?.(error);
    this.#closed = true;
    this.#socket?.close();
    this.#wake();
  }

  #wake(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}
