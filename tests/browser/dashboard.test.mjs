// The Spark Control dashboard as a person sees it: Debian's chromium, driven by playwright-core,
// logs in to the demo's Home Assistant (scripts/run_demo.py on the simulator), opens the
// dashboard the integration's strategy builds at desktop and phone sizes, and swaps a model
// through the select. Fails on "Entity not found", "unknown" or an untranslated key anywhere
// on the page. Screenshots go to .cache/screenshots/, or with UPDATE_SCREENSHOTS=1 to the
// docs/screenshots/ the documentation shows (so a test run leaves the work tree clean).
//
// Run twice by ./scripts/test (through scripts/_browser_env.sh, which installs chromium and the
// pinned playwright-core): section `browser` with .venv's Python, so on Home Assistant 2026.2.3,
// and section `browser_newest` in the Python 3.14 root with the demo's venv, so on HA 2026.11.
// Finds chromium and the demo's Python on PATH or through CHROMIUM and SPARK_PYTHON, so it runs
// the same on the host and in a chroot.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? path.join(ROOT, "docs", "screenshots")
  : path.join(ROOT, ".cache", "screenshots");
const EN = JSON.parse(
  fs.readFileSync(path.join(ROOT, "custom_components/spark_control/translations/en.json")),
);
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const STARTUP_MS = 300_000;

function which(name) {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`]).toString().trim();
  } catch {
    return "";
  }
}

const demoDir = fs.mkdtempSync(path.join(os.tmpdir(), "spark-browser-"));
let demo;
let demoLog = "";
let endpoints;
let browser;

async function waitForEndpoints() {
  const file = path.join(demoDir, "endpoints.json");
  const deadline = Date.now() + STARTUP_MS;
  while (Date.now() < deadline) {
    assert.equal(demo.exitCode, null, `the demo exited early:\n${demoLog}`);
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8"));
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`the demo wrote no endpoints.json in time:\n${demoLog}`);
}

async function stopDemo() {
  if (!demo || demo.exitCode !== null) return;
  // The demo's children (HA, the gateway) run in sessions of their own: note them first, so a
  // demo that does not stop on Ctrl-C cannot leave them behind.
  let children = [];
  try {
    children = execFileSync("ps", ["-o", "pid=", "--ppid", String(demo.pid)])
      .toString()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // ps exits 1 when there is no child
  }
  const exited = new Promise((resolve) => demo.once("exit", resolve));
  process.kill(-demo.pid, "SIGINT"); // Ctrl-C: the demo stops its children itself
  const timer = setTimeout(() => {
    for (const pid of [demo.pid, ...children]) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }, 90_000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  const python = process.env.SPARK_PYTHON || path.join(ROOT, ".venv/bin/python");
  demo = spawn(
    python,
    [path.join(ROOT, "scripts/run_demo.py"), "--demo-dir", demoDir, "--load-seconds", "3"],
    { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  demo.stdout.on("data", (chunk) => (demoLog += chunk));
  demo.stderr.on("data", (chunk) => (demoLog += chunk));
  endpoints = await waitForEndpoints();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || which("chromium") || "/usr/bin/chromium",
    args: CHROMIUM_FLAGS,
  });
});

after(async () => {
  await browser?.close();
  await stopDemo();
  fs.rmSync(demoDir, { recursive: true, force: true });
});

// Every text on the page, through shadow roots (HA's frontend is all web components).
function pageText(page) {
  return page.evaluate(() => {
    const out = [];
    const walk = (node) => {
      if (node.shadowRoot) walk(node.shadowRoot);
      for (const child of node.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
        else if (child.nodeType === Node.ELEMENT_NODE && !["SCRIPT", "STYLE"].includes(child.tagName))
          walk(child);
      }
    };
    walk(document.body);
    return out.join(" ").replace(/\s+/g, " ");
  });
}

// Keys that show when a translation is missing: the frontend's own ("ui.panel...",
// "component.spark_control...") and our entity/state keys.
const OUR_KEYS = Object.values(EN.entity)
  .flatMap((platform) => Object.keys(platform))
  .filter((key) => key.includes("_"));

function assertPresentable(text, where) {
  assert.ok(!/entity not found/i.test(text), `${where}: "Entity not found" on the page`);
  assert.ok(!/currently unavailable/i.test(text), `${where}: a card's unavailable warning`);
  assert.ok(!/\bunknown\b/i.test(text), `${where}: "unknown" on the page: ${text}`);
  assert.ok(!/\b(ui|component)\.[a-z_]+\.[a-z_.]+/.test(text), `${where}: an untranslated key`);
  for (const key of OUR_KEYS) {
    assert.ok(!new RegExp(`\\b${key}\\b`).test(text), `${where}: raw key ${key}`);
  }
}

