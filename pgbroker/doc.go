// Package pgbroker is a wsroom.HistoryBroker and wsroom.PresenceBroker on
// PostgreSQL: a room spans every process whose Broker uses the same
// database and prefix, and its history (wsroom.WithHistory) and presence
// (wsroom.As, Room.Presence) live in the database, with no server other
// than the database the application already runs.
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db:5432/app")
//	broker, err := pgbroker.New(ctx, pool, pgbroker.WithPrefix("chat"))
//	defer broker.Close()
//	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(broker))
//
// # Tables and channels
//
// A Broker keeps three tables, "<prefix>_rooms", "<prefix>_log" and
// "<prefix>_presence" (the prefix is "wsroom" unless WithPrefix changes
// it), in the first schema of
// the connection's search_path. New creates them if they do not exist, in
// a transaction under an advisory lock of the prefix, so processes that
// start together create them once. With WithoutSchemaSetup, New only
// checks that they exist: run the migration beforehand, schema.sql in this
// module for the default prefix, or SchemaSQL(prefix) for another.
//
// A room is known by its key, the first 16 bytes of the SHA-256 of its
// name in hexadecimal, and its channel is "<prefix>_<key>". No room name
// reaches SQL text or an identifier, whatever it holds (quotes,
// semicolons, NUL, invalid UTF-8, 100 KB), and every channel fits
// PostgreSQL's 63-byte identifiers, so none is truncated into another.
// Every value travels as a statement parameter.
//
// # Publishing
//
// Publish is one statement and one transaction: it takes the room's next
// offset from its row in the rooms table (made, with a random epoch, by
// the room's first publish), appends the message to the log under that
// offset, and notifies the room's channel. The room's row stays locked
// until the commit, and PostgreSQL delivers notifications in commit
// order, so a room's messages are notified in the order of their offsets,
// on every listener. Publish waits for the commit, for at most the
// publish timeout (WithPublishTimeout, one second), so one publisher's
// messages arrive in order and a publish PostgreSQL did not take is an
// error. Publishes to one room are serialised by its row: a room takes
// about one publish per commit latency.
//
// A notification's payload must be under 8000 bytes of text. A message of
// up to 7942 bytes of valid UTF-8 without NUL (of ASCII, if the database's
// encoding is not UTF8) travels in its notification; any other, up to
// whatever the endpoint accepts, travels in the log, and the notification
// carries only its position: the listener reads it from the log, in its
// place in the room's order (Stats.FromLog).
//
// # One listening connection
//
// A Broker holds one connection of its own for LISTEN, made with the
// pool's connection config (it does not count against the pool's size),
// for all its rooms: a room's first local member LISTENs its channel, its
// last leaving member UNLISTENs it. Subscribe and cancel never wait for
// the network: they record the change and interrupt the goroutine that
// owns the connection, which applies changes in order and hands
// notifications to the rooms, one at a time, so a room's deliver func is
// never called concurrently. Subscribe's ready is closed once the LISTEN
// has completed and the listener has read the room's latest offset: every
// message committed from then on is delivered. Joining a new room
// therefore costs two round trips to PostgreSQL; a room already listened
// to is ready at once.
//
// # No loss across a listener drop
//
// The listener remembers, for each room it listens to, the offset of the
// last message it handed to the room (or skipped as its own). When its
// connection drops and comes back (a server restart, pg_terminate_backend,
// a network failure noticed by the health check), it LISTENs every room
// again, then reads from the log what each room received after that
// offset, and delivers it in order before any live notification; live
// notifications of messages it has read are dropped (Stats.Duplicates).
// A notification that skips an offset (so the listener missed one) makes
// it read the log the same way. Members see nothing of the drop: no
// message lost, none twice, no reconnect of their WebSockets.
//
// What is lost, and when:
//
//   - Nothing a publish committed, as long as the log still holds it when
//     the listener reads it: the log keeps each room's latest 1000
//     messages and nothing older than 10 minutes (WithHistory). A
//     listener away longer, or behind by more, misses what was trimmed
//     (counted in Stats.Missed; the rest is delivered in order). For
//     records, whose subscriptions must see no gap, the room's history
//     starts a new epoch instead (see History below).
//   - Publishes while the database is unreachable fail: Publish returns
//     the error within the publish timeout, or at once while the Broker
//     knows (see "Failing fast"), wsroom wraps it in wsroom.ErrBroker,
//     local members have the message and members in other processes
//     never get it. Nothing is buffered and replayed. Records fail the
//     same way (Record's error), and nobody gets them. A failed publish
//     or record may have been committed all the same (a timeout after the
//     server took it): then every listener delivers it.
//   - Messages published before a room's first member joined on this
//     process (before ready is closed) are not delivered to it: the log is
//     read back only for rooms the listener was already listening to.
//   - Rooms joined while the listener is disconnected are ready at once,
//     and receive what is published, or recorded, from the moment the
//     listener is back. What was recorded in between is in History.
//   - A database crash loses whatever its commits lose (synchronous_commit
//     and fsync are the server's to set); a failover to a replica loses
//     what had not reached it.
//
// Every Broker trims the log in the background (Trim), every tenth of the
// maximum age, between one second and one minute; a room whose log is
// empty and which has been idle for the maximum age loses its row, and
// its offsets restart in a new epoch, which listeners follow.
//
// # History
//
// A room has two streams of messages, each with its own row in the rooms
// table (epoch, latest offset), its own offsets from 1, its own rows in
// the log and its own channel: what Publish sends (ephemeral messages,
// such as typing indicators), keyed by the room's key, and what Record
// records (its history), keyed by "h" and the room's key, notified on
// "<prefix>-<key>". A publish therefore never appears in History nor
// reaches SubscribeRecorded, a record never reaches Subscribe, and a
// room's recorded offsets have no gaps.
//
// Record is Publish's statement on the room's recorded stream, returning
// the position it gave the message: {Offset: its offset, Epoch: the
// decimal digits of the stream's epoch, drawn at random from 1 to 2^53}.
// Unlike Subscribe, SubscribeRecorded hands a process its own records
// too, in their place, with their positions: every process delivers a
// room's records in the same order, at the same positions. History reads
// the log after a position, in its epoch, up to the stream's latest
// offset; for a room never recorded in it makes the stream's row, so the
// epoch it reports is the one the room's first record gets.
//
// Trimming is the log's (WithHistory): each stream keeps its latest
// DefaultLogLen (1000) messages and none older than DefaultLogAge (10
// minutes), trimmed every minute, so a history holds at least
// wsroom.DefaultHistorySize messages for at least wsroom.DefaultHistoryTTL,
// and a little more between trims. Set the retention to at least what
// the registry's WithHistory asks for: the Broker, not the registry,
// decides what History still has. A position older than what the log
// keeps is not recovered (complete is false).
//
// The epoch changes when the room's history is lost:
//
//   - a stream whose log is empty and which has been idle for the
//     maximum age loses its row, and its next record (or History) makes
//     it again in a new epoch;
//   - a reset (the tables emptied or dropped and made again, a database
//     restored without them) starts every room in a new epoch the same
//     way;
//   - a listener that finds, on catching up, that the log no longer holds
//     records it had not delivered gives the stream a new epoch (it
//     deletes the stream's log in the same transaction; Stats.Gaps)
//     and delivers from its first record: every process's subscriptions
//     follow, so no subscription sees a gap within an epoch, and the
//     positions members hold in the old epoch are no longer recovered.
//
// Schema: the history adds no table or column; records are rows of the
// rooms and log tables under keys no publish uses.
//
// # Presence
//
// A room's presence is its rows in the presence table: one per
// connection present, keyed by the room's key (as above: no room name
// reaches SQL, and a 10 KB name is a 32-byte key) and the entry's ID, with
// the wsroom.PresenceRecord as JSON in a bytea (so a key holding NUL,
// which PostgreSQL's text refuses, travels escaped inside the JSON), its
// lease's end (expires) and when the row may be thrown away (keep). Every
// call is one statement, one round trip, whatever the number of entries
// (arrays with unnest): PutPresence an INSERT ... ON CONFLICT, RefreshPresence
// an UPDATE that returns the IDs it did not find, DropPresence and
// ClaimExpired a DELETE, ReadPresence a SELECT.
//
// Leases run on the database's clock: expires is now() plus the lease, and
// a lease has run out when expires <= now(), whatever the processes'
// clocks say. ClaimExpired is DELETE ... WHERE expires <= now() RETURNING
// the entries: of two claims at once, the second waits for the rows the
// first deletes and skips them, so each expired entry is returned to one
// caller only. A renewal racing a claim either finds the row (and the
// claim, checking the row again once the renewal commits, leaves it) or
// does not (the claim has it, and the renewal reports it missing): never
// both (TestPresenceRenewalAndClaimRacingNeverBothWin).
//
// PutPresence, RefreshPresence and DropPresence are bounded by the publish
// timeout, as Publish is; ReadPresence and ClaimExpired by their ctx and
// the publish timeout. While the Broker knows PostgreSQL is unreachable
// (see "Failing fast"), all five fail at once with ErrUnavailable, without
// waiting for the network; wsroom then keeps each instance's own members,
// and puts every entry back when the server is back. A claim whose answer is lost (a timeout, or the connection cut
// after the commit) has deleted entries that nobody announces gone.
//
// An entry nobody renews or claims (its room's every process died, so no
// survivor sweeps the room) is deleted by the trimming of any Broker (Trim,
// every minute by default) four leases after its last renewal, a minute at
// least: the table holds the present entries and those of the last few
// minutes' dead processes, never more. An entry takes about 275 bytes in
// its row, and about 700 in the table with its half-empty pages
// (fillfactor 50, so that renewals, which change no indexed column, are
// HOT updates) and its primary key; 10,000 members in 100 rooms cost 40
// statements and about 54 KB per second with the default lease (see
// BENCHMARKS.md).
//
// Schema: the presence table is new in this version. A database set up by
// an earlier pgbroker gets it from New, or, with WithoutSchemaSetup, from
// the migration run again (it is idempotent); until then New fails and
// names the missing table.
//
// # Failing fast
//
// A handler that publishes waits for its publish: were every publish to
// wait out the publish timeout through an outage, every sender would read
// its client's next message seconds late. So while the Broker knows
// PostgreSQL is unreachable, Publish, Record, History and the five
// presence calls fail at once (in microseconds) with an error wrapping
// ErrUnavailable, which wraps wsroom.ErrBroker, without trying the
// server; Stats.Unavailable counts them. One breaker knows it, from two
// sources:
//
//   - The listener. When its connection fails (the server stopped or
//     restarted, the network cut, the health check unanswered) it tries
//     to connect again at once, then every 50 to 250 ms; from an attempt
//     the server does not answer (refused, broken, timed out, or "the
//     database system is shutting down") until one it answers. An
//     answer closes the breaker, even a refusal: a listener kept out by
//     the server (its role may not log in, pg_terminate_backend) fails
//     no call. A Broker listens once something subscribed (Subscribe,
//     SubscribeRecorded).
//   - The calls themselves, for a server that hangs (it accepts
//     connections and never answers, which the listener may not notice
//     for two health-check intervals) or a Broker that does not listen.
//     Three calls in a row that went unanswered (the publish timeout, a
//     connection refused or broken, SQLSTATE classes 08 and 57P) open the
//     breaker, if no other call was answered while they waited; that
//     proviso keeps a busy server, or one room's row locked by someone's
//     transaction, from opening it. Any answer, even an SQL error, resets
//     the count. A deadline of the caller's own (History's,
//     ReadPresence's and ClaimExpired's ctx) says nothing of the server
//     and does not count. Once open, the breaker lets one call through
//     every 250 ms (half-open), the others failing at once meanwhile: that
//     call's answer closes the breaker, its failure keeps it open for
//     another 250 ms.
//
// So a stopped server costs nothing once the listener has noticed (a
// fast shutdown ends its connection at once), and a hanging one costs
// three calls the publish timeout each, then one call per 250 ms and the
// timeout; calls work again as soon as the listener is back or a probe is
// answered. The breaker refuses calls only before they reach the server,
// and never touches the log or the listener: what was committed is
// delivered as ever.
//
// # Echoes and foreign messages
//
// A listener receives the notifications of its own process's publishes
// too. Each message, in the log and in its notification, names the Broker
// that published it (16 lowercase hexadecimal digits drawn at random by
// New), and a Broker drops its own publishes (Stats.Echoes), not its
// records. A notification on a room's channel that is not
// "epoch:offset:origin[:message]" is dropped (Stats.Malformed). Whoever
// may write the tables or notify the channels may publish into rooms:
// grant them to the application's role only.
//
// # Versions
//
// The module uses pgx v5.12.0, which needs Go 1.25 and so sets the
// module's go line, go 1.25.0: the one line of the three adapter modules.
// It is tested against PostgreSQL 15. LISTEN and NOTIFY need a session: behind PgBouncer, the
// listening connection must go to a pool in session mode (or straight to
// the server).
package pgbroker
