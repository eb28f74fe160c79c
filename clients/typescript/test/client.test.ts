/** `BookingsClient` against a real server: the booking flow, problems as typed errors, token renewal. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AuthenticationError,
  BookingsClient,
  ConflictError,
  NotFoundError,
  PreconditionFailedError,
  ProblemError,
  ValidationError,
} from "../src/index.js";
import { BASE_URL, signedIn, slot } from "./support.js";

describe("the booking flow", () => {
  test("a user logs in, creates, lists, reschedules and cancels a booking", async () => {
    const { user: provider } = await signedIn("provider");
    const { client, user } = await signedIn("user");
    assert.equal((await client.users.me()).id, user.id);

    const booked = await client.bookings.create({ providerId: provider.id, ...slot(), notes: "first visit" });
    assert.equal(booked.status, "confirmed");
    assert.equal(booked.version, 1);
    assert.equal(booked.cancelReason, null); // always sent: required in the generated type

    const page = await client.bookings.list({ type: "upcoming", limit: 10 });
    assert.deepEqual(
      page.items.map((item) => item.id),
      [booked.id],
    );
    assert.equal(page.hasMore, false);

    const times = slot();
    const moved = await client.bookings.reschedule(booked.id, times, { ifMatch: booked, idempotencyKey: "move-1" });
    assert.equal(moved.version, 2);
    assert.equal(moved.startTime, times.startTime.replace(".000Z", "Z"));

    const cancelled = await client.bookings.cancel(booked.id, { reason: "feeling better", ifMatch: moved });
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.cancelReason, "feeling better");
    assert.equal((await client.bookings.get(booked.id)).status, "cancelled");

    const history = await client.bookings.history(booked.id);
    assert.deepEqual(
      history.items.map((entry) => entry.action),
      ["created", "rescheduled", "cancelled"],
    );
  });

  test("cancel without a reason sends no body, and repeating it answers the booking unchanged", async () => {
    const { user: provider } = await signedIn("provider");
    const { client } = await signedIn("user");
    const booked = await client.bookings.create({ providerId: provider.id, ...slot() });

    const cancelled = await client.bookings.cancel(booked.id);
    const again = await client.bookings.cancel(booked.id);

    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.cancelReason, null);
    assert.deepEqual(again, cancelled);
  });
});

describe("problems as typed errors", () => {
  test("a slot already taken is a ConflictError of type slot-taken", async () => {
    const { user: provider } = await signedIn("provider");
    const { client } = await signedIn("user");
    const taken = slot();
    await client.bookings.create({ providerId: provider.id, ...taken });

    const error = await client.bookings.create({ providerId: provider.id, ...taken }).catch((e: unknown) => e);

    assert.ok(error instanceof ConflictError, `not a ConflictError: ${String(error)}`);
    assert.ok(error instanceof ProblemError);
    assert.equal(error.status, 409);
    assert.equal(error.type, "/problems/slot-taken");
    assert.equal(error.title, "Slot taken");
    assert.match(error.requestId, /^[A-Za-z0-9._:-]+$/);
    assert.equal(error.requestId, error.headers.get("x-request-id"));
  });

  test("an invalid booking is a ValidationError naming its fields", async () => {
    const { user: provider } = await signedIn("provider");
    const { client } = await signedIn("user");
    const { startTime, endTime } = slot();

    const error = await client.bookings
      .create({ providerId: provider.id, startTime: endTime, endTime: startTime })
      .catch((e: unknown) => e);

    assert.ok(error instanceof ValidationError, `not a ValidationError: ${String(error)}`);
    assert.equal(error.status, 422);
    assert.deepEqual(
      error.errors.map((field) => field.field),
      ["endTime"],
    );
    assert.equal(error.errors[0]?.type, "end_before_start");
  });

  test("a stale If-Match is a PreconditionFailedError carrying the current ETag", async () => {
    const { user: provider } = await signedIn("provider");
    const { client } = await signedIn("user");
    const booked = await client.bookings.create({ providerId: provider.id, ...slot() });
    await client.bookings.update(booked.id, { notes: "changed" });

    const error = await client.bookings.update(booked.id, { notes: "stale" }, { ifMatch: booked }).catch((e) => e);

    assert.ok(error instanceof PreconditionFailedError);
    assert.equal(error.etag, '"2"');
  });

  test("a booking that is not there is a NotFoundError", async () => {
    const { client } = await signedIn("user");
    const error = await client.bookings.get("00000000-0000-4000-8000-000000000000").catch((e: unknown) => e);
    assert.ok(error instanceof NotFoundError);
  });
});

describe("tokens", () => {
  test("refused access tokens are renewed once with the refresh token, and the calls sent again", async () => {
    const { client } = await signedIn("user");
    const seen: (string | null)[] = [];
    const resumed = new BookingsClient({
      baseUrl: BASE_URL,
      tokens: { accessToken: "expired.or.forged", refreshToken: client.tokens!.refreshToken },
      onTokens: (tokens) => seen.push(tokens?.accessToken ?? null),
    });

    // Three calls refused at once share one refresh: a second refresh would reuse a spent refresh token, and the
    // service would revoke the whole family.
    const [me, page] = await Promise.all([resumed.users.me(), resumed.bookings.list(), resumed.users.me()]);

    assert.equal(me.email.startsWith("ts-user-"), true);
    assert.deepEqual(page.items, []);
    assert.equal(seen.length, 1);
    assert.notEqual(resumed.tokens!.accessToken, "expired.or.forged");
  });

  test("a refresh token that no longer works signs the client out with an AuthenticationError", async () => {
    const { client } = await signedIn("user");
    const stale = { accessToken: "expired.or.forged", refreshToken: client.tokens!.refreshToken };
    await client.auth.logout(); // revokes the refresh token

    const resumed = new BookingsClient({ baseUrl: BASE_URL, tokens: stale });
    const error = await resumed.users.me().catch((e: unknown) => e);

    assert.ok(error instanceof AuthenticationError);
    assert.equal(resumed.tokens, null);
  });
});
