// The chat server wsroom's end-to-end benchmarks run on Bun, beside wsroom
// and raw gws, with the same clients (internal/loadgen): Bun.serve's
// WebSocket server, uWebSockets underneath, with Bun's default options,
// each room a topic (ws.subscribe, server.publish). It serves the chat
// contract described in bench_hubs_test.go:
//
//   GET /ws?room=R&id=I   a member: joined to topic R; with announcing on,
//                         {"type":"joined","room":R,"from":I,...} is
//                         published to R right after the subscription, in
//                         the same turn of the event loop, so the joiner
//                         receives it first. A message it sends is parsed
//                         (JSON.parse), its fields checked by hand (type
//                         "message", text a string of at most 1000 UTF-16
//                         units, seq and sent safe integers), and
//                         published to R; anything else is answered with an
//                         error frame, to the sender only.
//   GET /ctl              the benchmark's control connection, one at a
//                         time. It sends "p <room> <seq> <sent>" to have
//                         the benchmark's message (from -1) built and
//                         published, "gc" for a full garbage collection
//                         (answered "gc-ok"), and "stats" (answered
//                         "stats <members> <lost> <refused>"). The server
//                         sends it "joined" once WSROOM_BUN_CONNS members
//                         have joined.
//
// Every frame is written with JSON.stringify, keys in the order
// encoding/json writes e2eMsg's, so each is the same bytes as wsroom's.
// The server prints "listening <port>" once it is, and exits when its
// standard input closes.

const expected = Number(process.env.WSROOM_BUN_CONNS || 0);
const announce = process.env.WSROOM_BUN_ANNOUNCE === "1";
const benchText = "hello, everyone in the room!";

let ctl = null;
let members = 0; // members connected
let joins = 0; // members that have joined, ever
let lost = 0; // members whose connection ended (the benchmark reads it while they should all be open)
let refused = 0; // messages answered with an error frame

function frame(type, room, from, text, seq, sent) {
  return JSON.stringify({ type, room, from, text, seq, sent });
}

function control(server, ws, line) {
  const f = line.split(" ");
  switch (f[0]) {
    case "p":
      server.publish(f[1], frame("message", f[1], -1, benchText, Number(f[2]), Number(f[3])));
      return;
    case "gc":
      Bun.gc(true);
      ws.send("gc-ok");
      return;
    case "stats":
      ws.send(`stats ${members} ${lost} ${refused}`);
      return;
  }
  ws.send(`unknown command ${JSON.stringify(line)}`);
}

function valid(m) {
  return (
    m !== null &&
    typeof m === "object" &&
    m.type === "message" &&
    typeof m.text === "string" &&
    m.text.length <= 1000 &&
    Number.isSafeInteger(m.seq) &&
    Number.isSafeInteger(m.sent)
  );
}

function refuse(ws, why) {
  refused++;
  ws.send(JSON.stringify({ type: "error", error: why }));
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname === "/ctl") {
      if (server.upgrade(req, { data: { ctl: true } })) return;
      return new Response("upgrade failed", { status: 400 });
    }
    if (url.pathname !== "/ws") return new Response("not found", { status: 404 });
    const room = url.searchParams.get("room");
    const id = Number(url.searchParams.get("id"));
    if (!room || !Number.isSafeInteger(id)) {
      return new Response("want ?room=<name>&id=<int>", { status: 400 });
    }
    if (server.upgrade(req, { data: { ctl: false, room, id } })) return;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    open(ws) {
      if (ws.data.ctl) {
        ctl = ws;
        return;
      }
      const { room, id } = ws.data;
      ws.subscribe(room);
      members++;
      if (announce) server.publish(room, frame("joined", room, id, "", 0, 0));
      if (++joins === expected && ctl !== null) ctl.send("joined");
    },
    message(ws, data) {
      if (ws.data.ctl) {
        control(server, ws, String(data));
        return;
      }
      let m;
      try {
        m = JSON.parse(data);
      } catch (e) {
        refuse(ws, "not JSON");
        return;
      }
      if (!valid(m)) {
        refuse(ws, "not a message");
        return;
      }
      const { room, id } = ws.data;
      server.publish(room, frame(m.type, room, id, m.text, m.seq, m.sent));
    },
    close(ws) {
      if (ws.data.ctl) {
        ctl = null;
        return;
      }
      members--;
      lost++;
    },
  },
});

console.log(`listening ${server.port}`);

(async () => {
  for await (const _ of Bun.stdin.stream());
  process.exit(0);
})();
