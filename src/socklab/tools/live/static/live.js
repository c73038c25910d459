// socklab live: presents what the server sends, nothing more. Every text from the network goes
// in through textContent (HTML and SVG alike): a message "<b>x</b><script>" shows as those
// characters. Memory is bounded here too: a ring of steps per connection, a bounded queue while
// paused (what overflows is counted and said, never kept).

const SVG = "http://www.w3.org/2000/svg";
const MAX_STEPS_PER_CONNECTION = 300;
const MAX_CONNECTIONS = 50;
const MAX_PENDING = 5000;
const MAX_STREAM_LINES = 300;
// The ladder's geometry (SVG user units): two columns, one row per arrow.
const WIDTH = 1000, CLIENT_X = 170, SERVER_X = 830, TOP = 64, ROW = 58, MESSAGE_ROW = 22, DROP = 22;
// Colours of the exported SVG (presentation attributes); on screen the page's CSS themes them.
const INK = { fg: "#000000", muted: "#555555", client: "#0044aa", server: "#8a2c00", rst: "#c00000" };

const state = {
  labels: {},
  paused: false,
  pending: [],
  droppedByServer: 0,
  droppedWhilePaused: 0,
  packets: 0,
  notDrawn: 0,
  connections: new Map(), // key -> {key, proto, client, server, steps, hidden, stream}
  selected: null,
  chosenByUser: false,
  sockets: [],
  connected: false,
};

