// The demonstrator page: readings arrive by Server-Sent Events (EventSource reconnects by itself and resumes
// after the last row it saw), each with the ingest's verdict, and the browser checks each signature again on its
// own (WebCrypto, ES256, with the public key of the signer's certificate), so the audience sees the verdict does
// not rest on the server alone. No framework, no build step, nothing fetched from outside.
"use strict";

const VERDICTS = {
  "verified": "✓ verified", "bad-signature": "✗ bad signature", "unknown-key": "✗ unknown key",
  "revoked": "✗ revoked", "moved-sim": "✗ moved SIM", "untrusted": "✗ untrusted CA", "replayed": "↺ replayed",
  "stale": "⏱ stale",
  "malformed": "✗ malformed", "out-of-order": "⇅ out of order",
};
const COLOURS = ["#1a5fb4", "#c64600", "#613583", "#26a269", "#a51d2d", "#986a44", "#0b7285", "#5e5c64"];
const DASHES = ["", "10 5", "3 4", "14 4 3 4", "2 2", "8 3 2 3", "6 6", "1 5"];
const KEEP = 300; // rows kept in the table

const readings = [];      // summaries, oldest first
const newest = {};        // device -> [epoch, seq] of the newest verified reading shown
const certificates = {};  // kid -> Promise of {certificate} (null: no registered certificate)
let links = {};
let offered = {};

// ---- CBOR, as much as COSE_Sign1 and SenML need (RFC 8949) -------------------------------------------------

function decodeCbor(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  function length(info) {
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size) throw new Error("indefinite lengths are not used here");
    let n = 0;
    for (let i = 0; i < size; i++) n = n * 256 + bytes[at + i];
    at += size;
    return n;
  }
  function item() {
    if (at >= bytes.length) throw new Error("truncated CBOR");
    const first = bytes[at++], major = first >> 5, info = first & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      if (info === 25) { const h = view.getUint16(at); at += 2; return half(h); }
      if (info === 26) { const f = view.getFloat32(at); at += 4; return f; }
      if (info === 27) { const f = view.getFloat64(at); at += 8; return f; }
      throw new Error("unexpected simple value");
    }
    const n = length(info);
    if (major === 0) return n;
    if (major === 1) return -1 - n;
    if (major === 2 || major === 3) {
      if (at + n > bytes.length) throw new Error("truncated CBOR");
      const chunk = bytes.subarray(at, at + n);
      at += n;
      return major === 2 ? chunk : new TextDecoder().decode(chunk);
    }
    if (major === 4) { const a = []; for (let i = 0; i < n; i++) a.push(item()); return a; }
    if (major === 5) { const m = new Map(); for (let i = 0; i < n; i++) { const k = item(); m.set(k, item()); } return m; }
    return { tag: n, value: item() };
  }
  const out = item();
  if (at !== bytes.length) throw new Error("bytes after the CBOR item");
  return out;
}

