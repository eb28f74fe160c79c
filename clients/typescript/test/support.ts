/** What the tests share: the server under test (from the suite that started it), accounts and free slots. */

import { randomBytes } from "node:crypto";
import { createServer } from "node:net";

import { BookingsClient, type BookingEvent, type ClientOptions, type EventStream, type User } from "../src/index.js";

export const BASE_URL = required("BOOKINGS_URL");
export const PASSWORD = "Correct-Horse-9!";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/clients/test_typescript_client.py`);
  return value;
}

/** A client signed in as a new account of `role`, and that account. */
export async function signedIn(
  role: "user" | "provider" = "user",
  options: Partial<ClientOptions> = {},
): Promise<{ client: BookingsClient; user: User }> {
  const client = new BookingsClient({ baseUrl: BASE_URL, ...options });
  const email = `ts-${role}-${randomBytes(5).toString("hex")}@example.com`;
  const user = await client.auth.register({ email, password: PASSWORD, name: `TS ${role}`, role });
  await client.auth.login({ email, password: PASSWORD });
  return { client, user };
}

let slots = 0;
const base = new Date(Date.now() + 60 * 86_400_000);
base.setUTCMinutes(0, 0, 0);

/** A fresh future slot (`startTime`, `endTime`), each call a different one. */
export function slot(hours = 1): { startTime: string; endTime: string } {
  const start = new Date(base.getTime() + slots++ * 2 * 3_600_000);
  const end = new Date(start.getTime() + hours * 3_600_000);
  return { startTime: start.toISOString(), endTime: end.toISOString() };
}

/** Stops the server and starts it again on the same port and database (the suite's control endpoint). */
export async function restartServer(): Promise<void> {
  const response = await fetch(`${required("BOOKINGS_CONTROL_URL")}/restart`, { method: "POST" });
  if (!response.ok) throw new Error(`restart failed: ${response.status} ${await response.text()}`);
}

/** A loopback port nothing listens on: connecting there is refused at once. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** The stream's next event, or an error after `ms`. */
export async function nextEvent(stream: EventStream, ms = 10_000): Promise<BookingEvent> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
  });
  try {
    const result = await Promise.race([stream.next(), timeout]);
    if (result.done) throw new Error("the stream ended");
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 20 ms until it holds, or fails after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
