/** `@bookings/client`: the Bookings API from TypeScript, in the browser or on Node. */

export {
  BookingsClient,
  etag,
  type Booking,
  type BookingCreate,
  type BookingPatch,
  type BookingWindow,
  type ClientOptions,
  type Credentials,
  type HistoryEntry,
  type Page,
  type PageOptions,
  type Provider,
  type Registration,
  type TokenPair,
  type Tokens,
  type User,
  type Version,
  type WriteOptions,
} from "./client.js";
export {
  AuthenticationError,
  BadRequestError,
  ConflictError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionFailedError,
  PreconditionRequiredError,
  ProblemError,
  RateLimitedError,
  ServiceUnavailableError,
  ValidationError,
  problemError,
  type FieldError,
  type Problem,
} from "./errors.js";
export {
  EventStream,
  SUBPROTOCOL,
  type BookingEvent,
  type EventStreamOptions,
  type EventType,
  type WebSocketConstructor,
} from "./events.js";
export type { components, operations, paths } from "./schema.js";
