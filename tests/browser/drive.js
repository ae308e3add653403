// Open PAGE_URL in headless Chromium, run the page's scenario with the JSON config on
// standard input and print its result as JSON (tests/browser/test_cors_in_chromium.py).
const { chromium } = require("playwright-core");

async function main() {
  const [pageUrl, executablePath] = process.argv.slice(2);
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(pageUrl);
    const result = await page.evaluate((config) => window.runRelayScenario(config), JSON.parse(input));
    process.stdout.write(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(String(error.stack || error));
  process.exit(1);
});
