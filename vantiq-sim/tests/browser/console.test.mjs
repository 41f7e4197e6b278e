// The vantiq-sim console in a real browser: Debian's chromium, driven by playwright-core,
// against the emulator and the SDK's echo connector, each in its own process.
//
//   VANTIQ_SIM_BIN=target/debug/vantiq-sim ECHO_BIN=target/debug/examples/echo \
//     node --test vantiq-sim/tests/browser/console.test.mjs
//
// Every wait is on something the page shows (a locator), never a sleep. The test writes
// the screenshot used by vantiq-sim's README (docs/console.png) when SCREENSHOT is set.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import net from "node:net";
import crypto from "node:crypto";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../../..");
const SIM_BIN = resolve(ROOT, process.env.VANTIQ_SIM_BIN || "target/debug/vantiq-sim");
const ECHO_BIN = resolve(ROOT, process.env.ECHO_BIN || "target/debug/examples/echo");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 20_000;

let echo, browser, page, http;
const children = [];

function start(cmd, args, opts) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  children.push(child);
  child.stderr.on("data", (d) => process.env.VERBOSE && process.stderr.write(d));
  return child;
}

/// Starts `vantiq-sim serve` on a free port; resolves with its http URL.
async function startSim(...extra) {
  const child = start(SIM_BIN, ["serve", "--listen", "127.0.0.1:0", "--token", "tok", "--source", "echo", ...extra]);
  const line = await new Promise((ok, fail) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", ok);
    child.once("exit", (code) => fail(new Error("vantiq-sim exited: " + code)));
  });
  // "vantiq-sim listening on http://127.0.0.1:PORT (websocket ws://...)"
  return line.split(" ")[3];
}

before(async () => {
  http = await startSim();
  const dir = mkdtempSync(join(tmpdir(), "console-test-"));
  mkdirSync(join(dir, "serverConfig"));
  writeFileSync(
    join(dir, "serverConfig", "server.config"),
    `targetServer=${http}\nauthToken=tok\nsources=echo\ntcpProbePort=0\n`,
  );
  echo = start(ECHO_BIN, [], { cwd: dir });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.setDefaultTimeout(WAIT);
  await page.goto(http + "/");
});

after(async () => {
  if (browser) await browser.close();
  for (const c of children) c.kill("SIGTERM");
});

const badge = () => page.locator('#sources li[data-source="echo"] .badge');
const historyItem = (event) => page.locator(`#history li[data-event="${event}"]`);

async function connections() {
  return Number(await page.locator("#source-connections").textContent());
}

/// Waits until the page shows at least `n` handshakes and the source as connected.
async function connectedAtLeast(n) {
  await page.waitForFunction(
    (n) =>
      Number(document.getElementById("source-connections").textContent) >= n &&
      document.querySelector("#source-state .badge")?.textContent === "connected",
    n,
    { timeout: WAIT },
  );
}

test("the source appears as connected", async () => {
  await badge().filter({ hasText: "connected" }).waitFor();
  await page.locator("#live", { hasText: "live" }).waitFor();
  assert.equal(await page.locator("#source-frames").textContent(), "text");
  assert.equal(await page.locator("#source-secret").textContent(), "present");
  await historyItem("connected").first().waitFor();
});

test("a publish from the form comes back as a notification without reloading", async () => {
  await page.fill("#publish-json", '{"hello": "browser", "big": 123456789012345678901234567890}');
  await page.click("#publish-form button");
  await page.locator("#publish-result", { hasText: "published" }).waitFor();
  const note = page.locator("#notifications li", { hasText: '"hello": "browser"' });
  await note.waitFor();
  assert.match(await note.textContent(), /123456789012345678901234567890/);
  assert.match(await page.locator("#notification-stats").textContent(), /^1 received/);
  // Bad input is refused before it is sent.
  await page.fill("#publish-json", "[1, 2]");
  await page.click("#publish-form button");
  await page.locator("#publish-result", { hasText: "must be a JSON object" }).waitFor();
  await page.fill("#publish-json", "{oops");
  await page.click("#publish-form button");
  await page.locator("#publish-result", { hasText: "not valid JSON" }).waitFor();
});