// How many elements of a tag the page holds, through shadow roots.
function countElements(page, tag) {
  return page.evaluate((name) => {
    let count = 0;
    const walk = (node) => {
      if (node.shadowRoot) walk(node.shadowRoot);
      for (const child of node.children ?? []) {
        if (child.localName === name) count += 1;
        walk(child);
      }
    };
    walk(document.body);
    return count;
  }, tag);
}

// Texts the page cuts off with an ellipsis (a name too long for its card).
function truncatedTexts(page) {
  return page.evaluate(() => {
    const cut = [];
    const walk = (node) => {
      if (node.shadowRoot) walk(node.shadowRoot);
      for (const child of node.children ?? []) {
        const style = getComputedStyle(child);
        // A 1 px box is a label for screen readers only (HA 2026.11's select menu has one).
        if (
          style.textOverflow === "ellipsis" &&
          child.clientWidth > 1 &&
          child.scrollWidth > child.clientWidth + 1 &&
          child.textContent.trim()
        ) {
          cut.push(child.textContent.trim());
        }
        walk(child);
      }
    };
    walk(document.body);
    return cut;
  });
}

async function logIn(page) {
  const ha = endpoints.home_assistant;
  await page.goto(ha.url + "/");
  await page.getByRole("textbox", { name: "Username" }).fill(ha.username);
  await page.getByRole("textbox", { name: "Password" }).fill(ha.password);
  await page.getByRole("button", { name: /log in/i }).click();
  await page.waitForFunction(
    () => document.querySelector("home-assistant")?.hass?.connected === true,
    null,
    { timeout: 60_000 },
  );
}

async function openDashboard(page) {
  await page.goto(endpoints.home_assistant.dashboard);
  // Every node's gauges have drawn (they come last into the sections).
  await page.getByText("GPU temperature").last().waitFor({ timeout: 60_000 });
  await page.getByText("Magpie TTS").first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(2000); // history graphs and logbooks load after the cards
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

test("the dashboard reads well on a desktop and a phone", async () => {
  for (const [size, viewport] of [
    ["desktop", { width: 1400, height: 1000 }],
    ["phone", { width: 390, height: 844 }],
  ]) {
    const page = await browser.newPage({ viewport, deviceScaleFactor: 1 });
    try {
      await logIn(page);
      await openDashboard(page);
      const text = await pageText(page);
      assertPresentable(text, size);
      // Nodes by host name with their GPU, every reading and every service.
      for (const expected of [
        "spark-1",
        "spark-2",
        "GB10",
        "GPU utilization",
        "GPU memory usage",
        "GPU temperature",
        "GPU power",
        "KV cache usage",
        "Generation speed",
        "Parakeet ASR",
        "Wedges",
        "Automatic restarts in window",
        // The empty states of "Wedges and restarts" and "Swaps" (no wedge, no swap yet).
        "No service has wedged yet",
        "No swap in the last 24 hours",
      ]) {
        assert.ok(text.includes(expected), `${size}: "${expected}" missing`);
      }
      assert.ok(!/no activity found/i.test(text), `${size}: an empty logbook card`);
      assert.ok(!text.includes("Demo cluster vLLM Running"), `${size}: long entity names`);
      // Each service has its own card; none has a header toggle over several services.
      assert.equal(await countElements(page, "hui-entities-card"), 3, `${size}: service cards`);
      assert.equal(await countElements(page, "hui-entities-toggle"), 0, `${size}: header toggle`);
      assert.deepEqual(await truncatedTexts(page), [], `${size}: names cut off`);
      await shot(page, `dashboard-${size}.png`);
    } finally {
      await page.close();
    }
  }
});

test("the device pages show no unknown state and the wedge count reads 0", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    await logIn(page);
    // The service devices, once the frontend has loaded the device registry.
    const handle = await page.waitForFunction(
      () => {
        const found = Object.values(document.querySelector("home-assistant").hass.devices ?? {})
          .filter((device) => / (vLLM|Parakeet ASR|Magpie TTS)$/.test(device.name ?? ""))
          .map((device) => ({ id: device.id, name: device.name }));
        return found.length === 3 && found;
      },
      null,
      { timeout: 60_000 },
    );
    const devices = await handle.jsonValue();
    assert.equal(devices.length, 3, JSON.stringify(devices));
    for (const device of devices) {
      await page.goto(`${endpoints.home_assistant.url}/config/devices/device/${device.id}`);
      // A diagnostic entity of that device has drawn (the section comes last).
      const diagnostic = device.name.endsWith("vLLM") ? "Swap status" : "Automatic restarts in window";
      await page.getByText(diagnostic, { exact: true }).first().waitFor({ timeout: 60_000 });
      await page.waitForTimeout(1000);
      const text = await pageText(page);
      assertPresentable(text, device.name);
      assert.match(text, /Wedges 0\b/, device.name);
    }
  } finally {
    await page.close();
  }
});

