// The browser journeys of issue #12, in Debian's chromium through playwright-core (never a
// downloaded browser). Run by tests/browser.rs, which owns the agents, the printer emulator
// and the pty scanners: this script says `STEP <name>` on stdout when it needs the world to
// change (a scan, a printer fault) and waits for `OK` on stdin. Times are measured from
// before the step is asked for, so they include the scanner and the agent.
//
// Environment: NURSE_BASE (an agent at the collection site), TECH_BASE (one at the cell lab),
// CHROMIUM (the browser), SHOTS (where screenshots go).

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";

const NURSE_BASE = process.env.NURSE_BASE;
const TECH_BASE = process.env.TECH_BASE;
const SHOTS = process.env.SHOTS;
mkdirSync(SHOTS, { recursive: true });

const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (line) => { const next = waiting.shift(); if (next) { next(line); } });
function step(name) {
  return new Promise((resolve, reject) => {
    waiting.push((line) => (line === "OK" ? resolve() : reject(new Error(`step ${name}: ${line}`))));
    process.stdout.write(`STEP ${name}\n`);
  });
}
function timing(name, ms) { process.stdout.write(`TIMING ${name} ${ms}\n`); }

/// Asks for a step, then waits for `selector` within `budget` ms of asking.
async function stepAndSee(page, name, selector, budget) {
  const t0 = Date.now();
  await step(name);
  await page.waitForSelector(selector, { timeout: Math.max(budget - (Date.now() - t0), 1) });
  const ms = Date.now() - t0;
  timing(name, ms);
  return ms;
}

function check(condition, message) { if (!condition) { throw new Error(message); } }

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
const viewport = { width: 1366, height: 768 };
const blocked = [];
const pages = [];
async function newPage() {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  pages.push(page);
  // Nothing may come from anywhere but the daemon.
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (![new URL(NURSE_BASE).host, new URL(TECH_BASE).host].includes(url.host) && url.protocol !== "data:") {
      blocked.push(request.url());
    }
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") { blocked.push(`console: ${msg.text()} at ${JSON.stringify(msg.location())}`); }
  });
  return page;
}

