// Spark Control dashboard strategy: a dashboard that builds itself from Home Assistant's
// entity and device registries, one view per cluster. Use it with the dashboard config
//   strategy:
//     type: custom:spark-control
// It follows node and model changes on every load: nothing is hard-coded but the
// integration's translation keys. Only entities that have a state are shown, so a
// disabled entity never becomes an "Entity not found" card.

const DOMAIN = "spark_control";
const HOURS = 24;

// translation_key -> how the dashboard uses it. Severities are fractions of the range.
// The power gauge's range is the node's enforced power limit (its `gpu_power_limit` sensor);
// a node whose GPU reports none (a GB10 has no power cap) gets the GB10's 140 W TDP.
const NODE_GAUGES = [
  { key: "gpu_utilization", max: 100, severity: { yellow: 0.7, red: 0.9 } },
  { key: "gpu_memory_usage", max: 100, severity: { yellow: 0.8, red: 0.95 } },
  { key: "gpu_temperature", max: 100, severity: { yellow: 0.75, red: 0.85 } },
  { key: "gpu_power", maxFrom: "gpu_power_limit", max: 140, severity: { yellow: 0.6, red: 0.8 } },
];
const SERVICE_ORDER = ["vllm", "parakeet", "magpie"];
// vLLM's log prefix, e.g. "(APIServer pid=1) INFO 11-21 09:10:11 [api_server.py:1885] ".
// Written without backslashes (it goes through a Jinja string into a Python regex): "[^]]*[]]"
// is the bracketed source.
const LOG_PREFIX = "^([(][^)]*[)] +)?[A-Z]+ +[0-9-]+ [0-9:.]+ [^]]*[]] *";
// Uvicorn's access lines ('INFO:     127.0.0.1:55006 - "GET /health HTTP/1.1" 503'): Home
// Assistant's own polls of the loading server, not the load's progress.
const ACCESS_LINE = '^INFO: +[^ ]+ - "[A-Z]+ /';

// A gauge of an unavailable entity draws a warning box ("Entity is currently unavailable"):
// hidden then, the tiles and graphs next to it say that the service is down.
function whenAvailable(entity) {
  return [{ condition: "state", entity, state_not: "unavailable" }];
}

function shortName(hass, entityId, deviceName) {
  // The entity's own name: its friendly name without the device's (has_entity_name).
  const friendly = hass.states[entityId]?.attributes.friendly_name ?? entityId;
  return deviceName && friendly.startsWith(`${deviceName} `)
    ? friendly.slice(deviceName.length + 1)
    : friendly;
}

function deviceName(device) {
  return device.name_by_user || device.name || "";
}

function heading(text, icon) {
  return { type: "heading", heading: text, heading_style: "title", icon };
}

class SparkCluster {
  constructor(hass, entry, entities, devices) {
    this.hass = hass;
    this.entry = entry;
    this.recentSwapLines = false;
    // device id -> { device, byKey: translation_key -> [entity ids] }
    this.devices = new Map();
    for (const device of Object.values(devices)) {
      if (!device.config_entries?.includes(entry.entry_id)) continue;
      this.devices.set(device.id, { device, byKey: new Map() });
    }
    for (const entity of Object.values(entities)) {
      if (entity.platform !== DOMAIN || !(entity.entity_id in hass.states)) continue;
      const holder = this.devices.get(entity.device_id);
      // Restart buttons are named by their device class, not a translation key.
      const key =
        entity.translation_key ?? (entity.entity_id.startsWith("button.") ? "restart" : null);
      if (!holder || !key) continue;
      const list = holder.byKey.get(key) ?? [];
      list.push(entity.entity_id);
      holder.byKey.set(key, list);
    }
  }

  one(holder, key) {
    return holder?.byKey.get(key)?.[0];
  }

  // An entity's state as a positive number, or undefined (no entity, unavailable, zero).
  reading(entityId) {
    const value = Number.parseFloat(this.hass.states[entityId]?.state);
    return value > 0 ? value : undefined;
  }

