// Runs @stripe/sync-engine's full backfill against the stripeline emulator.
// The sync engine builds its own Stripe client with no host option, so the
// https module is redirected: every request for api.stripe.com goes to the
// emulator over plain HTTP on 127.0.0.1, and any other HTTPS host is refused
// (nothing leaves the machine).
//
// Env: EMULATOR_PORT, DATABASE_URL, SCHEMA, SPEC (spec3.json path),
// WORKERS (default 50), RATE (req/s, default 25), OBJECTS (comma list, default all).
import http from 'node:http';
import https from 'node:https';

const port = Number(process.env.EMULATOR_PORT || 12111);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const realRequest = https.request;
https.request = function (options, cb) {
  const host = options.hostname || options.host;
  if (process.env.PEER_DEBUG) console.error("https.request", host, options.port, options.path);
  if (host !== 'api.stripe.com') {
    throw new Error(`refusing HTTPS request to ${host}: only the emulator may be contacted`);
  }
  const o = { ...options, protocol: 'http:', hostname: '127.0.0.1', host: '127.0.0.1', port, agent };
  const req = http.request(o, cb);
  // The Stripe client writes the body once the socket emits secureConnect;
  // a plain TCP socket emits connect only.
  req.once('socket', (socket) => { if (socket.connecting) socket.once('connect', () => socket.emit('secureConnect')); });
  if (process.env.PEER_DEBUG) req.on("error", (e) => console.error("request error", e.message));
  return req;
};
void realRequest;

const { StripeSync, runMigrations } = await import('@stripe/sync-engine');

const databaseUrl = process.env.DATABASE_URL;
const schemaName = process.env.SCHEMA || 'stripe_sync_engine';
const logger = { info() {}, warn: (...a) => console.error('warn', ...a), error: (...a) => console.error('error', ...a), debug() {} };

let t0 = Date.now();
await runMigrations({ databaseUrl, schemaName, openApiSpecPath: process.env.SPEC, logger });
const migrateSeconds = (Date.now() - t0) / 1000;

const sync = await StripeSync.create({
  poolConfig: { connectionString: databaseUrl, max: 10 },
  stripeSecretKey: 'sk_test_peerbench',
  schemaName,
  openApiSpecPath: process.env.SPEC,
  logger,
});
const objects = process.env.OBJECTS ? process.env.OBJECTS.split(',') : undefined;
t0 = Date.now();
const res = await sync.fullSync(objects, undefined, Number(process.env.WORKERS || 50), Number(process.env.RATE || 25), false);
const seconds = (Date.now() - t0) / 1000;
console.log(JSON.stringify({ migrate_seconds: migrateSeconds, seconds, total_synced: res.totalSynced, totals: res.totals, skipped: res.skipped, errors: res.errors }));
await sync.close?.();
process.exit(0);
