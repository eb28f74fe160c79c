/** The event stream against a real server that the suite restarts mid-stream. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { closedPort, nextEvent, restartServer, signedIn, slot, until } from "./support.js";

/**
 * A `WebSocket` whose connections go nowhere (refused at once) while `away` is set, which records every URL it
 * was asked for and every socket it made.
 */
async function flakyNetwork() {
  const nowhere = `ws://127.0.0.1:${await closedPort()}/ws`;
  const network = { away: false, urls: [] as string[], sockets: [] as WebSocket[], WebSocket: WebSocket };
  network.WebSocket = class FlakyWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      network.urls.push(String(url));
      super(network.away ? nowhere : url, protocols);
      network.sockets.push(this);
    }
  };
  return network;
}

test("a drop before the first event resumes from stream.ready's lastId, so nothing made meanwhile is missed", async () => {
  const network = await flakyNetwork();
  const { user: provider } = await signedIn("provider");
  const { client } = await signedIn("user", { WebSocket: network.WebSocket });
  const stream = client.events({ backoff: () => 50 });
  try {
    await stream.ready;
    network.away = true;
    network.sockets.at(-1)?.close(); // the connection drops before any event
    await until(() => !stream.connected, "the stream notices the drop");
    const made = await client.bookings.create({ providerId: provider.id, ...slot() });

    network.away = false;
    await stream.whenConnected();
    const event = await nextEvent(stream);

    assert.match(network.urls.at(-1) ?? "", /\/ws\?since=\d+$/);
    assert.deepEqual([event.event, event.data.id], ["booking.created", made.id]);
  } finally {
    stream.close();
  }
});

test("booking.created arrives over the stream, which resumes after a server restart with no gap or duplicate", async () => {
  // Reconnections go nowhere while `away` is set: the server comes back first, and two changes happen while
  // this client is still gone. They must come on the socket that resumes, once each, before the live ones.
  const network = await flakyNetwork();
  const urls = network.urls;
  const { user: provider } = await signedIn("provider");
  const { client } = await signedIn("user", { WebSocket: network.WebSocket });
  const stream = client.events({ backoff: () => 50 });
  try {
    await stream.ready;
    assert.ok(stream.connected);
    assert.equal(urls.length, 1);
    assert.equal(urls[0]?.includes("token"), false, "the token goes in Sec-WebSocket-Protocol, not the URL");

    const first = await client.bookings.create({ providerId: provider.id, ...slot() });
    const created = await nextEvent(stream);
    assert.equal(created.event, "booking.created");
    assert.equal(created.data.id, first.id);
    assert.equal(created.data.status, "confirmed");
    assert.equal(stream.lastId, created.id);

    network.away = true;
    await restartServer();
    await until(() => !stream.connected && stream.reconnects > 0, "the stream notices the server went away");
    const missed = await client.bookings.create({ providerId: provider.id, ...slot() });
    await client.bookings.cancel(missed.id, { reason: "while the client was away" });
    assert.equal(stream.connected, false);

    network.away = false;
    await stream.whenConnected();
    assert.ok(urls.at(-1)?.endsWith(`/ws?since=${created.id}`), `resumed from ${urls.at(-1)}`);
    const live = await client.bookings.create({ providerId: provider.id, ...slot() });

    const after = [await nextEvent(stream), await nextEvent(stream), await nextEvent(stream)];
    assert.deepEqual(
      after.map((event) => [event.event, event.data.id]),
      [
        ["booking.created", missed.id],
        ["booking.cancelled", missed.id],
        ["booking.created", live.id],
      ],
    );
    const ids = [created.id, ...after.map((event) => event.id)];
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      "in commit order",
    );
    assert.equal(new Set(ids).size, ids.length, "no duplicate");
    const extra = await nextEvent(stream, 500).catch(() => null);
    assert.equal(extra, null, "nothing more: no event twice");
  } finally {
    stream.close();
  }
});
