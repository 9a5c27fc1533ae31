// ecad (ElastiCache auto discovery: `config get cluster`, one reply read until `END`) feeding
// the `memcached` module's consistent hashing, given one node.
//
// Usage: node ecad_client.js HOST:PORT NKEYS
// Same transcript as memcached_elasticache_client.js; ecad discovers on demand, so after the
// line on stdin it asks again and builds a client over the new list.
'use strict';

const { call, stdinLine, run } = require('./harness');
const Ecad = require('ecad');
const Memcached = require('memcached');

const [endpoint, nkeysArg] = process.argv.slice(2);
const nkeys = parseInt(nkeysArg, 10);

const discover = () =>
  new Promise((resolve, reject) =>
    new Ecad({ endpoints: endpoint, timeout: 5000 }).fetch((err, hosts) =>
      err ? reject(err) : resolve(hosts.slice().sort())
    )
  );

async function main() {
  let nodes = await discover();
  console.log('nodes ' + nodes.join(' '));
  let client = new Memcached(nodes, { timeout: 2000, retries: 0 });
  for (let i = 0; i < nkeys; i++) await call(client.set.bind(client), `before:${i}`, `v${i}`, 600);
  console.log(`stored ${nkeys} before`);

  await stdinLine();
  client.end();
  nodes = await discover();
  console.log('nodes ' + nodes.join(' '));
  client = new Memcached(nodes, { timeout: 2000, retries: 0 });
  for (let i = 0; i < nkeys; i++) await call(client.set.bind(client), `after:${i}`, `w${i}`, 600);
  console.log(`stored ${nkeys} after`);
  let ok = 0;
  for (let i = 0; i < nkeys; i++) if ((await call(client.get.bind(client), `after:${i}`)) === `w${i}`) ok++;
  console.log(`read ${ok} after`);
  client.end();
}

run(main);