  withKey(key) {
    return [...this.devices.values()].filter((holder) => holder.byKey.has(key));
  }

  // Service devices are named "<cluster> vLLM"; show "vLLM".
  serviceTitle(holder) {
    const name = deviceName(holder.device);
    const prefix = `${this.entry.title} `;
    return name.startsWith(prefix) ? name.slice(prefix.length) : name;
  }

  tile(holder, entityId, extra = {}) {
    return {
      type: "tile",
      entity: entityId,
      name: shortName(this.hass, entityId, deviceName(holder.device)),
      ...extra,
    };
  }

  modelSection() {
    const vllm = this.withKey("model")[0];
    if (!vllm) return null;
    const select = this.one(vllm, "model");
    const swap = this.one(vllm, "swap_status");
    const cards = [heading("Model", "mdi:swap-horizontal")];
    cards.push(
      this.tile(vllm, select, {
        features: [{ type: "select-options" }],
        features_position: "bottom",
        grid_options: { columns: 12 },
      }),
    );
    // A stopped vLLM serves no model, so the select reads Unknown: say why, and how to start it.
    const running = this.one(vllm, "running");
    if (running) {
      cards.push({
        type: "markdown",
        content:
          "vLLM is stopped. Choose a model above to start it with that model, or turn on its " +
          "Running switch (Services) to start it with the model it served last.",
        visibility: [{ condition: "state", entity: running, state: "off" }],
        grid_options: { columns: 12 },
      });
    }
    if (swap) {
      // The phase as a tile (its state is translated); target, elapsed time, the previous
      // load time of that model and the log tail from the swap sensor's attributes, shown
      // only once there is a swap to speak of (idle: none since Home Assistant started).
      cards.push(this.tile(vllm, swap, { name: "Phase", grid_options: { columns: 12 } }));
      cards.push({
        type: "markdown",
        title: "Swap",
        content: [
          `{% set s = '${swap}' %}{% set target = state_attr(s, 'target_name') %}`,
          "{% if target %}**Target model:** {{ target }}  ",
          "**Elapsed:** {{ state_attr(s, 'elapsed_seconds') | round(0) | int }} s",
          "{% set expected = state_attr(s, 'expected_seconds') %}{% if expected %}  ",
          "**Expected:** about {{ expected | round(0) | int }} s (the previous load of this model)",
          "{% endif %}{% set lines = (state_attr(s, 'log_lines') or [])",
          `   | reject('search', '${ACCESS_LINE}') | list %}{% if lines %}`,
          "",
          // vLLM's "(process) LEVEL date time [file:line]" prefix dropped, one wrapping line
          // each (a code block would cut them at the card's edge, on a phone after a word).
          // (The loop's body is the line and its break only: no blank line between lines.)
          `{% for line in lines[-6:] %}\`{{ line | regex_replace('${LOG_PREFIX}', '') | replace('\`', "'") }}\`  `,
          "{% endfor %}",
          "{% endif %}{% endif %}",
        ].join("\n"),
        visibility: [{ condition: "state", entity: swap, state_not: "idle" }],
        grid_options: { columns: 12 },
      });
    }
    // The integration files its swap lines (started, now serves …, failed) and vLLM's stops
    // ("stopped (it served …)", beside the select's state going unknown) under the select.
    // With none in the window when the dashboard opened and no swap since Home Assistant
    // started, a note says so instead of the logbook's bare "No activity found"; the first
    // swap (the swap sensor leaves idle) brings the logbook in its place.
    const logbook = {
      type: "logbook",
      title: "Swaps",
      target: { entity_id: [select] },
      hours_to_show: HOURS,
      grid_options: { columns: 12 },
    };
    if (!this.recentSwapLines && swap) {
      const idle = { condition: "state", entity: swap, state: "idle" };
      cards.push({
        type: "markdown",
        title: "Swaps",
        content:
          `No swap in the last ${HOURS} hours. Choose another model above to swap: when each ` +
          "swap started, when it finished and how long the load took (or why it failed) " +
          "will be listed here.",
        visibility: [idle],
        grid_options: { columns: 12 },
      });
      logbook.visibility = [{ condition: "state", entity: swap, state_not: "idle" }];
    }
    cards.push(logbook);
    return { type: "grid", cards };
  }

