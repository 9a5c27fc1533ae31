// memcached-elasticache (the `memcached` module plus ElastiCache auto discovery) given one node.
//
// Usage: node memcached_elasticache_client.js HOST:PORT NKEYS [ENGINE_VERSION]
// Prints the nodes it discovered and what it stored; after a line on stdin (the node list was
// changed and the nodes were sent SIGHUP), waits for its own periodic discovery to follow the
// change, then stores and reads NKEYS more keys. The library picks `config get cluster` or the
// legacy `get AmazonElastiCache:cluster` from the server's `version` reply; ENGINE_VERSION
// (e.g. 1.6.18 or 1.4.5) makes it see that version instead, so both commands are exercised
// whatever our `version` reply is. It prints which command it sent.
'use strict';

const { call, stdinLine, run } = require('./harness');
const Memcached = require('memcached-elasticache');

const [endpoint, nkeysArg, engineVersion] = process.argv.slice(2);
const nkeys = parseInt(nkeysArg, 10);

// The `memcached` module underneath (the same instance memcached-elasticache loads).
const Inner = require('memcached');
if (engineVersion) {
  const [major, minor, bugfix] = engineVersion.split('.');
  Inner.prototype.version = function (cb) {
    cb(undefined, [{ server: this.servers[0], version: engineVersion, major, minor, bugfix }]);
  };
}
// Report the discovery command once.
const command = Inner.prototype.command;
let reported = false;
Inner.prototype.command = function (compile, server) {
  const query = compile();
  if (!reported && /cluster/.test(query.command)) {
    reported = true;
    console.log('command ' + query.command);
  }
  return command.call(this, (...more) => (more.length ? compile(...more) : query), server);
};

const client = new Memcached(endpoint, { autoDiscoverInterval: 200, timeout: 2000, retries: 0 });
client.on('autoDiscoverFailure', (err) => console.error('autoDiscoverFailure', err && err.message));

const nextDiscovery = () =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no discovery within 15 s')), 15000);
    client.once('autoDiscover', (nodes) => {
      clearTimeout(timer);
      resolve(nodes.slice().sort());
    });
  });

async function main() {
  let nodes = await nextDiscovery();
  console.log('nodes ' + nodes.join(' '));
  for (let i = 0; i < nkeys; i++) await call(client.set, `before:${i}`, `v${i}`, 600);
  console.log(`stored ${nkeys} before`);

  const changed = nextDiscovery();
  await stdinLine();
  nodes = await changed;
  console.log('nodes ' + nodes.join(' '));
  for (let i = 0; i < nkeys; i++) await call(client.set, `after:${i}`, `w${i}`, 600);
  console.log(`stored ${nkeys} after`);
  let ok = 0;
  for (let i = 0; i < nkeys; i++) if ((await call(client.get, `after:${i}`)) === `w${i}`) ok++;
  console.log(`read ${ok} after`);
  client.end();
}

run(main);
