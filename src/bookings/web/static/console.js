// The bookings console. Tokens live in this page's memory only: a reload logs out, and nothing is ever stored.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_BACKOFF_MS = 30_000;
const state = { access: null, refresh: null, me: null, providers: new Map(), socket: null, lastId: null, retry: 0 };
let reconnectTimer = null;
let refreshing = null;
let listVersion = 0;

class ApiError extends Error {
  constructor(problem) {
    super(problem.title);
    this.problem = problem;
  }
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== false && value != null) node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

// --- HTTP: JSON in and out, problem documents become ApiError, one token refresh on a 401 -------------------

async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.access) headers.Authorization = `Bearer ${state.access}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && state.refresh && !retried && (await refreshTokens())) {
    return api(method, path, body, true);
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => ({ title: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new ApiError(payload);
  return payload;
}

// A refresh token works once, so concurrent callers share one refresh.
function refreshTokens() {
  refreshing ??= fetch("/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refreshToken: state.refresh }),
  })
    .then(async (response) => {
      if (!response.ok) return false;
      const tokens = await response.json();
      Object.assign(state, { access: tokens.accessToken, refresh: tokens.refreshToken });
      return true;
    })
    .catch(() => false)
    .finally(() => (refreshing = null));
  return refreshing;
}

function showProblem(error) {
  const problem = error.problem ?? { title: "Could not reach the service", detail: String(error.message ?? error) };
  const parts = [h("strong", {}, problem.title)];
  if (problem.detail && problem.detail !== problem.title) parts.push(h("p", {}, problem.detail));
  if (problem.errors?.length) parts.push(h("ul", {}, ...problem.errors.map((e) => h("li", {}, `${e.field}: ${e.message}`))));
  $("problem").replaceChildren(...parts);
  $("problem").hidden = false;
}

function clearProblem() {
  $("problem").hidden = true;
  $("problem").replaceChildren();
}

// --- Times: datetime-local values carry no offset, so the browser's own offset for that date is added -------

const pad = (n) => String(n).padStart(2, "0");

function rfc3339(local) {
  const offset = -new Date(local).getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const seconds = local.length === 16 ? ":00" : "";
  return `${local}${seconds}${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

function localInput(date) {
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const dayTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const when = (b) => `${dayTime.format(new Date(b.startTime))} – ${timeOnly.format(new Date(b.endTime))}`;

function withWhom(b) {
  const provider = state.providers.get(b.providerId) ?? `provider ${b.providerId.slice(0, 8)}`;
  return state.me?.role === "user" ? provider : `${provider} · user ${b.userId.slice(0, 8)}`;
}

// --- Session ------------------------------------------------------------------------------------------------

async function signIn(email, password) {
  const tokens = await api("POST", "/v1/auth/login", { email, password });
  Object.assign(state, { access: tokens.accessToken, refresh: tokens.refreshToken, lastId: null, retry: 0 });
  state.me = await api("GET", "/v1/users/me");
  $("whoami").textContent = `${state.me.name} <${state.me.email}> · ${state.me.role}`;
  await loadProviders();
  $("booking-form").hidden = state.me.role !== "user";
  $("signed-out").hidden = true;
  $("signed-in").hidden = $("session").hidden = false;
  await loadBookings();
  connect();
}

function signOut(message) {
  const socket = state.socket;
  Object.assign(state, { access: null, refresh: null, me: null, socket: null, lastId: null });
  socket?.close(1000);
  clearTimeout(reconnectTimer);
  setConnection("offline", "offline");
  $("event-log").replaceChildren();
  $("bookings").replaceChildren();
  $("signed-in").hidden = $("session").hidden = true;
  $("signed-out").hidden = false;
  if (message) showProblem({ problem: { title: message } });
}

async function loadProviders() {
  const page = await api("GET", "/v1/providers?limit=100");
  state.providers = new Map(page.items.map((p) => [p.id, p.name]));
  $("booking-form").elements.providerId.replaceChildren(...page.items.map((p) => h("option", { value: p.id }, p.name)));
}

// --- Bookings -----------------------------------------------------------------------------------------------

async function loadBookings() {
  const version = ++listVersion;
  const page = await api("GET", "/v1/bookings?type=upcoming&limit=100");
  if (version === listVersion) renderBookings(page.items); // an older, slower answer never overwrites a newer one
}

function renderBookings(bookings) {
  $("no-bookings").hidden = bookings.length > 0;
  $("bookings").replaceChildren(
    ...bookings.map((b) => {
      const cancel = h("button", { type: "button", "data-testid": "booking-cancel", disabled: b.status !== "confirmed" }, "Cancel");
      cancel.setAttribute("aria-label", `Cancel the booking on ${when(b)}`);
      cancel.addEventListener("click", () =>
        run(cancel, async () => {
          await api("POST", `/v1/bookings/${b.id}/cancel`, {});
          await loadBookings();
        }),
      );
      return h(
        "tr",
        { "data-testid": "booking-row", "data-booking-id": b.id, "data-status": b.status },
        h("td", {}, when(b)),
        h("td", {}, withWhom(b)),
        h("td", {}, h("span", { class: `badge ${b.status}` }, b.status)),
        h("td", {}, b.notes ?? ""),
        h("td", {}, cancel),
      );
    }),
  );
}

// Runs an action from a button: one at a time, with its error shown.
async function run(button, action) {
  clearProblem();
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    showProblem(error);
  } finally {
    button.disabled = false;
  }
}

function onSubmit(id, action) {
  const form = $(id);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form.querySelector("button:not([type=button])"), () => action(new FormData(form), form));
  });
}

