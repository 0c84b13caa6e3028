// Drives the chat page in Debian's Chromium through playwright-core.
//
//   node page.mjs SCENARIO BASE_URL [PROXY_URL]
//
// Each scenario prints what it checked and exits 0, or prints what failed
// and exits 1. A line "@stop" or "@start" asks the Go test (browser_test.go)
// to stop the chat server or start it again on the same port, "@cut" or
// "@heal" to cut the connections through PROXY_URL (a TCP proxy in front
// of the server) and refuse new ones, or to let them through again; the
// test answers "ok" on stdin once it has. With WSROOM_SCREENSHOTS set to a
// folder, each scenario saves PNGs of the pages there.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import path from 'node:path';

const [scenario, base, proxied] = process.argv.slice(2);
const WAIT = 10_000; // for any one thing to appear on a page
const shots = process.env.WSROOM_SCREENSHOTS;

const log = (...a) => console.log(...a);
function check(ok, what) {
  if (!ok) throw new Error(what);
  log('ok:', what);
}

// The Go test answers each "@" request with a line on stdin.
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  log('@' + what);
  const { value, done } = await answers.next();
  if (done || value !== 'ok') throw new Error(`asked the test to ${what}: ${done ? 'no answer' : value}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// Every page opened here is watched: a response of 404 (a missing favicon,
// say) or an uncaught script error fails the scenario.
const problems = [];
async function openPage(name, where = '/', at = base) {
  const context = await browser.newContext({ viewport: { width: 760, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('response', (r) => { if (r.status() === 404) problems.push(`${name}: 404 for ${r.url()}`); });
  page.on('pageerror', (e) => problems.push(`${name}: script error: ${e.message}`));
  // Keeps a handle on the page's socket, for sending what the page never would.
  await page.addInitScript(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) { window.lastSocket = this; return send.call(this, data); };
  });
  await page.goto(at + where);
  return page;
}

async function statusSays(page, text) {
  await page.waitForFunction((t) => document.getElementById('status').textContent.includes(t), text, { timeout: WAIT });
}
async function join(page, { room = 'general', name, token } = {}) {
  await page.fill('#room', room);
  if (name !== undefined) await page.fill('#username', name);
  if (token !== undefined) await page.fill('#token', token);
  await page.click('#join');
}
async function joined(page, name, room = 'general') {
  await statusSays(page, `in room ${room} as ${name}`);
  // The server's own "joined" for this member arrives first.
  await page.locator('#messages li.joined', { hasText: `${name} joined` }).first().waitFor();
}
async function send(page, text) {
  await page.fill('#input', text);
  await page.click('#send');
}
async function sees(page, who, text) {
  await page.locator('#messages li.message', { hasText: `${who}: ${text}` }).waitFor();
}
// count returns how many of the page's entries of kind read exactly text.
async function count(page, kind, text) {
  return page.$$eval('#messages li.' + kind, (ls, t) => ls.filter((l) => l.textContent.replace(/^\[[^\]]*\] /, '') === t).length, text);
}
async function shot(page, name) {
  if (shots) await page.screenshot({ path: path.join(shots, `${scenario}-${name}.png`) });
}

// listShows waits until the page's list of who is in the room reads want,
// one "name" or "name×N" per user, in order.
async function listShows(page, who, want) {
  await page.waitForFunction((w) => [...document.querySelectorAll('#users li')].map((l) => l.textContent).join(' ') === w,
    want, { timeout: WAIT });
  log(`ok: ${who}'s list reads "${want}"`);
}