function half(h) {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function cborHead(major, n) {
  if (n < 24) return [(major << 5) | n];
  if (n < 256) return [(major << 5) | 24, n];
  if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
  return [(major << 5) | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function sigStructure(protectedHeader, payload) { // ["Signature1", protected, h'', payload], RFC 9052 §4.4
  const context = new TextEncoder().encode("Signature1");
  const parts = [[0x84], cborHead(3, context.length), context, cborHead(2, protectedHeader.length), protectedHeader,
    [0x40], cborHead(2, payload.length), payload];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// ---- the signer's key: the SubjectPublicKeyInfo of its X.509 certificate (DER) ----------------------------------

function derChildren(bytes, start, end) {
  const out = [];
  let at = start;
  while (at < end) {
    const head = at;
    at++; // the tag: single-byte tags are all X.509 uses here
    let n = bytes[at++];
    if (n & 0x80) { let size = n & 0x7f; n = 0; while (size--) n = n * 256 + bytes[at++]; }
    out.push({ tag: bytes[head], head, start: at, end: at + n });
    at += n;
  }
  return out;
}

function spkiOf(der) {
  const [certificate] = derChildren(der, 0, der.length);
  const [tbs] = derChildren(der, certificate.start, certificate.end);
  const fields = derChildren(der, tbs.start, tbs.end).filter((f) => f.tag !== 0xa0); // [0] version
  const spki = fields[5]; // serial, signature, issuer, validity, subject, subjectPublicKeyInfo
  return der.subarray(spki.head, spki.end);
}

function keyOf(kid) {
  if (!(kid in certificates)) {
    certificates[kid] = fetchJson(`/api/certificates/${kid}`).catch(() => null);
  }
  return certificates[kid];
}

async function browserCheck(reading, certificateHex) {
  // "valid" / "invalid": WebCrypto's answer on the signature; "unknown": no certificate, or not a COSE_Sign1
  try {
    const message = decodeCbor(hexBytes(reading.cose));
    const [protectedHeader, , payload, signature] = message.value;
    const key = await crypto.subtle.importKey("spki", spkiOf(hexBytes(certificateHex)),
      { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature,
      sigStructure(protectedHeader, payload));
    return ok ? "valid" : "invalid";
  } catch (e) {
    return "unknown";
  }
}

// ---- the page ------------------------------------------------------------------------------------------------

function hexBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

async function fetchJson(url, options) {
  const res = await fetch(url, options);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function value(r) {
  const v = (r.values || [])[0];
  if (!v) return "—";
  const n = typeof v.value === "number" ? v.value.toFixed(2) : String(v.value);
  return `${n} ${v.unit || ""}`.trim();
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "—";
}

function badge(verdict, reason) {
  return el("span", { className: `badge ${verdict}`, title: reason, dataset: { verdict } }, VERDICTS[verdict] || verdict);
}

function addRow(r, fresh) {
  const tbody = document.querySelector("#readings tbody");
  const browser = el("td", { className: "browser", dataset: { browser: "checking" } }, "checking…");
  const open = el("button", { type: "button", onclick: () => showEvidence(r.id) }, "Evidence");
  const row = el("tr", { id: `reading-${r.id}`, className: fresh ? "new" : "", dataset: { verdict: r.verdict } },
    el("td", {}, r.device || "?"), el("td", {}, value(r)), el("td", {}, when(r.time || r.stored_at)),
    el("td", {}, r.seq == null ? "—" : String(r.seq)), el("td", {}, badge(r.verdict, r.reason), ...(r.outOfOrder ? [" ", badge("out-of-order",
      "verified, but older than a reading of this device shown before it")] : [])), browser, el("td", {}, open));
  tbody.prepend(row);
  while (tbody.rows.length > KEEP) tbody.deleteRow(tbody.rows.length - 1);
  checkInBrowser(r, browser);
}

async function checkInBrowser(r, cell) {
  const cert = r.kid ? await keyOf(r.kid) : null;
  const result = cert && cert.certificate ? await browserCheck(r, cert.certificate.der) : "unknown";
  cell.dataset.browser = result;
  cell.textContent = { valid: "✓ signature valid", invalid: "✗ signature invalid", unknown: "– no certificate" }[result];
}

function drawChart() {
  const svg = document.getElementById("chart"), legend = document.getElementById("legend");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  legend.replaceChildren();
  const points = readings.filter((r) => r.verdict === "verified" && typeof r.values?.[0]?.value === "number")
    .sort((a, b) => (a.time || a.stored_at) - (b.time || b.stored_at) || a.seq - b.seq);
  if (!points.length) return;
  const t = points.map((r) => r.time || r.stored_at), v = points.map((r) => r.values[0].value);
  const [t0, t1] = [Math.min(...t), Math.max(...t)], [v0, v1] = [Math.min(...v), Math.max(...v)];
  const x = (s) => 60 + ((s - t0) / (t1 - t0 || 1)) * 820, y = (n) => 220 - ((n - v0) / (v1 - v0 || 1)) * 190;
  for (const [label, tx, ty, anchor] of [[v1.toFixed(2), 4, 35, "start"], [v0.toFixed(2), 4, 225, "start"],
    [when(t0), 60, 255, "start"], [when(t1), 880, 255, "end"]]) {
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", String(tx)); text.setAttribute("y", String(ty)); text.setAttribute("text-anchor", anchor);
    text.textContent = label;
    svg.append(text);
  }
  const devices = [...new Set(points.map((r) => r.device))].sort();
  devices.forEach((device, i) => {
    const mine = points.filter((r) => r.device === device);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", mine.map((r) => `${x(r.time || r.stored_at)},${y(r.values[0].value)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLOURS[i % COLOURS.length]);
    line.setAttribute("stroke-width", "3");
    if (DASHES[i % DASHES.length]) line.setAttribute("stroke-dasharray", DASHES[i % DASHES.length]);
    svg.append(line);
    const swatch = el("span", { className: "swatch" });
    swatch.style.borderTopColor = COLOURS[i % COLOURS.length];
    swatch.style.borderTopStyle = i % DASHES.length ? "dashed" : "solid";
    legend.append(el("span", {}, swatch, `${device} (${mine.length})`));
  });
}

function drawDevices() {
  const box = document.getElementById("devices");
  const names = Object.keys(links).sort();
  if (!names.length) return;
  box.replaceChildren(...names.map((iccid) => {
    const l = links[iccid], faults = offered.faults?.[iccid];
    const revoked = l.revoked_at != null;
    const card = el("article", { className: "device", id: `device-${iccid}`,
      dataset: { sim: l.sim || "in", network: l.network || "up", identity: revoked ? "revoked" : "valid" } },
      el("h3", {}, `ICCID ${iccid}`),
      el("dl", {}, el("dt", {}, "Identity"), el("dd", { className: "identity" },
        revoked ? `✗ revoked ${new Date(l.revoked_at * 1000).toISOString().slice(11, 19)}` : "valid"),
        el("dt", {}, "SIM"), el("dd", { className: "sim" }, l.sim || "—"),
        el("dt", {}, "Network"), el("dd", { className: "network" }, l.network || "—"),
        el("dt", {}, "TLS"), el("dd", {}, l.tls || "—"),
        el("dt", {}, "Queued on the board"), el("dd", { className: "queued" }, String(l.queued ?? "—")),
        el("dt", {}, "Last error"), el("dd", { className: "last-error" }, l.last_error || "none")));
    if (faults) {
      const simOut = l.sim === "removed", netDown = l.network === "down";
      card.append(el("button", { type: "button", className: "sim-toggle",
        onclick: () => act({ action: simOut ? "insert_sim" : "pull_sim", device: iccid }) },
        simOut ? "Insert the SIM" : "Pull the SIM"), " ",
      el("button", { type: "button", className: "network-toggle",
        onclick: () => act({ action: netDown ? "network_up" : "network_down", device: iccid }) },
      netDown ? "Bring the network back" : "Drop the network"));
      if (offered.swap) {
        card.append(" ", el("button", { type: "button", className: "swap",
          onclick: () => act({ action: "swap_sims", device: iccid }) },
        l.sim === "swapped" ? "Swap the SIMs back" : "Swap SIMs with the next board"));
      }
      if (!revoked && offered.revoke) {
        card.append(" ", el("button", { type: "button", className: "revoke",
          onclick: () => act({ action: "revoke", device: iccid }) }, "Revoke its identity"));
      }
    }
    return card;
  }));
}

async function act(request) {
  const said = document.getElementById("action-result");
  try {
    const res = await fetchJson("/api/actions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request) });
    said.textContent = res.said || "done";
    if (res.links) { links = res.links; drawDevices(); }
  } catch (e) {
    said.textContent = `not done: ${e.message}`;
  }
}

function latestVerified() {
  return [...readings].reverse().find((r) => r.verdict === "verified");
}

async function showEvidence(id) {
  const e = await fetchJson(`/api/readings/${id}`);
  const box = document.getElementById("evidence");
  const cert = e.certificate;
  const browser = cert ? await browserCheck(e, cert.der) : "unknown";
  box.replaceChildren(
    el("p", {}, badge(e.verdict, e.reason), " ", e.reason),
    el("h3", {}, "Checks the ingest ran"),
    el("ul", { className: "checks" }, ...e.checks.map((c) => el("li", { dataset: { result: c.result } },
      `${c.check}${c.result === "not run" ? " (not run)" : ""}`))),
    el("h3", {}, "The browser's own check"),
    el("p", { className: "browser", dataset: { browser } }, { valid: "✓ WebCrypto verifies the ES256 signature with the certificate's key",
      invalid: "✗ WebCrypto finds the signature invalid for the certificate's key", unknown: "– no registered certificate to check it with" }[browser]),
    el("h3", {}, "Signer"),
    el("dl", {}, el("dt", {}, "kid"), el("dd", { className: "hex" }, e.kid || "—"),
      el("dt", {}, "certificate subject"), el("dd", {}, cert ? cert.subject : "no registered certificate"),
      el("dt", {}, "certificate issuer"), el("dd", {}, cert ? cert.issuer : "—")),
    el("h3", {}, "COSE_Sign1 (hex)"), el("p", { className: "hex", id: "evidence-hex" }, e.cose),
    el("h3", {}, "Decoded CBOR"), el("p", { className: "cbor" }, e.cbor),
    el("h3", {}, "Payload (SenML)"), el("p", { className: "cbor" }, e.payload || "not decodable"));
  document.getElementById("drawer").showModal();
}

function arrive(r, fresh) {
  if (r.verdict === "verified") { // verified, but older than one already shown: it came late (or was held back)
    const last = newest[r.device];
    r.outOfOrder = Boolean(last && (r.epoch < last[0] || (r.epoch === last[0] && r.seq < last[1])));
    if (!r.outOfOrder) newest[r.device] = [r.epoch, r.seq];
  }
  readings.push(r);
  if (readings.length > KEEP) readings.shift();
  addRow(r, fresh);
}

async function start() {
  const state = await fetchJson("/api/state");
  offered = state.actions || {};
  links = state.links || {};
  let last = 0;
  for (const r of state.readings) { arrive(r, false); last = r.id; }
  drawChart();
  drawDevices();
  if (offered.tamper) {
    document.getElementById("actions").hidden = false;
    document.getElementById("tamper").onclick = () => { const r = latestVerified(); if (r) act({ action: "tamper", reading: r.id }); };
    document.getElementById("replay").onclick = () => { const r = latestVerified(); if (r) act({ action: "replay", reading: r.id }); };
  }
  const feed = document.getElementById("feed");
  const events = new EventSource(`/api/events?after=${last}`);
  events.onopen = () => { feed.dataset.state = "live"; feed.textContent = "Live: readings appear as the ingest stores them"; };
  events.onerror = () => { feed.dataset.state = "reconnecting"; feed.textContent = "Feed lost: reconnecting…"; };
  events.addEventListener("reading", (m) => { arrive(JSON.parse(m.data), true); drawChart(); });
  events.addEventListener("links", (m) => { links = JSON.parse(m.data); drawDevices(); });
}

document.addEventListener("DOMContentLoaded", start);
