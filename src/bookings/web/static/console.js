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

async function api(method, path, body, { headers: extra = {}, retried = false } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.access) headers.Authorization = `Bearer ${state.access}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && state.refresh && !retried && (await refreshTokens())) {
    return api(method, path, body, { headers: extra, retried: true });
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

const localDay = (date) => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
const localInput = (date) => `${localDay(date)}T${pad(date.getHours())}:${pad(date.getMinutes())}`;

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
  $("availability").hidden = state.me.role !== "provider";
  $("signed-out").hidden = true;
  $("signed-in").hidden = $("session").hidden = false;
  showFeed(null);
  $("mail-toggle").checked = state.me.emailNotifications;
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
  resetAvailability();
  $("booking-form").elements.day.value = booked = "";
  setBookingMode("any", "Pick a day to see the provider's open slots.");
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
  if ($("booking-form").dataset.mode === "slots") loadSlots();
}

// --- Slots: a provider with a schedule is booked in one of its slots, searched by the browser's own day -------

// The search reads the day in the browser's zone, so "Tuesday" means this browser's Tuesday; the slots come back in
// UTC and are shown in the same zone. If the service does not know the zone's name, the provider's zone is used.
let searchZone = Intl.DateTimeFormat().resolvedOptions().timeZone || null;
let slotsVersion = 0;
let booked = ""; // "Booked 09:00 – 10:00. ", said until the provider or the day changes
const slotTime = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const slotDay = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const NO_SCHEDULE = "/problems/availability-not-found";

// "slots": the day's slots are buttons; "any": the start and end fields (a provider without a schedule).
function setBookingMode(mode, hint) {
  const slotsMode = mode === "slots";
  $("booking-form").dataset.mode = mode;
  $("slots").hidden = !slotsMode;
  $("any-time").hidden = $("any-time").disabled = slotsMode;
  $("booking-submit").hidden = slotsMode;
  $("slot-hint").textContent = hint;
}

async function loadSlots() {
  const form = $("booking-form").elements;
  const providerId = form.providerId.value;
  const day = form.day.value;
  const version = ++slotsVersion;
  if (!providerId || !day) return setBookingMode("any", "Pick a day to see the provider's open slots.");
  const query = new URLSearchParams({ from: day, to: day });
  if (searchZone) query.set("timeZone", searchZone);
  $("slots").setAttribute("aria-busy", "true");
  try {
    const found = await api("GET", `/v1/providers/${providerId}/slots?${query}`);
    if (version === slotsVersion) renderSlots(found);
  } catch (error) {
    if (version !== slotsVersion) return; // the provider or the day changed meanwhile
    if (searchZone && error.problem?.errors?.some((e) => e.field === "query.timeZone")) {
      searchZone = null;
      return loadSlots();
    }
    const name = state.providers.get(providerId) ?? "This provider";
    if (error.problem?.type === NO_SCHEDULE) {
      moveToDay(day);
      return setBookingMode("any", `${name} has not set their hours: book any time.`);
    }
    setBookingMode("any", "");
    showProblem(error);
  } finally {
    if (version === slotsVersion) $("slots").removeAttribute("aria-busy");
  }
}

// The start and end fields onto the day picked, at the same times (and the same length).
function moveToDay(day) {
  const form = $("booking-form").elements;
  const [start, end] = [new Date(form.start.value), new Date(form.end.value)];
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || form.start.value.startsWith(day)) return;
  const moved = new Date(`${day}T${form.start.value.slice(11)}`);
  form.start.value = localInput(moved);
  form.end.value = localInput(new Date(moved.getTime() + Math.max(end - start, 0)));
}

function renderSlots(found) {
  const theirs = new Intl.DateTimeFormat(undefined, { timeStyle: "short", timeZone: found.providerTimeZone });
  const zone = searchZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  const count = found.slots.length === 1 ? "1 open slot" : `${found.slots.length || "No"} open slots`;
  const where = found.providerTimeZone === zone ? zone : `${zone}; the provider works in ${found.providerTimeZone}`;
  setBookingMode("slots", `${booked}${count} · times in ${where}`);
  $("slots").replaceChildren(
    ...found.slots.map((slot) => {
      const [start, end] = [new Date(slot.startTime), new Date(slot.endTime)];
      const shown = `${slotTime.format(start)} – ${slotTime.format(end)}`;
      const button = h(
        "button",
        {
          type: "button",
          class: "slot",
          "data-testid": "slot",
          "data-start": slot.startTime,
          "data-end": slot.endTime,
          "aria-label": `Book ${shown}, ${slotDay.format(start)}`,
          title: `${theirs.format(start)} – ${theirs.format(end)} in ${found.providerTimeZone}`,
        },
        shown,
      );
      button.addEventListener("click", () => run(button, () => bookSlot(found.providerId, slot, shown)));
      return h("li", {}, button);
    }),
  );
}

async function bookSlot(providerId, slot, shown) {
  const notes = $("booking-form").elements.notes.value.trim();
  await api("POST", "/v1/bookings", {
    providerId,
    startTime: slot.startTime,
    endTime: slot.endTime,
    ...(notes && { notes }),
  });
  $("booking-form").elements.notes.value = "";
  booked = `Booked ${shown}. `;
  await Promise.all([loadBookings(), loadSlots()]);
}

// --- Availability: a provider's weekly hours and the dates with hours of their own ---------------------------

const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const RULES = ["slotLengthMinutes", "slotIntervalMinutes", "bufferBeforeMinutes", "bufferAfterMinutes",
  "minNoticeMinutes", "maxHorizonDays", "maxBookingsPerDay"];
const DEFAULTS = { slotLengthMinutes: 30, bufferBeforeMinutes: 0, bufferAfterMinutes: 0, minNoticeMinutes: 0 };
const INTERVAL = /^(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})$/;
const overrideDay = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeZone: "UTC" });
let availabilityLoaded = false;

const showIntervals = (intervals) => intervals.map((i) => `${i.start}-${i.end}`).join(", ");

// "09:00-12:00, 13:00-17:00" as [{start, end}, ...]; "" is a closed day. The service checks the rest (order,
// overlaps, 24:00 only as an end) and names the field that is wrong.
function parseIntervals(text, label) {
  return text
    .split(/[,;]/)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const match = INTERVAL.exec(part);
      if (!match) {
        throw new ApiError({
          title: "Check the hours",
          detail: `${label}: write each interval as HH:MM-HH:MM, several separated by commas.`,
        });
      }
      const [, h1, m1, h2, m2] = match;
      return { start: `${pad(h1)}:${m1}`, end: `${pad(h2)}:${m2}` };
    });
}

function resetAvailability() {
  availabilityLoaded = false;
  state.schedule = null;
  $("availability-details").open = false;
  $("overrides").replaceChildren();
  $("hours-state").textContent = "";
}

// Loaded when the provider opens the editor (a provider with no schedule yet is answered 404, which is fine).
async function loadAvailability() {
  const id = state.me.id;
  try {
    fillSchedule(await api("GET", `/v1/providers/${id}/availability`));
  } catch (error) {
    if (error.problem?.type !== NO_SCHEDULE) throw error;
    fillSchedule(null);
  }
  availabilityLoaded = true;
  await loadOverrides();
}

function fillSchedule(schedule) {
  state.schedule = schedule;
  const form = $("hours-form").elements;
  form.timeZone.value = schedule?.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (const day of WEEKDAYS) form[day].value = showIntervals(schedule?.weeklyHours[day] ?? []);
  for (const rule of RULES) form[rule].value = schedule?.[rule] ?? DEFAULTS[rule] ?? "";
  if (schedule && schedule.slotIntervalMinutes === schedule.slotLengthMinutes) form.slotIntervalMinutes.value = "";
  $("hours-state").textContent = schedule
    ? `Saved: version ${schedule.version}, ${dayTime.format(new Date(schedule.updatedAt))}.`
    : "No hours set yet: you can be booked at any time until you save some.";
  $("day-fields").disabled = !schedule;
}

function scheduleFrom(form) {
  const number = (name) => (form[name].value === "" ? null : Number(form[name].value));
  const weeklyHours = Object.fromEntries(
    WEEKDAYS.map((day) => [day, parseIntervals(form[day].value, form[day].labels[0].firstChild.textContent.trim())]),
  );
  return {
    timeZone: form.timeZone.value.trim(),
    weeklyHours,
    ...Object.fromEntries(RULES.map((rule) => [rule, number(rule) ?? DEFAULTS[rule] ?? null])),
  };
}

async function saveSchedule(form) {
  const body = scheduleFrom(form.elements);
  const headers = state.schedule ? { "If-Match": `"${state.schedule.version}"` } : {};
  try {
    fillSchedule(await api("PUT", `/v1/providers/${state.me.id}/availability`, body, { headers }));
  } catch (error) {
    if (error.problem?.status !== 412) throw error;
    await loadAvailability(); // changed elsewhere since it was loaded: show what is there now
    const problem = { ...error.problem, detail: `${error.problem.detail ?? ""} The form now shows the saved hours.` };
    throw new ApiError(problem);
  }
}

async function loadOverrides() {
  if (!state.schedule) {
    $("overrides").replaceChildren();
    $("no-overrides").hidden = false;
    return;
  }
  const yesterday = localDay(new Date(Date.now() - 24 * 3600_000)); // the provider's today may be behind ours
  const page = await api("GET", `/v1/providers/${state.me.id}/availability/overrides?from=${yesterday}&limit=100`);
  $("no-overrides").hidden = page.items.length > 0;
  $("overrides").replaceChildren(
    ...page.items.map((o) => {
      const day = overrideDay.format(new Date(`${o.date}T00:00:00Z`));
      const hours = o.intervals.length ? showIntervals(o.intervals) : "closed";
      const remove = h("button", { type: "button", "data-testid": "override-remove" }, "Remove");
      remove.setAttribute("aria-label", `Remove the hours of ${day}: it follows its weekday again`);
      remove.addEventListener("click", () =>
        run(remove, async () => {
          await api("DELETE", `/v1/providers/${state.me.id}/availability/overrides/${o.date}`);
          await loadOverrides();
        }),
      );
      return h(
        "li",
        { "data-testid": "override-row", "data-date": o.date, "data-closed": o.intervals.length === 0 },
        h("span", {}, day),
        h("strong", {}, hours),
        h("span", { class: "muted" }, o.note ?? ""),
        remove,
      );
    }),
  );
}

// --- Wiring -------------------------------------------------------------------------------------------------

onSubmit("login-form", (data) => signIn(data.get("email"), data.get("password")));

onSubmit("register-form", async (data) => {
  const account = Object.fromEntries(["email", "password", "name", "role"].map((k) => [k, data.get(k)]));
  await api("POST", "/v1/auth/register", account);
  await signIn(account.email, account.password);
});

onSubmit("booking-form", async (data, form) => {
  if (form.dataset.mode === "slots") return; // Enter in the notes: a slot is booked by its own button
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

const bookingFields = $("booking-form").elements;
for (const field of [bookingFields.providerId, bookingFields.day]) {
  field.addEventListener("change", () => {
    booked = "";
    loadSlots();
  });
}
bookingFields.day.min = localDay(new Date());

$("availability-details").addEventListener("toggle", () => {
  if ($("availability-details").open && !availabilityLoaded) loadAvailability().catch(showProblem);
});

onSubmit("hours-form", (_, form) => saveSchedule(form).then(loadOverrides));

onSubmit("day-form", async (data, form) => {
  const note = data.get("note").trim();
  const intervals = parseIntervals(data.get("intervals"), "Hours that day");
  const path = `/v1/providers/${state.me.id}/availability/overrides/${data.get("date")}`;
  await api("PUT", path, { intervals, ...(note && { note }) });
  form.elements.intervals.value = form.elements.note.value = "";
  await loadOverrides();
});

// --- Calendar feed and mail preference ---------------------------------------------------------------------

function showFeed(url) {
  $("feed-url").value = url ?? "";
  $("feed-label").hidden = $("feed-revoke").hidden = !url;
  $("calendar-state").textContent = "";
}

$("feed-issue").addEventListener("click", (event) =>
  run(event.currentTarget, async () => {
    const feed = await api("POST", "/v1/users/me/calendar-feed");
    showFeed(feed.url);
    $("feed-url").select();
  }),
);

$("feed-revoke").addEventListener("click", (event) =>
  run(event.currentTarget, async () => {
    await api("DELETE", "/v1/users/me/calendar-feed");
    showFeed(null);
    $("calendar-state").textContent = "The calendar link is off.";
  }),
);

$("mail-toggle").addEventListener("change", (event) => {
  const box = event.currentTarget;
  run(box, async () => {
    try {
      state.me = await api("PATCH", "/v1/users/me", { emailNotifications: box.checked });
      $("calendar-state").textContent = box.checked ? "Mail is on." : "Mail is off.";
    } catch (error) {
      box.checked = !box.checked;
      throw error;
    }
  });
});

const zones = Intl.supportedValuesOf?.("timeZone") ?? [];
$("time-zones").replaceChildren(...["UTC", ...zones.filter((z) => z !== "UTC")].map((z) => h("option", { value: z })));
$("day-form").elements.date.min = localDay(new Date());

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
