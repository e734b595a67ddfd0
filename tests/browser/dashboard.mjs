// Loads the zk-stats dashboard in headless Chromium (Debian's, driven by
// playwright-core) and prints what the page shows as JSON on stdout:
// the top paths and clients tables, the cards, whether the charts drew,
// and every console error and page error.
//
//   node dashboard.mjs URL [SCREENSHOT.png]
import { chromium } from "playwright-core";

const [url, shot] = process.argv.slice(2);
if (!url) {
  console.error("usage: node dashboard.mjs URL [SCREENSHOT.png]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // As root, in a machine without internet: no sandbox, no background
  // connections (they are refused here and clutter the console).
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const errors = [];
const requests = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("console", (m) => {
    if (m.type() === "error") errors.push("console: " + m.text());
  });
  page.on("pageerror", (e) => errors.push("page: " + e.message));
  page.on("requestfailed", (r) => errors.push("request failed: " + r.url()));
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-loaded='1']", { timeout: 15000 });
  // Let one more refresh cycle run.
  await page.waitForTimeout(2500);
  const rows = (id) =>
    page.$$eval(`#${id} tr`, (trs) =>
      trs.slice(1).map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent)),
    );
  const cards = await page.$$eval(".card", (cs) =>
    Object.fromEntries(cs.map((c) => [c.querySelector(".k").textContent, c.querySelector(".v").textContent])),
  );
  // A chart drew when its canvas has non-background pixels.
  const drawn = await page.$$eval("canvas", (cs) =>
    cs.map((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
      return { id: c.id, painted: n };
    }),
  );
  const problem = await page.$eval("#problem", (e) => e.textContent);
  const state = await page.$eval("#state", (e) => e.textContent);
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  const out = {
    paths: await rows("paths"),
    clients: await rows("clients"),
    auths: await rows("auths"),
    latencies: await rows("latencies"),
    errors_table: await rows("errors"),
    cards,
    drawn,
    problem,
    state,
    errors,
    foreign: requests.filter((u) => !u.startsWith(new URL(url).origin)),
  };
  process.stdout.write(JSON.stringify(out) + "\n");
} finally {
  await browser.close();
}