test("a chunked query shows its partial answers and the final one", async () => {
  await page.fill("#query-json", '{"op": "rows", "count": 5, "chunk": 2}');
  await page.click("#query-form button");
  await page.locator("#query-result", { hasText: "5 rows, status 200" }).waitFor();
  const statuses = await page.locator("#query-frames li").evaluateAll((lis) => lis.map((li) => li.dataset.status));
  assert.deepEqual(statuses, ["100", "100", "200"]);
  assert.match(await page.locator("#query-result").textContent(), / ms$/);
  await page.fill("#query-json", '{"op": "fail", "reason": "asked"}');
  await page.click("#query-form button");
  await page.locator("#query-result", { hasText: "error 400" }).waitFor();
  assert.match(await page.locator("#query-result").textContent(), /echo\.failed/);
});

test("set-config and reconnect change the state and the history", async () => {
  const before = await connections();
  await page.fill("#config-json", '{"v": 2}');
  await page.click("#config-form button");
  await page.locator("#config-result", { hasText: "configuration set" }).waitFor();
  await connectedAtLeast(before + 1);
  await historyItem("reconnectRequired").first().waitFor();
  await page.locator("#source-config", { hasText: '"v": 2' }).waitFor();
  await page.click("#reconnect");
  await page.locator("#action-result", { hasText: "reconnectRequired sent" }).waitFor();
  await connectedAtLeast(before + 2);
  assert.equal(await historyItem("reconnectRequired").count(), 2);
});

test("a drop shows the disconnection and the reconnection", async () => {
  const before = await connections();
  await page.click("#drop");
  await page.locator("#action-result", { hasText: "connection dropped" }).waitFor();
  await historyItem("dropped").waitFor();
  await connectedAtLeast(before + 1);
  // Newest first: the reconnection above the drop.
  const events = await page.locator("#history li").evaluateAll((lis) => lis.slice(0, 2).map((li) => li.dataset.event));
  assert.deepEqual(events, ["connected", "dropped"]);
});

test("stop and resume reading", async () => {
  await page.click("#stop-reading");
  await page.locator("#source-reading", { hasText: "stopped" }).waitFor();
  await page.click("#resume-reading");
  await page.locator("#source-reading", { hasText: "reading" }).waitFor();
  await historyItem("reading resumed").waitFor();
});

test("the query load draws its results", async () => {
  await page.fill("#load-queries", "200");
  await page.fill("#load-in-flight", "4");
  await page.fill("#load-json", '{"op": "rows", "count": 1}');
  await page.click("#load-form button");
  await page.locator("#load-result", { hasText: "200 answered" }).waitFor();
  const painted = await page.locator("#load-chart").evaluate((c) => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
  assert.ok(painted > 500, "the chart has bars: " + painted + " pixels");
});

test("a violation shows up", async () => {
  await sendNotJson(http);
  const v = page.locator('#violations li[data-kind="json.invalid"]');
  await v.waitFor();
  await page.locator("#violation-count", { hasText: "1 violation" }).waitFor();
  if (process.env.SCREENSHOT) {
    await page.locator("#notifications li").first().waitFor();
    await page.screenshot({ path: resolve(ROOT, process.env.SCREENSHOT), fullPage: true });
  }
});

test("with a control token the page asks for it, then works", async () => {
  const guarded = await startSim("--control-token", "ctl-Tk-42");
  const other = await browser.newPage();
  other.setDefaultTimeout(WAIT);
  try {
    await other.goto(guarded + "/");
    await other.locator("#token-form").waitFor();
    assert.equal(await other.locator("#sources li").count(), 0, "no data without the token");
    await other.fill("#token", "ctl-Tk-42");
    await other.click("#token-form button");
    await other.locator('#sources li[data-source="echo"]').waitFor();
    await other.locator("#live", { hasText: "live" }).waitFor();
    await other.locator("#token-form").waitFor({ state: "hidden" });
  } finally {
    await other.close();
  }
});

/// Opens a WebSocket by hand (Node 20 has no client) and sends one text frame that is
/// not JSON: a protocol violation for the emulator to record.
function sendNotJson(httpUrl) {
  const { hostname, port } = new URL(httpUrl);
  return new Promise((ok, fail) => {
    const sock = net.connect(Number(port), hostname, () => {
      const key = crypto.randomBytes(16).toString("base64");
      sock.write(
        `GET /api/v1/wsock/websocket HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.once("data", (d) => {
      if (!d.toString().startsWith("HTTP/1.1 101")) return fail(new Error("no upgrade: " + d));
      const payload = Buffer.from("not json");
      const mask = crypto.randomBytes(4);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
      sock.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]), () => {
        sock.end();
        ok();
      });
    });
    sock.on("error", fail);
  });
}