async function signIn(page, base, operator, pin, { keypad = false } = {}) {
  await page.goto(`${base}/login`);
  await page.fill("input[name=operator]", operator);
  if (keypad) {
    // A scanner and a mouse only: the badge fills the id, the keypad the PIN.
    for (const digit of pin) { await page.click(`.keypad button[data-key='${digit}']`); }
  } else {
    await page.fill("input[name=pin]", pin);
  }
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

try {
  // A nurse: sign in, find the order by the patient's name, print bag 1 on the emulator, scan
  // it with the verify scanner, see it verified; then the printer runs out of labels.
  const nurse = await newPage();
  await nurse.goto(`${NURSE_BASE}/login`);
  await nurse.fill("input[name=operator]", "nurse1");
  await nurse.screenshot({ path: `${SHOTS}/login.png` });
  await signIn(nurse, NURSE_BASE, "nurse1", "111111");
  check(new URL(nurse.url()).pathname === "/print", `nurse lands on ${nurse.url()}`);
  await nurse.fill("#order-search", "nobody-by-this-name");
  await nurse.waitForSelector("#no-match", { state: "visible" });
  // Searched as the list shows the name, comma and all.
  await nurse.fill("#order-search", "Example, Pat");
  await nurse.waitForSelector("tr[data-coi=CHA999925000043]", { state: "hidden" });
  check(await nurse.isVisible("tr[data-coi=CHA999925000042]"), "the searched order is listed");
  check(!(await nurse.isVisible("#no-match")), "no 'no match' once one matches");
  check(!nurse.url().includes("xample"), "no patient name in the URL");
  await nurse.screenshot({ path: `${SHOTS}/print-orders.png` });
  await Promise.all([nurse.waitForNavigation(), nurse.click("tr[data-coi=CHA999925000042] a")]);
  await nurse.waitForSelector("[data-printer-state=ready]");
  await nurse.screenshot({ path: `${SHOTS}/print-order.png` });
  await nurse.click("[data-action=print][data-bag='1']");
  await nurse.waitForSelector("[data-job-state=confirmed]", { timeout: 10000 });
  check((await nurse.textContent("#order-main")).includes("Now scan the label you just printed"), "asks for the verify scan");
  const verified = await stepAndSee(nurse, "scan-verify", "article[data-bag='1'][data-label=verified]", 3000);
  check((await nurse.textContent("#verify-live")).includes("VERIFIED"), "the verify result is shown inline");
  await nurse.screenshot({ path: `${SHOTS}/print-verified.png` });
  await stepAndSee(nurse, "media-out", "[data-printer-fault=media_out]", 2000);
  check((await nurse.textContent("#printer-panel")).includes("Load labels"), "says what to do");
  await nurse.screenshot({ path: `${SHOTS}/print-media-out.png` });
  await step("media-back");

  // A tech: sign in; the receipt scanner sends a matching bag, then a wrong one.
  const tech = await newPage();
  await signIn(tech, TECH_BASE, "tech1", "222222", { keypad: true });
  check(new URL(tech.url()).pathname === "/receive", `tech lands on ${tech.url()}`);
  await tech.waitForSelector("[data-verdict=waiting]");
  // The event stream is open before the first scan.
  await tech.waitForSelector("body[data-sse=open]");
  await tech.screenshot({ path: `${SHOTS}/receive-ready.png` });
  await stepAndSee(tech, "scan-receipt-match", "#verdict-area [data-verdict=match]", 1000);
  check((await tech.textContent("#verdict-area")).includes("MATCH"), "MATCH in words");
  await tech.waitForSelector("li[data-coi=CHA999925000043][data-missing='0']", { timeout: 2000 });
  await tech.screenshot({ path: `${SHOTS}/receive-match.png` });
  await stepAndSee(tech, "scan-receipt-wrong", "#verdict-area [data-verdict=mismatch]", 1000);
  const words = await tech.textContent("#verdict-area");
  check(words.includes("MISMATCH"), "MISMATCH in words");
  check((await tech.textContent("#verdict-area .reason")).trim().length > 0, "the reason is shown");
  await tech.waitForFunction(() => document.body.getAttribute("data-last-sound") === "mismatch", null, { timeout: 2000 });
  await tech.screenshot({ path: `${SHOTS}/receive-mismatch.png` });
  // Half a read from the scanner, never completed: the screen says so once it lapses.
  await stepAndSee(tech, "scan-receipt-half", "#verdict-area [data-verdict=incomplete]", 1000);
  await tech.waitForSelector("#verdict-area [data-verdict=lapsed]", { timeout: 4000 });
  check((await tech.textContent("#verdict-area")).includes("HALF A SCAN LAPSED"), "says the half lapsed");

  // An admin at the cell lab.
  const admin = await newPage();
  await signIn(admin, TECH_BASE, "admin1", "333333");
  check(new URL(admin.url()).pathname === "/admin", `admin lands on ${admin.url()}`);
  await admin.click("[data-action=audit-verify]");
  await admin.waitForSelector("[data-audit=intact]");
  await admin.screenshot({ path: `${SHOTS}/admin.png`, fullPage: true });

  check(blocked.length === 0, `requests or errors outside the daemon: ${blocked.join(", ")}`);
  process.stdout.write(`DONE verified=${verified}\n`);
  await browser.close();
  process.exit(0);
} catch (error) {
  process.stdout.write(`FAIL ${error.message.split("\n")[0]}\n`);
  process.stderr.write(`${error.stack}\n`);
  // What the last screen showed, to see why.
  const last = pages[pages.length - 1];
  if (last) {
    await last.screenshot({ path: `${SHOTS}/failure.png`, fullPage: true }).catch(() => {});
    const text = await last.textContent("main").catch(() => "");
    process.stderr.write(`last screen (${last.url()}): ${(text || "").replace(/\s+/g, " ").slice(0, 1500)}\n`);
  }
  if (blocked.length) { process.stderr.write(`outside the daemon or errors: ${blocked.join(", ")}\n`); }
  await browser.close();
  process.exit(1);
}
