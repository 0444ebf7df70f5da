// Opens the gateway's GraphiQL in Debian's chromium, headless, with the
// network limited to the gateway, runs a query and a subscription through the
// page's own Run button (and its Prettify button), and prints what it saw as one JSON object on stdout
// for gateway/tests/graphiql.rs to assert on.
//
//   node graphiql.mjs http://127.0.0.1:PORT QUERY EXPECTED SUBSCRIPTION EXPECTED
//
// Each EXPECTED is text the result pane must come to show; the page is
// waited for (never slept on) until it does, or until puppeteer's own
// 30-second limit on a wait ends the run with an error.
import puppeteer from 'puppeteer-core';

const [base, query, queryShows, subscription, subscriptionShows] = process.argv.slice(2);
const origin = new URL(base).origin;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    // The tests run as root, where chromium's sandbox cannot start.
    '--no-sandbox',
    // No host resolves but the gateway's: it is all there is.
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(base).hostname}`,
    '--no-first-run',
    '--disable-background-networking',
  ],
});
const seen = {
  foreign: [],
  sockets: [],
  assets: [],
  violations: [],
  errors: [],
};
const page = await browser.newPage();
await page.setViewport({ width: 1400, height: 900 });
try {
  // Every request the page makes: the gateway's go on, any other is
  // refused and written down (the test fails on it).
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || new URL(url).origin === origin) {
      request.continue();
    } else {
      seen.foreign.push(url);
      request.abort();
    }
  });
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.pathname.startsWith('/graphiql/assets/')) {
      seen.assets.push({
        path: url.pathname,
        status: response.status(),
        encoding: response.headers()['content-encoding'] ?? null,
      });
    }
  });
  page.on('pageerror', (error) => seen.errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(message.text());
  });
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketCreated', ({ url }) => seen.sockets.push(url));
  // Run before the page's scripts, by the browser (no policy applies):
  // the policy violations the page meets, and a look-up of GraphiQL's
  // editors by their file name.
  await page.evaluateOnNewDocument(() => {
    globalThis.__model = (name) =>
      globalThis.__MONACO?.editor.getModels().find((m) => m.uri.path.endsWith(`-${name}`));
    globalThis.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      globalThis.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`),
    );
  });

  const response = await page.goto(`${origin}/graphql`, { waitUntil: 'load' });
  seen.page = {
    status: response.status(),
    csp: response.headers()['content-security-policy'] ?? null,
  };

  // GraphiQL is up when Monaco has its four editors.
  const editors = ['operation.graphql', 'variables.json', 'request-headers.json', 'response.json'];
  await page.waitForFunction(
    (names) => names.every((n) => globalThis.__model(n)),
    {},
    editors,
  );
  seen.headers = await page.evaluate(() => globalThis.__model('request-headers.json').getValue());

  /// Puts `text` in the operation editor, presses Run, waits until the
  /// result pane shows `expected`; the pane's text.
  const run = async (text, expected) => {
    await page.evaluate((t) => globalThis.__model('operation.graphql').setValue(t), text);
    // GraphiQL takes in an edit a moment later (debounced), when it saves
    // it: before that, Run would run the previous operation.
    await page.waitForFunction((t) => localStorage.getItem('graphiql:query') === t, {}, text);
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(
      // Monaco wraps long lines: compared with all white space as one space.
      (e) => document.querySelector('.graphiql-response')?.innerText.replace(/\s+/g, ' ').includes(e),
      {},
      expected,
    );
    return page.evaluate(() => globalThis.__model('response.json').getValue());
  };
  // Prettify, of the operation (prettier's GraphQL printer) and of the
  // headers (JSON with comments, by the bundle's stand-in for prettier's).
  const messy = { query: '{hello}', headers: '{"x-demo":"1", // kept\n}' };
  await page.evaluate((m) => {
    globalThis.__model('operation.graphql').setValue(m.query);
    globalThis.__model('request-headers.json').setValue(m.headers);
  }, messy);
  await page.waitForFunction((t) => localStorage.getItem('graphiql:query') === t, {}, messy.query);
  await page.click('button[aria-label^="Prettify"]');
  await page.waitForFunction(
    (m) =>
      globalThis.__model('operation.graphql').getValue() !== m.query &&
      globalThis.__model('request-headers.json').getValue() !== m.headers,
    {},
    messy,
  );
  seen.prettified = await page.evaluate(() => ({
    query: globalThis.__model('operation.graphql').getValue(),
    headers: globalThis.__model('request-headers.json').getValue(),
  }));

  seen.query = await run(query, queryShows);
  seen.subscription = await run(subscription, subscriptionShows);
  seen.violations = await page.evaluate(() => globalThis.__violations);
  seen.title = await page.title();
} catch (error) {
  // What the page showed and met, for the failure's message.
  seen.violations = await page.evaluate(() => globalThis.__violations).catch(String);
  seen.text = await page.evaluate(() => document.body.innerText).catch(String);
  seen.models = await page
    .evaluate(() => globalThis.__MONACO?.editor.getModels().map((m) => m.uri.toString()))
    .catch(String);
  process.stderr.write(`${error.stack}\nseen: ${JSON.stringify(seen, null, 1)}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
if (!process.exitCode) process.stdout.write(`${JSON.stringify(seen)}\n`);