// The power gauges the strategy builds for the cluster: node name -> [min, max, severity].
function powerGauges(page, extraLimit) {
  return page.evaluate(async (limit) => {
    const real = document.querySelector("home-assistant").hass;
    let hass = real;
    if (limit) {
      // The node's GPU reporting an enforced power limit, as a discrete GPU's does: its
      // `GPU power limit` sensor in the registry and the state machine (a GB10 has none).
      const power = Object.values(real.entities).find((e) => e.entity_id === limit.power);
      const entityId = limit.power.replace(/_gpu_power$/, "_gpu_power_limit");
      hass = {
        ...real,
        entities: {
          ...real.entities,
          [entityId]: { ...power, entity_id: entityId, translation_key: "gpu_power_limit" },
        },
        states: {
          ...real.states,
          [entityId]: { entity_id: entityId, state: String(limit.watts), attributes: {} },
        },
      };
    }
    const strategy = customElements.get("ll-strategy-dashboard-spark-control");
    const dashboard = await strategy.generate({}, hass);
    const gauges = {};
    for (const section of dashboard.views[0].sections) {
      const node = section.cards.find((card) => card.type === "heading")?.heading;
      for (const card of section.cards) {
        if (card.type === "gauge" && card.entity.endsWith("_gpu_power")) {
          gauges[node] = [card.min, card.max, card.severity];
        }
      }
    }
    return gauges;
  }, extraLimit);
}

test("the power gauge spans the node's power limit, or a GB10's 140 W without one", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    await logIn(page);
    await openDashboard(page);
    // The demo's nodes are GB10s: nvidia-smi reports no power limit, no limit sensor exists.
    const gb10 = { min: 0, max: 140, severity: { green: 0, yellow: 84, red: 112 } };
    assert.deepEqual(await powerGauges(page), {
      "spark-1": [gb10.min, gb10.max, gb10.severity],
      "spark-2": [gb10.min, gb10.max, gb10.severity],
    });
    const power = await page.evaluate(
      () =>
        Object.keys(document.querySelector("home-assistant").hass.states).filter((id) =>
          id.endsWith("_gpu_power"),
        ),
    );
    assert.equal(power.length, 2, power.join());
    const spark1 = power.find((id) => id.includes("spark_1"));
    assert.deepEqual(await powerGauges(page, { power: spark1, watts: 300 }), {
      "spark-1": [0, 300, { green: 0, yellow: 180, red: 240 }],
      "spark-2": [gb10.min, gb10.max, gb10.severity],
    });
  } finally {
    await page.close();
  }
});

// A form's text field by its label (HA 2026.11's text fields name their input without a
// <label> element, so getByLabel finds nothing there).
function field(page, label) {
  return page.getByRole("textbox", { name: label });
}

