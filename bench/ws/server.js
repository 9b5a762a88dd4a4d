// bench/ws/server.js: node's ws server for bench/ws/run (same protocol as ws-server.c:
// echo; a text "bcast<payload>" sends <payload> to every client). No compression.
'use strict';
const {WebSocketServer} = require('ws');
const wss = new WebSocketServer({host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 0});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length >= 5 && data.toString('latin1', 0, 5) === 'bcast') {
      const payload = data.subarray(5);
      for (const c of wss.clients) c.send(payload, {binary: false});
      return;
    }
    ws.send(data, {binary: isBinary});
  });
});
wss.on('listening', () => console.log('listening on port ' + wss.address().port));
