// The reference in-car screen: follows /events (server-sent events from
// pitstop-screen, which relays the agent's HMI socket) and posts the
// driver's choice. What may be shown is the agent's decision; the page
// shows what it is told and nothing else.
"use strict";

const $ = (id) => document.getElementById(id);
const KINDS = { refuel: "Fuel", service: "Service", inspection: "Inspection",
  loyalty: "Loyalty", test_drive: "Test drive" };
let current = null; // the offer on screen, or null
let serverTheme = "auto";

// Day or night: the toggle (kept in localStorage) wins, then ?theme=, then
// the program's --theme, then the clock (night from 19:00 to 07:00).
function themeWanted() {
  const saved = localStorage.getItem("pitstop-theme");
  if (saved === "day" || saved === "night") return saved;
  const q = new URLSearchParams(location.search).get("theme");
  if (q === "day" || q === "night") return q;
  if (serverTheme === "day" || serverTheme === "night") return serverTheme;
  const h = new Date().getHours();
  return h >= 19 || h < 7 ? "night" : "day";
}

function applyTheme() {
  const t = themeWanted();
  document.body.className = t;
  $("theme").textContent = t === "night" ? "Day" : "Night";
}

function show(offer) {
  current = offer;
  $("error").textContent = "";
  if (!offer) {
    $("card").hidden = true;
    $("idle").hidden = false;
    return;
  }
  $("kind").textContent = KINDS[offer.kind] || offer.kind;
  $("title").textContent = offer.title;
  $("body").textContent = offer.body;
  $("code").textContent = offer.promo_code;
  $("promo").hidden = !offer.promo_code;
  $("until").textContent = "Valid until " + new Date(offer.valid_until_ms).toLocaleString();
  $("card").dataset.offerId = offer.id;
  $("idle").hidden = true;
  $("card").hidden = false;
}

async function decide(verb) {
  if (!current) return;
  const id = current.id;
  $("accept").disabled = $("dismiss").disabled = true;
  try {
    const r = await fetch("/api/" + verb + "?id=" + encodeURIComponent(id), {
      method: "POST", headers: { "X-Pitstop-Screen": "1" } });
    const body = await r.json();
    if (!r.ok) $("error").textContent = body.error || ("error " + r.status);
    // On success the agent clears the offer; the event stream says so.
  } catch (e) {
    $("error").textContent = "The car did not answer.";
  } finally {
    $("accept").disabled = $("dismiss").disabled = false;
  }
}

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("state", (ev) => {
    const st = JSON.parse(ev.data);
    serverTheme = st.theme;
    applyTheme();
    $("link").className = st.connected ? "up" : "down";
    $("link").textContent = st.connected ? "" : "car not connected";
    show(st.offer);
  });
  es.onerror = () => {
    $("link").className = "down";
    $("link").textContent = "reconnecting…";
    show(null); // nothing stale on screen while the stream is down
  };
}

$("accept").addEventListener("click", () => decide("accept"));
$("dismiss").addEventListener("click", () => decide("dismiss"));
$("theme").addEventListener("click", () => {
  const next = document.body.className === "night" ? "day" : "night";
  localStorage.setItem("pitstop-theme", next);
  applyTheme();
});
applyTheme();
setInterval(applyTheme, 60000); // the clock may cross 19:00 or 07:00
connect();