  // Whether the logbook holds swap lines (filed under the model select) from the last hours.
  async loadRecentSwapLines() {
    const select = this.one(this.withKey("model")[0], "model");
    if (!select) return;
    const start = new Date(Date.now() - HOURS * 3600 * 1000).toISOString();
    try {
      const events = await this.hass.callWS({
        type: "logbook/get_events",
        start_time: start,
        entity_ids: [select],
      });
      this.recentSwapLines = events.length > 0;
    } catch {
      this.recentSwapLines = true; // no logbook to ask: show the card, as before
    }
  }

  llmSection() {
    const vllm = this.withKey("model")[0];
    if (!vllm) return null;
    const speed = this.one(vllm, "generation_tokens_per_second");
    const kv = this.one(vllm, "kv_cache_usage");
    const running = this.one(vllm, "requests_running");
    const ttft = this.one(vllm, "time_to_first_token");
    const cards = [heading("Language model", "mdi:chat-processing")];
    for (const entityId of [speed, running].filter(Boolean)) {
      cards.push(this.tile(vllm, entityId, { grid_options: { columns: 12 } }));
    }
    if (ttft) {
      // Unavailable until the served model has answered a request: nothing to show then.
      cards.push(
        this.tile(vllm, ttft, { visibility: whenAvailable(ttft), grid_options: { columns: 12 } }),
      );
    }
    if (kv) {
      cards.push({
        type: "gauge",
        entity: kv,
        name: shortName(this.hass, kv, deviceName(vllm.device)),
        min: 0,
        max: 100,
        severity: { green: 0, yellow: 80, red: 95 },
        visibility: whenAvailable(kv),
        grid_options: { columns: 12 },
      });
    }
    const history = [speed, kv].filter(Boolean);
    if (history.length) cards.push(this.historyGraph(vllm, history));
    if (ttft) {
      // A graph of its own, hidden with the tile (an empty chart with no line otherwise).
      cards.push({ ...this.historyGraph(vllm, [ttft]), visibility: whenAvailable(ttft) });
    }
    return { type: "grid", cards };
  }

  // 24 h graphs of the entities (one chart per unit), named as on their device.
  historyGraph(holder, entities) {
    return {
      type: "history-graph",
      title: `Last ${HOURS} hours`,
      hours_to_show: HOURS,
      entities: entities.map((entity) => ({
        entity,
        name: shortName(this.hass, entity, deviceName(holder.device)),
      })),
      grid_options: { columns: 12 },
    };
  }

  nodeSections() {
    return this.withKey("gpu_utilization")
      .sort((a, b) => deviceName(a.device).localeCompare(deviceName(b.device)))
      .map((node) => {
        const name = deviceName(node.device);
        const model = [node.device.model, node.device.sw_version].filter(Boolean).join(" · ");
        const cards = [heading(name, "mdi:server"), { type: "markdown", content: model, text_only: true }];
        const graphed = [];
        for (const gauge of NODE_GAUGES) {
          const entity = this.one(node, gauge.key);
          if (!entity) continue;
          graphed.push(entity);
          const max = this.reading(this.one(node, gauge.maxFrom)) ?? gauge.max;
          cards.push({
            type: "gauge",
            entity,
            name: shortName(this.hass, entity, name),
            min: 0,
            max,
            severity: {
              green: 0,
              yellow: Math.round(gauge.severity.yellow * max),
              red: Math.round(gauge.severity.red * max),
            },
            visibility: whenAvailable(entity),
            grid_options: { columns: 6 },
          });
        }
        const used = this.one(node, "gpu_memory_used");
        if (used) cards.push(this.tile(node, used, { grid_options: { columns: 12 } }));
        cards.push(this.historyGraph(node, graphed));
        return { type: "grid", cards };
      });
  }

