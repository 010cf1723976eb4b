// The dashboard's sensor list for a fleet: plain browser JavaScript, no build step.
//
// Thousands of cards cannot all be in the DOM: with 3,006 sensors the page built 26,810 nodes and a
// setTimeout(0) waited 1.1 s behind one update. So the list is virtual: cards have a fixed size, the
// layout is arithmetic (rows of cards under group headers), and only the rows in view (plus two on
// each side) have nodes, reused while they stay in view. A live update only touches the data, the
// overview's counts and the cards in view, once per frame: sensors that appear or change state,
// type or location are merged into place, locations that change order are put in their new order in
// one pass, and all are filtered and sorted again (a few ms for 10,000 sensors) only for another
// filter.

const RANK = { ok: 0, low: 1, normal: 2, high: 3, critical: 4 };
const STATES = ["critical", "high", "normal", "low", "ok"];
/** The location filter's value for sensors without one (its key in the data is ""). */
const NO_LOCATION = "(no location)";
const CARD_HEIGHT = 150;
const GAP = 10;
const MIN_CARD_WIDTH = 200;
const HEADER_HEIGHT = 34;
const OVERSCAN_PX = 2 * (CARD_HEIGHT + GAP);
/** Locations in the overview table; the rest are summed in one line so it stays small. */
const OVERVIEW_ROWS = 50;

const SVG = "http://www.w3.org/2000/svg";
const fmt = (v) => Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);
const num = (v) => v == null ? "–" : fmt(v);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/**
 * A card's nodes, built once per card: a live update rewrites their text and the sparkline's
 * points in place. Replacing a card's children made every update new nodes to style, lay out and
 * paint in the next frame (`deno task bench:dashboard`, see `#renderVisible`).
 */
function newCard(id) {
  const node = h("div", { class: "sensor", "data-sensor": id });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 40");
  svg.setAttribute("preserveAspectRatio", "none");
  const band = document.createElementNS(SVG, "rect");
  band.setAttribute("x", "0");
  band.setAttribute("width", "100");
  band.setAttribute("fill", "var(--band)");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(band, line);
  const unit = h("span", { class: "muted" });
  const value = h("div", { class: "value" }, "", " ", unit);
  const parts = {
    id: h("div", { class: "id" }, id),
    type: h("div", { class: "type" }),
    value: value.firstChild,
    unit,
    band,
    line,
    stats: h("div", { class: "muted" }),
  };
  node.append(parts.id, parts.type, value, svg, parts.stats);
  node.card = parts;
  return node;
}

/** Sets a text node's or element's text, when it changed (an unchanged one is left alone). */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/**
 * Sets an inline style property when its value changed: the cards in view are placed again in
 * every frame, and most have not moved.
 */
function setStyle(node, name, value) {
  const last = node.placed ??= {};
  if (last[name] === value) return;
  last[name] = value;
  node.style[name] = value;
}