test("the config flow shows every field error at once and goes back from the key step", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    await logIn(page);
    await page.goto(`${endpoints.home_assistant.url}/config/integrations/integration/spark_control`);
    await page.getByRole("button", { name: "Add hub" }).first().click();
    const form = EN.config.step.user.data;
    await field(page, form.cluster_name).fill("Second lab");
    await field(page, form.nodes).fill("bad host!!");
    await field(page, form.ssh_user).fill("Root$(id)");
    await field(page, form.repo_path).fill("relative/dir");
    await page.getByRole("button", { name: "Submit" }).click();
    const errors = EN.config.error;
    const wrong = await textMatching(
      page,
      [
        new RegExp(errors.invalid_nodes.replace("{node}", "bad host!!").replace(/[()]/g, "\\$&")),
        new RegExp(errors.invalid_ssh_user),
        new RegExp(errors.invalid_repo_path.replace(/[().]/g, "\\$&")),
      ],
      "the form's errors",
    );
    assertPresentable(wrong, "config flow errors");
    // Another head node (the demo's second node alone) reaches the key step; its way back
    // keeps what was typed.
    const node = endpoints.simulator.nodes[1];
    await field(page, form.nodes).fill(`${node.host}:${node.ssh_port}`);
    await field(page, form.ssh_user).fill(endpoints.simulator.username);
    await field(page, form.repo_path).fill(endpoints.simulator.repo_path);
    await page.getByRole("button", { name: "Submit" }).click();
    await page.getByText(EN.config.step.authorize_key.title).first().waitFor({ timeout: 30_000 });
    assertPresentable(await pageText(page), "key step");
    // Forced: HA 2026.11 draws its switch's control over the input (check() still verifies
    // that the switch turned on).
    await page.getByRole("switch").first().check({ force: true });
    await page.getByRole("button", { name: "Submit" }).click();
    await page.getByText(EN.config.step.user.title).first().waitFor({ timeout: 30_000 });
    assert.equal(await field(page, form.nodes).inputValue(), `${node.host}:${node.ssh_port}`);
    assert.equal(await field(page, form.cluster_name).inputValue(), "Second lab");
  } finally {
    await page.close();
  }
});

// What the model select looks like to the test, for a failure message: its state, the swap
// sensor's phase and `running`, and whether its menu is enabled and open.
function selectMenuState(page) {
  return page.evaluate(() => {
    const states = Object.values(document.querySelector("home-assistant").hass.states);
    const select = states.find((s) => /^select\..*_model$/.test(s.entity_id));
    const swap = states.find((s) => s.entity_id.endsWith("_swap_status"));
    let menu;
    const walk = (node) => {
      if (menu) return;
      if (node.shadowRoot) walk(node.shadowRoot);
      for (const child of node.children ?? []) {
        if (child.localName === "ha-control-select-menu") menu = child;
        else walk(child);
      }
    };
    walk(document.body);
    return JSON.stringify({
      select: select?.state,
      swap: swap && [swap.state, swap.attributes.running],
      menu: menu && { disabled: menu.disabled, open: menu.menuOpen, connected: menu.isConnected },
    });
  });
}

// Picks `name` on the model select's menu once Home Assistant has ended any swap: the swap
// sensor's `running` goes false after the swap's last state writes (the finished line shows
// a moment before), so nothing redraws the select while its menu opens. One click: a failure
// says what the select and its menu looked like (the last session saw the options not render
// once, as a swap ended, without that record; not seen in 18 runs since).
async function chooseModel(page, name) {
  await page.waitForFunction(
    () => {
      const states = Object.values(document.querySelector("home-assistant").hass.states);
      const select = states.find((s) => /^select\..*_model$/.test(s.entity_id));
      const swap = states.find((s) => s.entity_id.endsWith("_swap_status"));
      return swap?.attributes.running === false && select && select.state !== "unavailable";
    },
    null,
    { timeout: 60_000 },
  );
  await page.locator("hui-select-options-card-feature ha-control-select-menu").first().click();
  try {
    // An option up to HA 2026.10, a menu item in 2026.11's dropdown.
    const choice = page.getByRole("option", { name }).or(page.getByRole("menuitem", { name }));
    await choice.click({ timeout: 30_000 });
  } catch (error) {
    error.message += `\nmodel select: ${await selectMenuState(page)}`;
    throw error;
  }
}

