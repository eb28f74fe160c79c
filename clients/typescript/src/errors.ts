/**
 * Problem documents (RFC 9457) as typed errors: every non-2xx answer is thrown as a `ProblemError`, of the
 * subclass its status names, so `catch (e) { if (e instanceof ConflictError) ... }` needs no status numbers.
 *
 *     ProblemError
 *     ├── BadRequestError            400  malformed body, bad header or cursor
 *     ├── AuthenticationError        401  no token, a bad or expired one (after one refresh), wrong password
 *     ├── PermissionDeniedError      403
 *     ├── NotFoundError              404  missing, or not visible to the caller
 *     ├── ConflictError              409  `type` says which: /problems/slot-taken, /problems/email-taken, ...
 *     ├── PreconditionFailedError    412  `If-Match` is stale; `etag` is the current version
 *     ├── ValidationError            422  `errors` lists the fields
 *     ├── PreconditionRequiredError  428
 *     ├── RateLimitedError           429  `retryAfter` seconds
 *     └── ServiceUnavailableError    503
 */

import type { components } from "./schema.js";

export type Problem = components["schemas"]["Problem"];
export type FieldError = components["schemas"]["FieldError"];

export class ProblemError extends Error {
  readonly problem: Problem;
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly requestId: string;
  readonly headers: Headers;

  constructor(problem: Problem, headers: Headers) {
    super(problem.detail ?? problem.title);
    this.name = new.target.name;
    this.problem = problem;
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.requestId = problem.requestId;
    this.headers = headers;
  }
}

export class BadRequestError extends ProblemError {}
export class AuthenticationError extends ProblemError {}
export class PermissionDeniedError extends ProblemError {}
export class NotFoundError extends ProblemError {}
export class ConflictError extends ProblemError {}
export class PreconditionRequiredError extends ProblemError {}
export class ServiceUnavailableError extends ProblemError {}

export class PreconditionFailedError extends ProblemError {
  /** The booking's current `ETag`, to re-read or to retry knowingly. */
  get etag(): string | null {
    return this.headers.get("etag");
  }
}

export class ValidationError extends ProblemError {
  get errors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

export class RateLimitedError extends ProblemError {
  /** Seconds to wait before retrying (`Retry-After`). */
  get retryAfter(): number | null {
    const value = this.headers.get("retry-after");
    return value === null ? null : Number(value);
  }
}

const BY_STATUS: Record<number, typeof ProblemError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  412: PreconditionFailedError,
  422: ValidationError,
  428: PreconditionRequiredError,
  429: RateLimitedError,
  503: ServiceUnavailableError,
};

function isProblem(body: unknown, status: number): body is Problem {
  if (typeof body !== "object" || body === null) return false;
  const { type, title, status: claimed } = body as Record<string, unknown>;
  return typeof type === "string" && typeof title === "string" && claimed === status;
}

/**
 * The error for a failed answer. A body that is not a problem document (a proxy's HTML page, say) becomes one
 * with `type: "about:blank"` and the status's text, so callers handle one kind of error.
 */
export function problemError(body: unknown, response: Response): ProblemError {
  const problem: Problem = isProblem(body, response.status)
    ? body
    : {
        type: "about:blank",
        title: response.statusText || `HTTP ${response.status}`,
        status: response.status,
        requestId: response.headers.get("x-request-id") ?? "",
        ...(typeof body === "string" && body ? { detail: body.slice(0, 500) } : {}),
      };
  const Kind = BY_STATUS[response.status] ?? ProblemError;
  return new Kind(problem, response.headers);
}