/** Fills a card from a sensor's view; the sparkline's shaded band is the rule's allowed range. */
function fillCard(node, s) {
  if (node.dataset.state !== s.state) node.dataset.state = s.state;
  const c = node.card;
  setText(c.type, `${s.sensor_type}${s.location ? ` · ${s.location}` : ""}`);
  setText(c.value, fmt(s.last_value));
  setText(c.unit, s.unit);
  setText(c.stats, `avg ${num(s.avg)} · min ${num(s.min)} · max ${num(s.max)} · n ${s.count}`);
  const values = s.recent;
  const threshold = s.threshold;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (threshold?.min != null) lo = Math.min(lo, threshold.min);
  if (threshold?.max != null) hi = Math.max(hi, threshold.max);
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const y = (v) => 40 - ((v - lo) / (hi - lo)) * 40;
  if (threshold && values.length > 0) {
    const top = threshold.max != null ? y(threshold.max) : 0;
    const bottom = threshold.min != null ? y(threshold.min) : 40;
    setAttr(c.band, "y", String(top));
    setAttr(c.band, "height", String(Math.max(0, bottom - top)));
  } else setAttr(c.band, "height", "0");
  const step = values.length > 1 ? 100 / (values.length - 1) : 0;
  setAttr(c.line, "points", values.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
}

const byName = (a, b) => a < b ? -1 : a > b ? 1 : 0;

/** `recs` ordered by their `group` number, in their order within a group (a counting sort). */
function byGroup(recs) {
  const starts = [];
  for (const rec of recs) starts[rec.group] = (starts[rec.group] ?? 0) + 1;
  let at = 0;
  for (let g = 0; g < starts.length; g++) {
    const n = starts[g] ?? 0;
    starts[g] = at;
    at += n;
  }
  const out = new Array(recs.length);
  for (const rec of recs) out[starts[rec.group]++] = rec;
  return out;
}

/**
 * The fleet view over the page's `#sensors` (the scrolling viewport), `#overview` and the filter
 * controls `#fleet-text`, `#fleet-type`, `#fleet-location`, `#fleet-state`, `#fleet-group`.
 */
export class FleetView {
  /** sensor_id → { id, s (the newest view), rank, loc, hay, node } */
  #sensors = new Map();
  /** location key → counts by rank, [ok, low, normal, high, critical] */
  #counts = new Map();
  #types = new Set();
  /** The matching sensors in display order, and the rows laid out from them. */
  #order = [];
  #rows = [];
  #cols = 1;
  #cardWidth = MIN_CARD_WIDTH;
  #collapsed = new Set();
  /** key ("s:" + id or "g:" + location) → the node rendered for it */
  #shown = new Map();
  /** Sensors with a node whose data changed since the last frame. */
  #changed = new Set();
  /** Sensors that appeared or changed state, type or location since the last frame. */
  #moved = new Set();
  /** The locations in display order when the order was last sorted, one per line. */
  #groupOrder = "";
  /** Every sensor in the order of its id, and those not yet numbered in it (`#numberNames`). */
  #byName = [];
  #unnamed = [];
  /** The overview's table, and its rows by line with the count buttons of each. */
  #overviewTable = null;
  /** line key ("l:" + location, or "rest") → { tr, name, buttons } */
  #overviewRows = new Map();
  #dirty = { order: true, layout: true, counts: true, options: true };
  /**
   * The viewport's size and scroll offset, kept from its resize and scroll events: reading them
   * during a frame would force a layout of the page.
   */
  #view = { width: 0, height: 0, top: 0 };
  #frame = 0;
  #filter = { text: "", type: "", location: "", state: "", group: true };

  constructor(doc = document) {
    this.viewport = doc.getElementById("sensors");
    this.overview = doc.getElementById("overview");
    this.controls = {
      text: doc.getElementById("fleet-text"),
      type: doc.getElementById("fleet-type"),
      location: doc.getElementById("fleet-location"),
      state: doc.getElementById("fleet-state"),
      group: doc.getElementById("fleet-group"),
    };
    this.canvas = h("div", { class: "fleet-canvas" });
    this.#filter.group = this.controls.group.checked;
    const onFilter = () => {
      this.#filter = {
        text: this.controls.text.value.trim().toLowerCase(),
        type: this.controls.type.value,
        location: this.controls.location.value,
        state: this.controls.state.value,
        group: this.controls.group.checked,
      };
      this.viewport.scrollTop = 0;
      this.#view.top = 0;
      this.#invalidate("order");
    };
    for (const c of Object.values(this.controls)) {
      c.addEventListener(c.type === "search" || c.type === "text" ? "input" : "change", onFilter);
    }
    this.viewport.addEventListener("scroll", () => {
      this.#view.top = this.viewport.scrollTop;
      this.#schedule();
    }, { passive: true });
    new ResizeObserver(([entry]) => {
      this.#view.width = entry.contentRect.width;
      this.#view.height = entry.contentRect.height;
      this.#invalidate("layout");
    }).observe(this.viewport);
    this.viewport.addEventListener("click", (e) => {
      const header = e.target.closest?.(".group");
      if (header === null || header === undefined) return;
      const loc = header.dataset.location;
      if (!this.#collapsed.delete(loc)) this.#collapsed.add(loc);
      this.#invalidate("layout");
    });
    this.overview.addEventListener("click", (e) => {
      const cell = e.target.closest?.("[data-state]");
      const row = cell?.closest("[data-location]");
      if (!cell || !row) return;
      this.controls.location.value = row.dataset.location === "" ? NO_LOCATION : row.dataset.location;
      this.controls.state.value = cell.dataset.state === "total" ? "" : cell.dataset.state;
      onFilter();
    });
  }

  /**
   * Takes a `sensors` message of the stream (a JSON array of new or changed sensor views); the page
   * catches up on the next frame. Timed as a User Timing measure for `deno task bench:dashboard`.
   */
  receive(json) {
    const started = performance.now();
    this.update(JSON.parse(json));
    performance.measure("fleet: message", { start: started });
  }

  /** Takes sensor views (new or changed). */
  update(views) {
    for (const s of views) {
      const rank = RANK[s.state] ?? 0;
      const loc = s.location ?? "";
      let rec = this.#sensors.get(s.sensor_id);
      if (rec === undefined) {
        rec = { id: s.sensor_id, s, rank, loc, hay: "", node: null, group: 0, name: 0 };
        this.#sensors.set(rec.id, rec);
        this.#unnamed.push(rec);
        this.#count(loc, rank, 1);
        this.#moved.add(rec);
      } else if (rec.rank !== rank || rec.loc !== loc || rec.s.sensor_type !== s.sensor_type) {
        this.#count(rec.loc, rec.rank, -1);
        this.#count(loc, rank, 1);
        this.#moved.add(rec);
      }
      if (rec.hay === "" || rec.loc !== loc || rec.s.sensor_type !== s.sensor_type) {
        rec.hay = `${s.sensor_id}\n${s.sensor_type}\n${loc}`.toLowerCase();
      }
      if (!this.#types.has(s.sensor_type)) {
        this.#types.add(s.sensor_type);
        this.#dirty.options = true;
      }
      rec.s = s;
      rec.rank = rank;
      rec.loc = loc;
      if (rec.node !== null) this.#changed.add(rec);
    }
    this.#schedule();
  }

  #count(loc, rank, delta) {
    let row = this.#counts.get(loc);
    if (row === undefined) {
      row = [0, 0, 0, 0, 0];
      this.#counts.set(loc, row);
      this.#dirty.options = true;
    }
    row[rank] += delta;
    this.#dirty.counts = true;
  }

  #invalidate(what) {
    this.#dirty[what] = true;
    this.#schedule();
  }

  #schedule() {
    if (this.#frame === 0) this.#frame = requestAnimationFrame(() => this.#render());
  }

  #render() {
    this.#frame = 0;
    if (this.#sensors.size === 0) return;
    const started = performance.now();
    if (this.canvas.parentNode !== this.viewport) this.viewport.replaceChildren(this.canvas);
    if (this.#dirty.options) this.#renderOptions();
    if (this.#dirty.counts) this.#renderOverview();
    // Sensors that changed state are merged into place; another filter sorts anew.
    const moved = this.#moved.size > 0;
    const sorted = this.#dirty.order;
    if (sorted) this.#sort();
    else if (moved) this.#reposition();
    this.#moved.clear();
    if (sorted || moved || this.#dirty.layout) this.#layout();
    this.#dirty = { order: false, layout: false, counts: false, options: false };
    this.#renderVisible();
    this.viewport.dataset.total = String(this.#sensors.size);
    this.viewport.dataset.matching = String(this.#order.length);
    performance.measure(sorted ? "fleet: frame with sort" : "fleet: frame", { start: started });
  }

  /**
   * Locations, worst first: by their worst state, then by name (sensors without a location last).
   * Not by how many are in alert: groups would then swap places at every alert.
   */
  #locations() {
    const worst = (row) => {
      for (let r = 4; r > 0; r--) if (row[r] > 0) return r;
      return 0;
    };
    return [...this.#counts].filter(([, row]) => row.some((n) => n > 0))
      .map(([loc, row]) => ({ loc, row, worst: worst(row) }))
      .sort((a, b) => b.worst - a.worst || (a.loc === "") - (b.loc === "") || byName(a.loc, b.loc));
  }

  #renderOptions() {
    const keep = (select, values, label) => {
      const current = select.value;
      select.replaceChildren(
        h("option", { value: "" }, label),
        ...values.map((v) => h("option", { value: v }, v)),
      );
      select.value = values.includes(current) ? current : "";
    };
    keep(this.controls.type, [...this.#types].sort(byName), "all types");
    const locs = [...this.#counts.keys()].sort(byName).map((l) => l === "" ? NO_LOCATION : l);
    keep(this.controls.location, locs, "all locations");
  }

  /**
   * One row per location, kept while the location is listed: when locations change order the rows
   * are moved, and only the counts that changed are rewritten. Rebuilding the table when the order
   * changed (alerts starting and ending reorder locations) made new nodes for the frame to lay out.
   */
  #renderOverview() {
    const locations = this.#locations();
    const shown = locations.slice(0, OVERVIEW_ROWS);
    const rest = locations.slice(OVERVIEW_ROWS);
    const sum = [0, 0, 0, 0, 0];
    for (const { row } of rest) for (let r = 0; r < 5; r++) sum[r] += row[r];
    const lines = [
      ...shown.map(({ loc, row }) => ({ key: `l:${loc}`, loc, row })),
      ...(rest.length > 0 ? [{ key: "rest", rest, row: sum }] : []),
    ];
    if (this.#overviewTable === null) {
      this.#overviewTable = h(
        "table",
        {},
        h("tr", {}, h("th", {}, "location"), ...STATES.map((st) => h("th", {}, st)), h("th", {}, "total")),
      );
      this.overview.replaceChildren(this.#overviewTable);
    }
    const table = this.#overviewTable;
    const rows = this.#overviewRows;
    const keep = new Set(lines.map((l) => l.key));
    for (const [key, row] of rows) {
      if (keep.has(key)) continue;
      row.tr.remove();
      rows.delete(key);
    }
    // Moved into the lines' order: a row already in place stays where it is.
    let at = table.firstChild.nextSibling;
    for (const line of lines) {
      let row = rows.get(line.key);
      if (row === undefined) {
        const buttons = [];
        const cells = [...STATES, "total"].map((st) => {
          const button = h("button", {});
          buttons.push(button);
          // The summed line is not a filter: its cells carry no state.
          return h("td", line.rest ? {} : { "data-state": st }, button);
        });
        const name = h("th", {}, line.loc === "" ? NO_LOCATION : line.loc ?? "");
        const tr = h("tr", line.rest ? {} : { "data-location": line.loc }, name, ...cells);
        row = { tr, name, buttons };
        rows.set(line.key, row);
      }
      if (line.rest) setText(row.name, `${line.rest.length} more locations`);
      if (at === row.tr) at = at.nextSibling;
      else table.insertBefore(row.tr, at);
      const counts = [...STATES.map((st) => line.row[RANK[st]]), line.row.reduce((a, b) => a + b, 0)];
      row.buttons.forEach((button, c) => {
        const text = String(counts[c]);
        if (button.textContent === text) return;
        button.textContent = text;
        button.parentNode.className = counts[c] === 0 ? "zero" : STATES[c] ?? "";
      });
    }
  }

  #matches(rec) {
    const f = this.#filter;
    if (f.type !== "" && rec.s.sensor_type !== f.type) return false;
    if (f.location !== "" && rec.loc !== (f.location === NO_LOCATION ? "" : f.location)) return false;
    if (f.state === "alert" ? rec.rank === 0 : f.state !== "" && rec.s.state !== f.state) return false;
    return f.text === "" || rec.hay.includes(f.text);
  }

  /** The display order: group (when grouped), worst state first, then id. */
  #compare = (a, b) => (this.#filter.group ? a.group - b.group : 0) || b.rank - a.rank || a.name - b.name;

  /**
   * Numbers the sensors in the order of their ids (`name`), so that sorting compares numbers, not
   * strings; new sensors are sorted among themselves and merged in.
   */
  #numberNames() {
    if (this.#unnamed.length === 0) return;
    const fresh = this.#unnamed.sort((a, b) => byName(a.id, b.id));
    this.#unnamed = [];
    const old = this.#byName;
    const merged = new Array(old.length + fresh.length);
    let i = 0;
    let j = 0;
    for (let k = 0; k < merged.length; k++) {
      const rec = j >= fresh.length || (i < old.length && byName(old[i].id, fresh[j].id) < 0)
        ? old[i++]
        : fresh[j++];
      rec.name = k;
      merged[k] = rec;
    }
    this.#byName = merged;
  }

  /** Each sensor's group number, from the locations' order; false when that order changed. */
  #placeGroups(recs) {
    const locations = this.#locations();
    const order = locations.map(({ loc }) => loc).join("\n");
    const same = order === this.#groupOrder;
    this.#groupOrder = order;
    const place = new Map(locations.map(({ loc }, i) => [loc, i]));
    for (const rec of recs) rec.group = place.get(rec.loc) ?? 0;
    return same;
  }

  #sort() {
    const order = [];
    for (const rec of this.#sensors.values()) if (this.#matches(rec)) order.push(rec);
    if (this.#filter.group) this.#placeGroups(order);
    this.#numberNames();
    order.sort(this.#compare);
    this.#order = order;
  }

  /** Moves the sensors that changed into place, instead of sorting them all. */
  #reposition() {
    // Locations that changed order (a location's first alert, or its last one ending) keep their
    // sensors' order within them: the sensors are put in their locations' new order in one pass,
    // instead of sorted all again (that sort was the longest frame of live updates).
    const regroup = this.#filter.group && !this.#placeGroups(this.#moved);
    if (regroup) this.#placeGroups(this.#order);
    this.#numberNames();
    let order = this.#order.filter((rec) => !this.#moved.has(rec));
    if (regroup) order = byGroup(order);
    // The sensors that moved, sorted among themselves and merged in: one pass, where inserting
    // each one (a splice of the whole order) cost a pass per sensor.
    const moved = [...this.#moved].filter((rec) => this.#matches(rec)).sort(this.#compare);
    const merged = new Array(order.length + moved.length);
    let i = 0;
    let j = 0;
    for (let k = 0; k < merged.length; k++) {
      merged[k] = j >= moved.length || (i < order.length && this.#compare(order[i], moved[j]) < 0)
        ? order[i++]
        : moved[j++];
    }
    this.#order = merged;
  }

  /** Rows of cards (and group headers) with their top offsets; the total height sizes the canvas. */
  #layout() {
    const width = this.#view.width || MIN_CARD_WIDTH;
    this.#cols = Math.max(1, Math.floor((width + GAP) / (MIN_CARD_WIDTH + GAP)));
    this.#cardWidth = (width - GAP * (this.#cols - 1)) / this.#cols;
    const rows = [];
    let top = 0;
    const order = this.#order;
    let i = 0;
    while (i < order.length) {
      let end = order.length;
      if (this.#filter.group) {
        const loc = order[i].loc;
        end = i;
        while (end < order.length && order[end].loc === loc) end++;
        const collapsed = this.#collapsed.has(loc);
        rows.push({ top, height: HEADER_HEIGHT, group: loc, start: i, end, collapsed });
        top += HEADER_HEIGHT;
        if (collapsed) {
          i = end;
          continue;
        }
      }
      for (; i < end; i += this.#cols) {
        rows.push({ top, height: CARD_HEIGHT + GAP, start: i, end: Math.min(end, i + this.#cols) });
        top += CARD_HEIGHT + GAP;
      }
    }
    this.#rows = rows;
    this.canvas.style.height = `${top}px`;
  }

  #renderVisible() {
    const from = this.#view.top - OVERSCAN_PX;
    const to = this.#view.top + this.#view.height + OVERSCAN_PX;
    const rows = this.#rows;
    // The first row that ends below `from`: rows are sorted by top.
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid].top + rows[mid].height <= from) lo = mid + 1;
      else hi = mid;
    }
    const wanted = new Map();
    for (let r = lo; r < rows.length && rows[r].top < to; r++) {
      const row = rows[r];
      if (row.group !== undefined) {
        wanted.set(`g:${row.group}`, { row });
        continue;
      }
      for (let i = row.start; i < row.end; i++) {
        wanted.set(`s:${this.#order[i].id}`, { row, rec: this.#order[i], col: i - row.start });
      }
    }
    for (const [key, node] of this.#shown) {
      if (wanted.has(key)) continue;
      node.remove();
      this.#shown.delete(key);
      if (key.startsWith("s:")) {
        const rec = this.#sensors.get(key.slice(2));
        if (rec !== undefined) rec.node = null;
      }
    }
    for (const [key, { row, rec, col }] of wanted) {
      let node = this.#shown.get(key);
      if (rec === undefined) {
        node ??= h("div", { class: "group", "data-location": row.group });
        this.#header(node, row);
        setStyle(node, "transform", `translateY(${row.top}px)`);
      } else {
        if (node === undefined) {
          node = newCard(rec.id);
          fillCard(node, rec.s);
          rec.node = node;
        } else if (this.#changed.has(rec)) {
          fillCard(node, rec.s);
        }
        setStyle(node, "width", `${this.#cardWidth}px`);
        setStyle(node, "transform", `translate(${col * (this.#cardWidth + GAP)}px, ${row.top}px)`);
      }
      if (!this.#shown.has(key)) {
        this.#shown.set(key, node);
        this.canvas.append(node);
      }
    }
    this.#changed.clear();
  }

  /** A group's header, rebuilt only when what it says changed (it is placed again every frame). */
  #header(node, row) {
    const counts = this.#counts.get(row.group) ?? [0, 0, 0, 0, 0];
    const key = `${row.collapsed} ${row.end - row.start} ${counts.join(" ")}`;
    if (node.headerKey === key) return;
    node.headerKey = key;
    const alerts = STATES.filter((st) => st !== "ok" && counts[RANK[st]] > 0)
      .map((st) => h("span", { class: `prio ${st}` }, `${counts[RANK[st]]} ${st}`));
    node.replaceChildren(
      h("span", { class: "twisty" }, row.collapsed ? "▸" : "▾"),
      h("b", {}, row.group === "" ? NO_LOCATION : row.group),
      h("span", { class: "muted" }, `${row.end - row.start} shown`),
      ...alerts,
    );
  }
}
