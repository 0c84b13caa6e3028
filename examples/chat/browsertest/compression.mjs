// Checks that Chromium negotiates permessage-deflate with the chat server
// and that compressed messages go both ways.
//
//   node compression.mjs BASE_URL
//
// A page at BASE_URL opens a socket to a room as the chat page does, and
// prints the extensions the server answered with; it sends a message long
// enough to be compressed (Chromium compresses what it sends once the
// extension is negotiated) and waits for the room to bring it back, which
// the server compresses. Exits 0 once both hold, 1 otherwise.
import { chromium } from 'playwright-core';

const [base] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = await browser.newPage();
  await page.goto(base + '/');
  const got = await page.evaluate(async () => {
    const content = 'a message long enough to be compressed, '.repeat(20);
    const ws = new WebSocket(`ws://${location.host}/chat/room/deflate?username=browser`);
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('socket error')); });
    const extensions = ws.extensions;
    const echoed = new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('the message never came back')), 10_000);
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'message' && m.content === content) { clearTimeout(timer); ok(true); }
      };
    });
    ws.send(JSON.stringify({ type: 'message', content }));
    const back = await echoed;
    ws.close();
    return { extensions, back };
  });
  console.log('extensions:', got.extensions);
  console.log('long message came back intact:', got.back);
  if (got.extensions !== 'permessage-deflate; server_no_context_takeover; client_no_context_takeover') {
    console.log('FAIL: permessage-deflate was not negotiated');
    failed = true;
  }
} catch (e) {
  console.log('FAIL:', e.message);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