  serviceSections() {
    const holders = this.withKey("connectivity").sort(
      (a, b) =>
        SERVICE_ORDER.findIndex((s) => this.serviceTitle(a).toLowerCase().startsWith(s)) -
        SERVICE_ORDER.findIndex((s) => this.serviceTitle(b).toLowerCase().startsWith(s)),
    );
    const cards = [heading("Services", "mdi:heart-pulse")];
    const wedged = [];
    const wedges = [];
    for (const holder of holders) {
      const title = this.serviceTitle(holder);
      // One card per service: its health, its own switch and button (never a header toggle
      // over several services), then its recovery figures.
      const rows = [];
      for (const key of [
        "connectivity",
        "wedged",
        "running",
        "restart",
        "wedges",
        "restarts_in_window",
      ]) {
        const entity = this.one(holder, key);
        if (!entity) continue;
        rows.push({ entity, name: shortName(this.hass, entity, deviceName(holder.device)) });
        if (key === "wedged") wedged.push(entity);
        if (key === "wedges") wedges.push(entity);
      }
      cards.push({
        type: "entities",
        title,
        show_header_toggle: false,
        state_color: true,
        entities: rows,
        grid_options: { columns: 12 },
      });
    }
    if (wedges.length && wedged.length) {
      // The recovery lines (wedged, restarted, recovered) are filed under the Wedged sensors.
      // Until a first wedge (every Wedges count at 0) there is nothing to list: say so
      // instead of an empty card.
      cards.push({
        type: "markdown",
        title: "Wedges and restarts",
        content:
          "No service has wedged yet, so nothing was restarted automatically. " +
          "Wedges, automatic restarts and recoveries will be listed here.",
        visibility: wedges.map((entity) => ({ condition: "state", entity, state: "0" })),
        grid_options: { columns: 12 },
      });
      cards.push({
        type: "logbook",
        title: "Wedges and restarts",
        target: { entity_id: wedged },
        hours_to_show: HOURS * 7,
        visibility: [
          {
            condition: "or",
            conditions: wedges.map((entity) => ({
              condition: "numeric_state",
              entity,
              above: 0,
            })),
          },
        ],
        grid_options: { columns: 12 },
      });
    }
    return { type: "grid", cards };
  }

  view() {
    const sections = [
      this.modelSection(),
      this.llmSection(),
      ...this.nodeSections(),
      this.serviceSections(),
    ].filter(Boolean);
    return {
      type: "sections",
      title: this.entry.title,
      path: this.entry.entry_id,
      icon: "mdi:expansion-card-variant",
      max_columns: 4,
      sections,
    };
  }
}

class SparkControlDashboardStrategy {
  static async generate(config, hass) {
    const entries = await hass.callWS({ type: "config_entries/get", domain: DOMAIN });
    const loaded = entries.filter((entry) => entry.state === "loaded");
    if (!loaded.length) {
      return {
        title: "Spark Control",
        views: [
          {
            title: "Spark Control",
            cards: [
              {
                type: "markdown",
                content:
                  "No Spark Control cluster is loaded. Add one under **Settings → Devices & services**.",
              },
            ],
          },
        ],
      };
    }
    const clusters = loaded.map((entry) => new SparkCluster(hass, entry, hass.entities, hass.devices));
    await Promise.all(clusters.map((cluster) => cluster.loadRecentSwapLines()));
    return { title: "Spark Control", views: clusters.map((cluster) => cluster.view()) };
  }
}

customElements.define("ll-strategy-dashboard-spark-control", SparkControlDashboardStrategy);
