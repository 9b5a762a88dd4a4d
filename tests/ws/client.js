// tests/ws/client.js: drive tests/test-websocket's server with npm's `ws` client.
//
//     NODE_PATH=tests/ws/node_modules node client.js PORT SCENARIO
//
// Scenarios (same paths as pyclient.py) print "ok" and exit 0, or explain and exit 1:
//   sizes      text and binary of 0 B .. 16 MiB come back equal
//   fragments  a message sent as fragments ({fin: false}) comes back whole; ping/pong
//   close      close 4001 is echoed; the server's 4000 "bye" is received
//   deflate    permessage-deflate with no_context_takeover both ways and
//              server_max_window_bits=10 negotiated and echoing; off on /plain
//   oversize   a 2 KiB message to /small is answered with close 1009
//   badutf8    a text message whose UTF-8 breaks across its first two fragments is
//              failed with 1007 before its last fragment is sent
// Exit 77: the ws package is not installed (tests/ws/install-node-ws.sh).
'use strict';
let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.error('SKIP: npm ws not installed: ' + e.message);
  process.exit(77);
}

const port = Number(process.argv[2]);
const name = process.argv[3];

function open(path, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket('ws://127.0.0.1:' + port + path, Object.assign({maxPayload: 0}, opts || {}));
    ws.binaryType = 'nodebuffer';
    const inbox = [], waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = {data, isBinary};
      if (waiters.length) waiters.shift()(m); else inbox.push(m);
    });
    ws.next = () => inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r));
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({code, reason: reason.toString()})));
    ws.on('upgrade', (res) => { ws.negotiated = res.headers['sec-websocket-extensions'] || ''; });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function roundtrip(ws, data, binary) {
  ws.send(data, {binary});
  const m = await ws.next();
  check(m.isBinary === binary, 'type differs');
  const want = Buffer.from(data);
  check(Buffer.compare(m.data, want) === 0, 'echo differs (' + m.data.length + ' vs ' + want.length + ')');
}

function payload(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 12)) & 0xff;
  return b;
}

const scenarios = {
  async sizes() {
    const ws = await open('/echo');
    for (const n of [0, 1, 125, 126, 65535, 65536, 1 << 20]) {
      await roundtrip(ws, payload(n), true);
      await roundtrip(ws, 'ü✓'.repeat(n).slice(0, n), false);
    }
    ws.close(1000);
    check((await ws.closed).code === 1000, 'close');
    const big = await open('/plain', {perMessageDeflate: false});
    await roundtrip(big, payload(16 << 20), true);
    big.close(1000);
    await big.closed;
  },
  async fragments() {
    const ws = await open('/echo', {perMessageDeflate: false});
    ws.send('frag', {fin: false});
    ws.ping('mid');
    ws.send('men', {fin: false});
    ws.send('ted ✓', {fin: true});
    const m = await ws.next();
    check(m.data.toString() === 'fragmented ✓' && !m.isBinary, 'fragments: ' + m.data);
    const pong = new Promise((r) => ws.once('pong', (d) => r(d.toString())));
    ws.ping('are you there');
    check((await pong) === 'are you there', 'pong payload');
    ws.close(1000);
    await ws.closed;
  },
  async close() {
    let ws = await open('/echo');
    await roundtrip(ws, 'before close', false);
    ws.close(4001, 'bye now');
    let c = await ws.closed;
    check(c.code === 4001 && c.reason === 'bye now', 'echoed close ' + c.code + ' ' + c.reason);
    ws = await open('/echo');
    ws.send('close-me');
    c = await ws.closed;
    check(c.code === 4000 && c.reason === 'bye', 'server close ' + c.code + ' ' + c.reason);
  },
  async deflate() {
    const ws = await open('/echo', {perMessageDeflate: {clientNoContextTakeover: true,
      serverNoContextTakeover: true, serverMaxWindowBits: 10}});
    check(/^permessage-deflate/.test(ws.negotiated), 'not negotiated: ' + ws.negotiated);
    check(/server_no_context_takeover/.test(ws.negotiated), 'snct: ' + ws.negotiated);
    check(/client_no_context_takeover/.test(ws.negotiated), 'cnct: ' + ws.negotiated);
    check(/server_max_window_bits=10/.test(ws.negotiated), 'smwb: ' + ws.negotiated);
    for (let i = 0; i < 5; i++) {
      await roundtrip(ws, 'compress me please '.repeat(50 + i), false);
      await roundtrip(ws, payload(100000), true);
    }
    ws.close(1000);
    await ws.closed;
    const ctx = await open('/echo', {perMessageDeflate: true});
    check(ctx.negotiated === 'permessage-deflate', 'default offer: ' + ctx.negotiated);
    for (let i = 0; i < 5; i++) await roundtrip(ctx, 'takeover '.repeat(100 + i), false);
    ctx.close(1000);
    await ctx.closed;
    const plain = await open('/plain', {perMessageDeflate: true});
    check(plain.negotiated === '', 'extensions on /plain: ' + plain.negotiated);
    await roundtrip(plain, 'plain '.repeat(100), false);
    plain.close(1000);
    await plain.closed;
  },
  async oversize() {
    const ws = await open('/small');
    ws.send(Buffer.alloc(2048, 120));
    const c = await ws.closed;
    check(c.code === 1009, 'close code ' + c.code);
  },
  async badutf8() {
    const ws = await open('/plain');
    // A Buffer sent with binary: false goes out as text, unchecked: "ok" + 0xC3, then a
    // continuation starting with "(" (0x28), which 0xC3 cannot take. No last fragment.
    ws.send(Buffer.from([0x6f, 0x6b, 0xc3]), {binary: false, fin: false});
    ws.send(Buffer.from('(more'), {binary: false, fin: false});
    const c = await ws.closed;
    check(c.code === 1007, 'close code ' + c.code);
  },
};

if (!scenarios[name]) {
  console.error('unknown scenario ' + name);
  process.exit(2);
}
const timer = setTimeout(() => { console.error(name + ': timed out'); process.exit(1); }, 120000);
scenarios[name]().then(() => {
  clearTimeout(timer);
  console.log('ok');
  process.exit(0);
}, (e) => {
  console.error(name + ': ' + (e && e.stack || e));
  process.exit(1);
});