function label(key, values = {}) {
  let text = state.labels[key] ?? key;
  for (const [name, value] of Object.entries(values)) text = text.replace(`{${name}}`, String(value));
  return text;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function svgElement(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- incoming updates --------------------------------------------------------------------------

function receive(message) {
  if (message.capture) showCapture(message.capture);
  if (typeof message.packets === "number") state.packets = message.packets;
  if (typeof message.not_drawn === "number") state.notDrawn = message.not_drawn;
  if (message.dropped) state.droppedByServer += message.dropped;
  if (message.sockets) {
    state.sockets = message.sockets;
    if (!state.paused) renderSockets();
  }
  for (const event of message.events ?? []) {
    if (state.paused) {
      if (state.pending.length >= MAX_PENDING) {
        state.pending.shift();
        state.droppedWhilePaused += 1;
      }
      state.pending.push(event);
    } else {
      apply(event);
    }
  }
  if (!state.paused && message.events?.length) renderConnections();
  renderStatus();
}

function apply(event) {
  if (event.fate) {
    // What a relay did to an arrow already drawn (see tools/live/model.py, RelayFates).
    const step = state.connections.get(event.conn)?.steps.find((s) => s.number === event.step);
    // One arrow may have several (duplicated and reordered): each is said, none twice.
    if (step && !step.fates?.includes(event.fate)) step.fates = [...(step.fates ?? []), event.fate];
    return;
  }
  if (event.recv) {
    // A traced program's receive call (tools/live/model.py, add_trace): in the byte stream,
    // beside the segments whose bytes it returned. Its connection is drawn already.
    const connection = state.connections.get(event.conn);
    if (connection) insertRecv(connection, event);
    return;
  }
  const step = event;
  let connection = state.connections.get(step.conn);
  if (!connection || step.opens) {
    if (connection) state.connections.delete(step.conn); // a new connection on the same key
    connection = { key: step.conn, proto: step.proto, client: step.client, server: step.server,
                   steps: [], hidden: 0, stream: [] };
    state.connections.set(step.conn, connection);
    while (state.connections.size > MAX_CONNECTIONS) {
      const oldest = state.connections.keys().next().value;
      state.connections.delete(oldest);
    }
    if (!state.chosenByUser) state.selected = step.conn;
  }
  connection.steps.push(step);
  if (connection.steps.length > MAX_STEPS_PER_CONNECTION) {
    connection.steps.shift();
    connection.hidden += 1;
  }
  if (step.messages.length) pushStream(connection, step);
}

function pushStream(connection, entry) {
  connection.stream.push(entry);
  if (connection.stream.length > MAX_STREAM_LINES) connection.stream.shift();
}

// Right after the last segment (of the same direction) whose bytes it returned, and after the
// calls already shown there: a merged pair shows one call under one segment, a split message
// several calls under its segments.
function insertRecv(connection, call) {
  const stream = connection.stream;
  let at = stream.length;
  for (let index = stream.length - 1; index >= 0; index -= 1) {
    const entry = stream[index];
    if (!entry.recv && entry.from === call.from && entry.seq !== null && entry.seq <= Math.max(call.last, 1)) {
      at = index + 1;
      break;
    }
  }
  while (at < stream.length && stream[at].recv) at += 1;
  stream.splice(at, 0, call);
  if (stream.length > MAX_STREAM_LINES) stream.shift();
}

function recvLine(call, connection) {
  const values = { call: call.recv, number: call.call_number, count: call.length,
                   first: call.first, last: call.last };
  const fromClient = call.from === connection.client;
  const line = element("div", undefined, `line recv ${fromClient ? "from-client" : "from-server"}`);
  line.dataset.first = call.first;
  line.dataset.last = call.last;
  line.append(element("span", "⤓ ", "arrow"),
              element("span", label(call.length ? "recv_call" : "recv_end", values)));
  return line;
}

function showCapture(capture) {
  const note = document.getElementById("capture-note");
  note.textContent = capture.note;
  note.hidden = !capture.note;
  note.dataset.state = capture.state;
}

// --- rendering ---------------------------------------------------------------------------------

function renderStatus() {
  const parts = [label("packets", { count: state.packets })];
  if (state.notDrawn) parts.push(label("not_drawn", { count: state.notDrawn }));
  parts.push(state.connected ? label("connected") : label("disconnected"));
  if (state.paused) parts.push(label("paused", { count: state.pending.length }));
  document.getElementById("status").textContent = parts.join(" · ");
  const dropped = state.droppedByServer + state.droppedWhilePaused;
  const line = document.getElementById("dropped");
  line.hidden = dropped === 0;
  line.textContent = dropped ? label("dropped", { count: dropped }) : "";
  document.getElementById("step").disabled = !(state.paused && state.pending.length);
}

function renderSockets() {
  const body = document.querySelector("#sockets tbody");
  const rows = state.sockets.map((socket) => {
    const row = element("tr");
    row.classList.add(socket.listening ? "listening" : "per-client", socket.status);
    row.title = socket.listening ? label("listening") : label("per_client");
    const stateCell = element("td");
    if (socket.state === "TIME_WAIT") {
      const explained = element("abbr", socket.state);
      explained.title = label("time_wait");
      stateCell.append(explained);
    } else {
      stateCell.textContent = socket.state;
    }
    const process = socket.pid === null ? socket.process : `${socket.process} (${socket.pid})`;
    row.append(element("td", socket.proto.toUpperCase()), stateCell, element("td", socket.local),
               element("td", socket.remote), element("td", process));
    return row;
  });
  body.replaceChildren(...rows);
  document.getElementById("no-sockets").hidden = rows.length > 0;
}

function renderConnections() {
  const list = document.getElementById("connections");
  const buttons = [...state.connections.values()].map((connection) => {
    const button = element("button", `${connection.proto.toUpperCase()} ${connection.client} ⇄ ${connection.server}`);
    button.type = "button";
    button.dataset.conn = connection.key;
    if (connection.key === state.selected) button.classList.add("selected");
    button.addEventListener("click", () => {
      state.selected = connection.key;
      state.chosenByUser = true;
      renderConnections();
    });
    return button;
  });
  list.replaceChildren(...buttons);
  const connection = state.connections.get(state.selected);
  document.getElementById("no-packets").hidden = Boolean(connection);
  document.getElementById("ladder").replaceChildren(...(connection ? [ladderSvg(connection)] : []));
  renderStream(connection);
}

function describeMessage(message) {
  // What a client sends reads as itself (U:hello); what the server sends is named (reply HELLO).
  const named = ["greeting", "reply", "error"].includes(message.kind);
  const before = message.fragment === "end" || message.fragment === "middle" ? "…" : "";
  const after = message.fragment === "start" || message.fragment === "middle" ? "…" : "";
  const text = `${before}${message.text}${after}`;
  return named ? `${label(`kind_${message.kind}`)}: ${text}` : text;
}

function stepLabel(step) {
  if (step.proto === "udp") return label("datagram");
  let text = step.flags;
  if (step.length) text += ` len=${step.length}`;
  if (step.retransmission) text += ` (${label("retransmission")})`;
  return text;
}

function fateLabel(step) {
  return (step.fates ?? []).map((fate) => ` — ${label(`fate_${fate}`)}`).join("");
}

function ladderSvg(connection) {
  const rows = connection.steps.reduce((sum, step) => sum + rowHeight(step), 0);
  const height = TOP + rows + (connection.hidden ? ROW : 0) + 20;
  const svg = svgElement("svg", {
    xmlns: SVG, viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height,
    "font-family": "DejaVu Sans, Arial, sans-serif", "font-size": 17, role: "img",
  });
  svg.dataset.conn = connection.key;
  svg.append(svgElement("title", {}, `${connection.proto.toUpperCase()} ${connection.client} ⇄ ${connection.server}`));
  const defs = svgElement("defs");
  const marker = svgElement("marker", { id: "arrowhead", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                        markerWidth: 9, markerHeight: 9, orient: "auto-start-reverse" });
  marker.append(svgElement("path", { d: "M0,0 L10,5 L0,10 z", fill: INK.fg }));
  defs.append(marker);
  svg.append(defs, svgElement("rect", { class: "background", x: 0, y: 0, width: WIDTH, height, fill: "#ffffff" }));
  for (const [x, who, where] of [[CLIENT_X, label("client"), connection.client],
                                 [SERVER_X, label("server"), connection.server]]) {
    svg.append(svgElement("text", { class: "endpoint", x, y: 24, "text-anchor": "middle", "font-weight": "bold", fill: INK.fg }, who));
    svg.append(svgElement("text", { class: "endpoint", x, y: 48, "text-anchor": "middle", "font-family": "DejaVu Sans Mono, monospace", fill: INK.fg }, where));
    svg.append(svgElement("line", { class: "column", x1: x, y1: TOP - 12, x2: x, y2: height - 10, stroke: INK.muted, "stroke-width": 2 }));
  }
  let y = TOP;
  if (connection.hidden) {
    svg.append(svgElement("text", { class: "note", x: WIDTH / 2, y: y + 16, "text-anchor": "middle", fill: INK.muted },
                          label("earlier_hidden", { count: connection.hidden })));
    y += ROW;
  }
  for (const step of connection.steps) {
    svg.append(arrow(step, y));
    y += rowHeight(step);
  }
  return svg;
}

function rowHeight(step) {
  return ROW + (step.messages.length ? MESSAGE_ROW : 0);
}

// One arrow under its words: the flags (and what a relay did), then the messages it carries.
function arrow(step, top) {
  const y = top + 26 + (step.messages.length ? MESSAGE_ROW : 0);
  const fromX = step.from_client ? CLIENT_X : SERVER_X;
  const toX = step.from_client ? SERVER_X : CLIENT_X;
  const colour = step.flags.includes("RST") || step.fates ? INK.rst : step.from_client ? INK.client : INK.server;
  const alarm = step.flags.includes("RST") || step.fates ? " rst" : "";
  const group = svgElement("g", { class: `arrow ${step.from_client ? "from-client" : "from-server"}${alarm}` });
  group.dataset.flags = step.flags;
  group.dataset.proto = step.proto;
  if (step.fates) group.dataset.fate = step.fates.join(" "); // CSS: [data-fate~='reordered']
  const line = svgElement("line", { x1: fromX, y1: y, x2: toX, y2: y + DROP, stroke: colour,
                                    "stroke-width": 3, "marker-end": "url(#arrowhead)" });
  if (step.retransmission) line.setAttribute("stroke-dasharray", "8 6");
  group.append(line);
  const middle = (CLIENT_X + SERVER_X) / 2;
  group.append(svgElement("text", { class: "flags", x: middle, y: top + 18, "text-anchor": "middle",
                                    "font-weight": "bold", fill: colour }, stepLabel(step) + fateLabel(step)));
  if (step.messages.length) {
    const text = step.messages.map(describeMessage).join("  |  ");
    group.append(svgElement("text", { class: "message", x: middle, y: top + 40, "text-anchor": "middle",
                                      "font-family": "DejaVu Sans Mono, monospace", fill: INK.fg }, text));
  }
  const time = svgElement("text", { class: "note", x: 4, y: y + 6, "font-size": 15, fill: INK.muted },
                          `${step.time.toFixed(3)} s`);
  group.append(time);
  return group;
}

function renderStream(connection) {
  const stream = document.getElementById("stream");
  const lines = (connection?.stream ?? []).map((step) => {
    if (step.recv) return recvLine(step, connection);
    const line = element("div", undefined, `line ${step.from_client ? "from-client" : "from-server"}`);
    line.append(element("span", `${step.from_client ? "→" : "←"} `, "arrow"));
    for (const message of step.messages) {
      const box = element("span", message.text, `message ${message.fragment}`);
      box.title = describeMessage(message);
      line.append(box);
    }
    if (step.proto === "tcp" && step.length && step.seq !== null) {
      const last = step.seq + step.length - 1;
      line.append(element("span", label("segment_bytes", { first: step.seq, last }), "bytes"));
    }
    return line;
  });
  stream.replaceChildren(...lines);
  stream.scrollTop = stream.scrollHeight;
}

// --- controls ----------------------------------------------------------------------------------

function setPaused(paused) {
  state.paused = paused;
  const button = document.getElementById("pause");
  button.textContent = paused ? label("resume") : label("pause");
  button.setAttribute("aria-pressed", String(paused));
  if (!paused) {
    for (const event of state.pending.splice(0)) apply(event);
    renderSockets();
    renderConnections();
  }
  renderStatus();
}

function step() {
  const event = state.pending.shift();
  if (event) {
    apply(event);
    renderConnections();
  }
  renderStatus();
}

function clear() {
  state.connections.clear();
  state.pending = [];
  state.selected = null;
  state.chosenByUser = false;
  state.droppedByServer = state.droppedWhilePaused = 0;
  renderConnections();
  renderStatus();
}

export function ladderSvgText() {
  const svg = document.querySelector("#ladder svg");
  return svg ? new XMLSerializer().serializeToString(svg) : "";
}

function exportSvg() {
  const text = ladderSvgText();
  if (!text) return;
  const url = URL.createObjectURL(new Blob([`<?xml version="1.0" encoding="UTF-8"?>\n${text}\n`], { type: "image/svg+xml" }));
  const link = element("a");
  link.href = url;
  link.download = `socklab-ladder-${state.selected}.svg`;
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
}

function toggleTheme() {
  const root = document.documentElement;
  const dark = root.dataset.theme ? root.dataset.theme === "dark"
                                  : matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "light" : "dark";
}

// --- start -------------------------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/events`);
  socket.addEventListener("open", () => { state.connected = true; renderStatus(); });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => { state.connected = false; renderStatus(); });
}

async function start() {
  const response = await fetch("/labels.json", { cache: "no-store" });
  const catalogue = await response.json();
  state.labels = catalogue.labels;
  document.documentElement.lang = catalogue.language;
  document.title = label("title");
  document.getElementById("title").textContent = label("title");
  for (const node of document.querySelectorAll("[data-label]")) node.textContent = label(node.dataset.label);
  const traceHint = document.getElementById("trace-hint");
  traceHint.hidden = !catalogue.trace_address;
  if (catalogue.trace_address) traceHint.textContent = label("trace_hint", { address: catalogue.trace_address });
  document.getElementById("pause").addEventListener("click", () => setPaused(!state.paused));
  document.getElementById("step").addEventListener("click", step);
  document.getElementById("clear").addEventListener("click", clear);
  document.getElementById("export-svg").addEventListener("click", exportSvg);
  document.getElementById("theme").addEventListener("click", toggleTheme);
  setPaused(false);
  renderConnections();
  connect();
  window.socklabLive = { ladderSvgText, state };
  document.body.dataset.ready = "true";
}

start();