// --- Live events: one WebSocket, resumed with ?since=<last id> after a drop, with jittered exponential backoff --

function setConnection(name, text) {
  const badge = $("connection-state");
  badge.dataset.state = name;
  badge.textContent = text;
}

// The access token goes in the subprotocols offered, never in the URL (which proxies log and history keeps): the
// server selects "bookings.v1" and reads the token from the "bearer." entry.
function connect() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (state.lastId !== null) url.searchParams.set("since", state.lastId); // 0 is a position too
  const socket = new WebSocket(url, ["bookings.v1", `bearer.${state.access}`]);
  state.socket = socket;
  setConnection("connecting", "connecting…");
  socket.addEventListener("open", () => {
    state.retry = 0;
    setConnection("live", "live");
    loadBookings().catch(showProblem); // catch up on whatever changed while we were away
  });
  socket.addEventListener("message", (message) => receive(JSON.parse(message.data)));
  socket.addEventListener("close", (event) => {
    if (state.socket === socket) reconnect(event.code);
  });
}

async function reconnect(code) {
  state.socket = null;
  if (code === 4401 && !(await refreshTokens())) return signOut("Your session has expired. Log in again.");
  const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** state.retry++) * (0.5 + Math.random() / 2);
  setConnection("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)} s`);
  reconnectTimer = setTimeout(() => state.access && connect(), delay);
}

function receive(message) {
  if (message.event === "stream.ready") {
    // Where the stream starts: kept as `since`, so that a drop before the first event still resumes without a gap.
    state.lastId = Math.max(state.lastId ?? 0, message.lastId);
    return;
  }
  state.lastId = Math.max(state.lastId ?? 0, message.id);
  const b = message.data;
  const log = $("event-log");
  log.prepend(
    h(
      "li",
      { "data-testid": "event-entry", "data-event-id": message.id, "data-event": message.event, "data-booking-id": b.id },
      h("span", { class: "event-id" }, `#${message.id}`),
      h("strong", {}, message.event),
      h("span", {}, `${when(b)} · ${withWhom(b)}`),
    ),
  );
  while (log.children.length > 100) log.lastElementChild.remove();
  loadBookings().catch(showProblem);
}

// --- Wiring -------------------------------------------------------------------------------------------------

onSubmit("login-form", (data) => signIn(data.get("email"), data.get("password")));

onSubmit("register-form", async (data) => {
  const account = Object.fromEntries(["email", "password", "name", "role"].map((k) => [k, data.get(k)]));
  await api("POST", "/v1/auth/register", account);
  await signIn(account.email, account.password);
});

onSubmit("booking-form", async (data, form) => {
  const notes = data.get("notes").trim();
  await api("POST", "/v1/bookings", {
    providerId: data.get("providerId"),
    startTime: rfc3339(data.get("start")),
    endTime: rfc3339(data.get("end")),
    ...(notes && { notes }),
  });
  form.elements.notes.value = "";
  await loadBookings();
});

$("logout").addEventListener("click", async () => {
  await fetch("/v1/auth/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refreshToken: state.refresh }),
  }).catch(() => null);
  signOut();
});

// Start and end default to the next whole hour tomorrow; moving the start keeps the end an hour after it.
const booking = $("booking-form").elements;
const tomorrow = new Date(Date.now() + 24 * 3600_000);
tomorrow.setMinutes(60, 0, 0);
booking.start.value = localInput(tomorrow);
booking.end.value = localInput(new Date(tomorrow.getTime() + 3600_000));
booking.start.addEventListener("change", () => {
  const start = new Date(booking.start.value);
  if (!Number.isNaN(start.getTime()) && !(new Date(booking.end.value) > start)) {
    booking.end.value = localInput(new Date(start.getTime() + 3600_000));
  }
});