const scenarios = {
  // Who is in the room: two tabs of alice are one user with 2, bob sees
  // both; a tab closes, then the other leaves, and every list follows.
  async presence() {
    const tab1 = await openPage('alice-tab1'), tab2 = await openPage('alice-tab2'), bob = await openPage('bob');
    check(await tab1.textContent('#users-empty') === 'not in a room', 'before joining the list says "not in a room"');
    await join(tab1, { room: 'who', name: 'alice' });
    await joined(tab1, 'alice', 'who');
    await listShows(tab1, 'alice (tab 1)', 'alice');
    await join(tab2, { room: 'who', name: 'alice' });
    await joined(tab2, 'alice', 'who');
    await listShows(tab2, 'alice (tab 2)', 'alice×2');
    await listShows(tab1, 'alice (tab 1)', 'alice×2');
    await join(bob, { room: 'who', name: 'bob' });
    await joined(bob, 'bob', 'who');
    await listShows(bob, 'bob', 'alice×2 bob');
    await listShows(tab1, 'alice (tab 1)', 'alice×2 bob');
    check(await bob.$eval('#users li.me', (l) => l.textContent) === 'bob', 'bob is marked as himself');
    await shot(bob, 'list');

    await tab2.context().close(); // the tab goes, without a word
    await listShows(bob, 'bob', 'alice bob');
    await listShows(tab1, 'alice (tab 1)', 'alice bob');
    await tab1.click('#leave');
    await statusSays(tab1, 'you left');
    await listShows(bob, 'bob', 'bob');
    check(await tab1.$$eval('#users li', (ls) => ls.length) === 0, 'after leaving, alice\'s list is empty');
    await shot(bob, 'alone');
  },


  // Two people in one room: messages, typing, the buttons, Leave.
  async chat() {
    const alice = await openPage('alice'), bob = await openPage('bob');
    // Headless Chromium never asks for a favicon, so the 404 watch alone
    // cannot tell: the page must name an icon that loads without a request.
    const icons = await alice.$$eval('link[rel~="icon"]', (ls) => ls.map((l) => l.href));
    check(icons.length > 0 && icons.every((h) => h.startsWith('data:image/')), `the page's favicon is inline (${icons.length} named)`);
    const width = await alice.evaluate((src) => new Promise((done) => {
      const img = new Image(); img.onload = () => done(img.naturalWidth); img.onerror = () => done(0); img.src = src;
    }), icons[0]);
    check(width > 0, 'and it decodes as an image');
    check(await alice.isEnabled('#join') && await alice.isDisabled('#leave'), 'before joining: Join enabled, Leave disabled');

    await join(alice, { name: 'alice' });
    await joined(alice, 'alice');
    check(await alice.isDisabled('#join') && await alice.isEnabled('#leave'), 'while joined: Join disabled, Leave enabled');
    check(await alice.isDisabled('#room') && await alice.isDisabled('#token'), 'while joined: room and token fields disabled');
    await join(bob, { name: 'bob' });
    await joined(bob, 'bob');
    await alice.locator('#messages li.joined', { hasText: 'bob joined' }).waitFor();

    await send(alice, 'hello bob');
    await sees(bob, 'alice', 'hello bob');
    await sees(alice, 'alice', 'hello bob');
    log('ok: bob sees alice\'s message');

    // Alice types; bob is told, alice is not. Bob answers once he sees her
    // typing, and a room's frames reach each member in order, so when
    // alice sees bob's answer she has had her own typing signal too.
    await alice.locator('#input').pressSequentially('still typ');
    await bob.locator('#typing', { hasText: 'alice is typing…' }).waitFor();
    log('ok: bob sees "alice is typing…"');
    await send(bob, 'after typing');
    await sees(alice, 'bob', 'after typing');
    check(!(await alice.textContent('#typing')).includes('alice'), 'alice is not told that she is typing');
    await shot(bob, 'joined');

    await alice.fill('#input', '');
    await alice.click('#leave');
    await statusSays(alice, 'you left');
    check(await alice.isEnabled('#join') && await alice.isDisabled('#leave'), 'after leaving: Join enabled, Leave disabled');
    await bob.locator('#messages li.left', { hasText: 'alice left' }).waitFor();
    log('ok: alice reads "you left", bob sees "alice left"');
    await shot(alice, 'left');
  },

  // A chat started with -token secret.
  async token() {
    const page = await openPage('guest');
    await join(page, { name: 'guest' });
    await statusSays(page, 'could not connect: this chat needs a token');
    log('ok: no token: "could not connect: this chat needs a token"');
    check(await page.isEnabled('#join'), 'after a refused join: Join enabled again');
    await shot(page, 'needs-token');

    await join(page, { name: 'guest', token: 'wrong' });
    await statusSays(page, 'could not connect: the token was refused');
    log('ok: wrong token: "could not connect: the token was refused"');

    await join(page, { name: 'guest', token: 'secret' });
    await joined(page, 'guest');
    check(!page.url().includes('secret'), `a typed token stays out of the address bar (${page.url()})`);
    await shot(page, 'token-typed');

    const linked = await openPage('linked', '/?token=secret#x');
    check(!linked.url().includes('token'), `a token in the page's address is removed from it (${linked.url()})`);
    check(await linked.inputValue('#token') === 'secret', 'and fills the token field');
    await join(linked, { name: 'linked' });
    await joined(linked, 'linked');
    await page.locator('#messages li.joined', { hasText: 'linked joined' }).waitFor();
    log('ok: the token from the address joins');
  },

  // The server stops (each socket closes with 1001) and starts again on the
  // same port: the page says so, retries, and rejoins as before.
  async restart() {
    const alice = await openPage('alice'), bob = await openPage('bob'), carol = await openPage('carol');
    await join(alice, { room: 'ops', name: 'alice' });
    await joined(alice, 'alice', 'ops');
    await join(bob, { room: 'ops', name: 'bob' });
    await joined(bob, 'bob', 'ops');

    await ask('stop');
    await statusSays(alice, 'server restarting, reconnecting…');
    await statusSays(bob, 'server restarting, reconnecting…');
    log('ok: on 1001 both read "server restarting, reconnecting…"');
    check(await alice.isDisabled('#join') && await alice.isDisabled('#input'), 'while reconnecting: Join and the message field disabled');
    await shot(alice, 'restarting');
    await join(carol, { name: 'carol' });
    await statusSays(carol, 'could not connect to the server');
    log('ok: a join while the server is down: "could not connect to the server"');

    await ask('start');
    await joined(alice, 'alice', 'ops');
    await joined(bob, 'bob', 'ops');
    // Without a broker the history was in the stopped process: a new epoch.
    await statusSays(alice, '(reconnected, history lost');
    await alice.locator('#messages li.lost', { hasText: 'reconnected: history lost' }).waitFor();
    log('ok: both rejoined room ops under their own names, and read "history lost"');
    await send(alice, 'back again');
    await sees(bob, 'alice', 'back again');
    log('ok: bob sees alice\'s message after the restart');
    await shot(bob, 'reconnected');
  },

  // Alice's connection is cut (she reaches the server through a proxy the
  // test cuts) while bob posts: her page reconnects on its own, resumes
  // from the last event it showed, says what it recovered, and shows every
  // message once.
  async recover() {
    if (!proxied) throw new Error('the recover scenario needs PROXY_URL');
    const alice = await openPage('alice', '/', proxied), bob = await openPage('bob');
    await join(alice, { room: 'resume', name: 'alice' });
    await joined(alice, 'alice', 'resume');
    await join(bob, { room: 'resume', name: 'bob' });
    await joined(bob, 'bob', 'resume');
    await alice.locator('#messages li.joined', { hasText: 'bob joined' }).waitFor();
    await send(alice, 'before the cut');
    await sees(alice, 'alice', 'before the cut');
    await sees(bob, 'alice', 'before the cut');

    await ask('cut');
    await statusSays(alice, 'connection lost, reconnecting…');
    await bob.locator('#messages li.left', { hasText: 'alice left' }).waitFor();
    log('ok: alice\'s page reads "connection lost, reconnecting…", bob sees "alice left"');
    const away = ['while you were away', 'second', 'third'];
    for (const text of away) {
      await send(bob, text);
      await sees(bob, 'bob', text);
    }
    await ask('heal');
    await statusSays(alice, 'recovered');
    const notice = await alice.locator('#messages li.recovered').last().textContent();
    check(notice === 'reconnected: recovered 4 messages', `alice's page says what it recovered: "${notice}" (bob's 3 and her own leaving)`);
    check((await alice.textContent('#status')).includes('(reconnected, recovered 4 messages)'), 'and so does its status line');
    for (const text of away) await sees(alice, 'bob', text);
    await send(bob, 'live again');
    await sees(alice, 'bob', 'live again');
    for (const [who, text] of [['alice', 'before the cut'], ...away.map((t) => ['bob', t]), ['bob', 'live again']]) {
      const n = await count(alice, 'message', `${who}: ${text}`);
      check(n === 1, `alice's page shows "${who}: ${text}" once (${n})`);
    }
    check(await count(alice, 'joined', 'bob joined') === 1, 'and "bob joined" once');
    await shot(alice, 'recovered');
  },

  // An error frame, here the endpoint's answer to input that is not JSON,
  // is shown as a notice and the page stays in the room.
  async notice() {
    const page = await openPage('ann');
    await join(page, { name: 'ann' });
    await joined(page, 'ann');
    await send(page, 'first');
    await sees(page, 'ann', 'first');
    await page.evaluate(() => window.lastSocket.send('not json'));
    const notice = page.locator('#messages li.error');
    await notice.waitFor();
    const text = await notice.textContent();
    check(/^⚠ [A-Z]/.test(text) && !text.startsWith('error:'), `the error frame reads as a notice: "${text}"`);
    await send(page, 'still here');
    await sees(page, 'ann', 'still here');
    log('ok: the page stays in the room after the notice');
    await shot(page, 'notice');
  },
};

let code = 0;
try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`no scenario "${scenario}"; have ${Object.keys(scenarios).join(', ')}`);
  await run();
  check(problems.length === 0, 'no 404 and no script error on any page' + (problems.length ? ': ' + problems.join('; ') : ''));
} catch (e) {
  log('FAIL:', e.message);
  for (const p of problems) log('  seen:', p);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
