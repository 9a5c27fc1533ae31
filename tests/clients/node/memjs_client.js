// memjs 1.3 (npm, binary protocol) driven by tests/clients.rs.
//
//     node memjs_client.js PORT [USER:PASSWORD [refused]]
//
// Prints one line per operation: `what -> result` (JSON-ish, Buffers as strings, large values as
// length and digest, errors as `!message`), so the test compares actual values. With
// USER:PASSWORD the client authenticates with SASL PLAIN first (server started with -S); with
// `refused` the credentials are expected to be wrong and only the failure is shown.
// Nothing here depends on time passing.
'use strict';

const crypto = require('crypto');
const memjs = require('memjs');

const port = Number(process.argv[2]);
const auth = process.argv[3] ? `${process.argv[3]}@` : '';
const ITEM_MAX = 1024 * 1024; // memcached's default -I
const logger = { log: (...args) => process.stderr.write(`memjs: ${args.join(' ')}\n`) };
const options = { retries: 1, timeout: 5, conntimeout: 2, logger };

function show(v) {
  if (Buffer.isBuffer(v)) {
    if (v.length > 64) {
      return `<Buffer len=${v.length} sha1=${crypto.createHash('sha1').update(v).digest('hex').slice(0, 12)}>`;
    }
    const text = v.toString('utf8');
    return `b${JSON.stringify(Buffer.from(text, 'utf8').equals(v) ? text : v.toString('latin1'))}`;
  }
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${k}: ${show(v[k])}`).join(', ')}}`;
  }
  return JSON.stringify(v);
}

async function step(label, fn) {
  let result;
  try {
    result = show(await fn());
  } catch (e) {
    result = `!${e instanceof Error ? e.message : String(e)}`;
  }
  process.stdout.write(`${label} -> ${result}\n`);
}

// A serializer as an application would write one: JSON for non-strings, flag 2 on the wire.
const jsonSerializer = {
  serialize(opcode, value, extras) {
    if (typeof value === 'string' || Buffer.isBuffer(value) || extras.length !== 8) {
      return { value, extras };
    }
    const flagged = Buffer.from(extras);
    flagged.writeUInt32BE(2, 0);
    return { value: JSON.stringify(value), extras: flagged };
  },
  deserialize(opcode, value, extras) {
    if (extras && extras.length === 4 && extras.readUInt32BE(0) === 2) {
      return { value: JSON.parse(value.toString()), extras };
    }
    return { value, extras };
  },
};

const flagsOf = (r) => (r.flags ? r.flags.readUInt32BE(0) : null);