// Waits until the page's text matches every pattern; returns that text.
async function textMatching(page, patterns, what) {
  let text = "";
  for (let i = 0; i < 120; i += 1) {
    text = await pageText(page);
    if (patterns.every((pattern) => pattern.test(text))) return text;
    await page.waitForTimeout(250);
  }
  assert.fail(`${what}: no ${patterns.find((pattern) => !pattern.test(text))} in: ${text}`);
}

const finishedLine = (model) => new RegExp(`now serves ${model} \\(swap took [\\d.]+ s\\)`);

test("a swap through the model select shows target, phase, progress and the finished line", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    await logIn(page);
    await openDashboard(page);
    // The model the demo serves, as the select shows it.
    const served = await page.evaluate(
      () =>
        Object.values(document.querySelector("home-assistant").hass.states).find(
          (state) => state.entity_id.startsWith("select.") && state.entity_id.endsWith("_model"),
        )?.state,
    );
    assert.ok(served && served !== "Gemma 4 27B Instruct", `served model: ${served}`);

    await chooseModel(page, "Gemma 4 27B Instruct");
    // While it loads: the target by its name, a phase other than idle or ready, the elapsed
    // time and vLLM's latest load-log lines.
    const during = await textMatching(
      page,
      [
        /Target model: Gemma 4 27B Instruct/,
        /\b(Stopping|Starting|Loading)\b/,
        /Elapsed: \d+ s/,
        /vLLM API server version|Starting to load model|Loading weights took/,
      ],
      "during the swap",
    );
    assertPresentable(during, "during the swap");
    // Home Assistant's own polls of the loading server are not the load's progress.
    assert.ok(!/"GET \/(health|metrics)/.test(during), "access log lines in the swap card");
    await shot(page, "dashboard-swap.png");

    // Done: the integration's own line in the dashboard's Swaps logbook.
    const done = await textMatching(page, [finishedLine("Gemma 4 27B Instruct")], "after the swap");
    assert.match(done, /started loading Gemma 4 27B Instruct/);
    assertPresentable(done, "after the swap");

    // Back and forth once more: the second load of a model shows the expected time (the
    // previous load of that model) next to the elapsed one.
    await chooseModel(page, served);
    await textMatching(page, [finishedLine(served.replace(/[()]/g, "\\$&"))], "swap back");
    await chooseModel(page, "Gemma 4 27B Instruct");
    const again = await textMatching(
      page,
      [/Target model: Gemma 4 27B Instruct/, /Expected: about \d+ s/],
      "second load of the model",
    );
    assertPresentable(again, "second load of the model");
    const twice = new RegExp(`(${finishedLine("Gemma 4 27B Instruct").source}[\\s\\S]*){2}`);
    await textMatching(page, [twice], "second load done");

    // The same line in HA's Activity panel.
    await page.goto(`${endpoints.home_assistant.url}/logbook`);
    await page.getByText(finishedLine("Gemma 4 27B Instruct")).first().waitFor({ timeout: 60_000 });
  } finally {
    await page.close();
  }
});

test("a stopped vLLM: the dashboard says so and how to start it", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const note = /vLLM is stopped\. Choose a model above to start it/;
  const setRunning = (on) =>
    page.evaluate(async (turnOn) => {
      const hass = document.querySelector("home-assistant").hass;
      const entityId = Object.keys(hass.states).find((id) => /^switch\..*_vllm_running$/.test(id));
      await hass.callService("switch", turnOn ? "turn_on" : "turn_off", { entity_id: entityId });
    }, on);
  try {
    await logIn(page);
    await openDashboard(page);
    assert.ok(!note.test(await pageText(page)), "the note while vLLM runs");
    await setRunning(false);
    await textMatching(page, [note], "vLLM stopped");
    await setRunning(true);
    // Serving again: the select shows a model and the note is gone.
    await page.waitForFunction(
      () => {
        const states = Object.values(document.querySelector("home-assistant").hass.states);
        const select = states.find((state) => /^select\..*_model$/.test(state.entity_id));
        return select && !["unknown", "unavailable"].includes(select.state);
      },
      null,
      { timeout: 60_000 },
    );
    await page.waitForTimeout(1000);
    assert.ok(!note.test(await pageText(page)), "the note after vLLM started again");
  } finally {
    await page.close();
  }
});