function randomBytes(seed, n) {
  // Deterministic bytes: SHA-256 in counter mode.
  const out = Buffer.alloc(n);
  for (let i = 0, off = 0; off < n; i += 1, off += 32) {
    crypto.createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

async function refused() {
  const mc = memjs.Client.create(`${auth}127.0.0.1:${port}`, options);
  await step('set with wrong credentials', () => mc.set('foo', 'bar'));
  await step('get with wrong credentials', () => mc.get('foo'));
  mc.close();
}

async function main() {
  const mc = memjs.Client.create(`${auth}127.0.0.1:${port}`, options);
  const js = memjs.Client.create(`${auth}127.0.0.1:${port}`, { ...options, serializer: jsonSerializer });

  process.stdout.write(`library memjs ${require('memjs/package.json').version}\n`);
  await step('flush', async () => Object.values(await mc.flush()));

  // set / get
  await step("set foo 'bar'", () => mc.set('foo', 'bar'));
  await step('get foo', async () => (await mc.get('foo')).value);
  await step('get foo flags', async () => flagsOf(await mc.get('foo')));
  await step('get missing', () => mc.get('missing'));
  await step('set with expires 3600', () => mc.set('ttl', 'v', { expires: 3600 }));
  await step('get ttl', async () => (await mc.get('ttl')).value);

  // serialization through a custom serializer (flags on the wire)
  for (const [name, value] of [['int', 42], ['float', 1.5], ['array', [1, 'two', null]], ['object', { a: 1, b: [2, 3] }],
    ['bool', true], ['utf8', 'h\u00e9llo \u2603']]) {
    await step(`json set ${name}`, () => js.set(name, value));
    await step(`json get ${name}`, async () => (await js.get(name)).value);
    await step(`raw flags ${name}`, async () => flagsOf(await mc.get(name)));
  }

  // add / replace / delete
  await step('add foo', () => mc.add('foo', 'other'));
  await step('add newkey', () => mc.add('newkey', 'new'));
  await step('get newkey', async () => (await mc.get('newkey')).value);
  await step('replace nokey', () => mc.replace('nokey', 'x'));
  await step('get nokey', () => mc.get('nokey'));
  await step('replace foo', () => mc.replace('foo', 'baz'));
  await step('get foo', async () => (await mc.get('foo')).value);
  await step('delete newkey', () => mc.delete('newkey'));
  await step('delete newkey again', () => mc.delete('newkey'));
  await step('get newkey', () => mc.get('newkey'));

  // append / prepend (memjs 1.3 sends both as opcode 0x0e, append)
  await step("append foo '!'", () => mc.append('foo', '!'));
  await step("prepend foo '<' (sent as append)", () => mc.prepend('foo', '<'));
  await step('get foo', async () => (await mc.get('foo')).value);
  await step('append nokey', () => mc.append('nokey', 'x'));
  await step('prepend nokey', () => mc.prepend('nokey', 'x'));

  // increment / decrement: memjs always sends an initial value and expiry 0, so a missing
  // key is created. Its result decoding is `(high32 << 8) + low32`, so 2**32 reads as 256.
  // (decrement without an options object throws in memjs 1.3.2: pass {}.)
  await step('increment missing (initial 0)', () => mc.increment('counter', 1));
  await step('increment counter 5', () => mc.increment('counter', 5));
  await step('get counter', async () => (await mc.get('counter')).value);
  await step('decrement counter 2', () => mc.decrement('counter', 2, {}));
  await step('decrement counter 100 (floors at 0)', () => mc.decrement('counter', 100, {}));
  await step('increment missing initial 10', () => mc.increment('counter2', 3, { initial: 10 }));
  await step('decrement missing initial 7', () => mc.decrement('counter3', 3, { initial: 7 }));
  await step('get counter2 counter3', async () => [(await mc.get('counter2')).value, (await mc.get('counter3')).value]);
  await step("set counter '4294967295'", () => mc.set('counter', '4294967295'));
  await step('increment counter 1 (past 32 bits)', () => mc.increment('counter', 1));
  await step('get counter', async () => (await mc.get('counter')).value);
  await step("set counter '18446744073709551615'", () => mc.set('counter', '18446744073709551615'));
  await step('increment counter 1 (wraps)', () => mc.increment('counter', 1));
  await step("set counter '99'", () => mc.set('counter', '99'));
  await step('increment counter 1 (grows)', () => mc.increment('counter', 1));
  await step('decrement counter 91', () => mc.decrement('counter', 91, {}));
  await step('get counter', async () => (await mc.get('counter')).value);
  await step('increment foo (not a number)', () => mc.increment('foo', 1));
  await step('get foo (unchanged)', async () => (await mc.get('foo')).value);

  // touch
  await step('touch foo', () => mc.touch('foo', 3600));
  await step('touch nokey', () => mc.touch('nokey', 3600));

  // keys and binary-safe values
  const key250 = 'k'.repeat(250);
  await step('set 250-byte key', () => mc.set(key250, 'long'));
  await step('get 250-byte key', async () => (await mc.get(key250)).value);
  await step('set key with space (binary allows it)', () => mc.set('a b', 'spaced'));
  await step('get key with space', async () => (await mc.get('a b')).value);
  const tricky = Buffer.concat([Buffer.from('a\r\nb\r\nEND\r\nVALUE x 0 1\r\n\x00\xff', 'latin1'),
    Buffer.from([...Array(256).keys()])]);
  await step('set tricky (CRLF, NUL, all bytes)', () => mc.set('tricky', tricky));
  await step('get tricky equal', async () => (await mc.get('tricky')).value.equals(tricky));
  await step('set empty value', () => mc.set('empty', ''));
  await step('get empty value', async () => (await mc.get('empty')).value);

  // large values: the largest that fits with flags 0 and a 3-byte key, and one byte more
  const limit = ITEM_MAX - 56 - (3 + 1) - 2; // memcached 1.6 item header + key + NUL + CRLF
  const big = randomBytes(7, limit);
  await step(`set big ${limit} bytes`, () => mc.set('big', big));
  await step('get big equal', async () => { const v = (await mc.get('big')).value; return [v.length, v.equals(big)]; });
  await step(`set big ${limit + 1} bytes (too large)`, () => mc.set('big', Buffer.concat([big, Buffer.from('x')])));
  await step('get big after refused set (old value dropped)', () => mc.get('big'));
  await step('get foo (connection usable)', async () => (await mc.get('foo')).value);
  const near = randomBytes(8, ITEM_MAX - 512);
  await step('set near1m', () => mc.set('near1m', near));
  await step('add near1m (exists)', () => mc.add('near1m', near));
  await step('append 600 bytes to near1m (too large)', () => mc.append('near1m', 'z'.repeat(600)));
  await step('get near1m intact', async () => (await mc.get('near1m')).value.equals(near));
  await step('set 2 MB (too large)', () => mc.set('huge', randomBytes(9, 2 * ITEM_MAX)));
  await step('get huge', () => mc.get('huge'));
  await step('delete near1m', () => mc.delete('near1m'));

  // stats, pipelining, flush
  const stats = await new Promise((resolve, reject) => {
    mc.stats((err, server, s) => (err ? reject(err) : resolve(s)));
  });
  for (const k of ['cmd_get', 'get_hits', 'get_misses', 'cmd_set', 'cmd_touch', 'touch_hits', 'touch_misses',
    'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses', 'threads',
    'limit_maxbytes']) {
    await step(`stats ${k}`, () => stats[k]);
  }
  await step('stats version starts 1.6.18', () => stats.version.startsWith('1.6.18'));
  await step('stats settings item_size_max', () => new Promise((resolve, reject) => {
    mc.statsWithKey('settings', (err, server, s) => (err ? reject(err) : resolve(s.item_size_max)));
  }));
  await step('resetStats', () => new Promise((resolve) => { mc.resetStats((err, server) => resolve(err ? `!${err.message}` : 'ok')); }));
  await step('stats get_hits after reset', () => new Promise((resolve) => {
    mc.stats((err, server, s) => resolve(s.get_hits));
  }));
  await step('100 pipelined sets then gets', async () => {
    const keys = [...Array(100).keys()].map((i) => `p${i}`);
    const sets = await Promise.all(keys.map((k, i) => mc.set(k, `v${i}`)));
    const gets = await Promise.all(keys.map((k) => mc.get(k)));
    return [sets.every((x) => x === true), gets.every((g, i) => g.value.toString() === `v${i}`)];
  });
  await step('flush', async () => Object.values(await mc.flush()));
  await step('get foo after flush', () => mc.get('foo'));
  await step('set foo after flush', () => mc.set('foo', 'fresh'));
  await step('get foo', async () => (await mc.get('foo')).value);

  // A key over 250 bytes: the server answers Invalid arguments and closes the connection
  // (memjs does not check keys), so this runs last, on its own client.
  const kc = memjs.Client.create(`${auth}127.0.0.1:${port}`, options);
  await step('set 251-byte key (server refuses)', () => kc.set('k'.repeat(251), 'x'));
  kc.close();
  mc.quit();
  js.close();
}

(process.argv[4] === 'refused' ? refused() : main()).then(() => process.exit(0), (e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
