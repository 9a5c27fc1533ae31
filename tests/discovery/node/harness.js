// What both Node.js discovery scripts share: callback-to-promise, one stdin line, and the
// exit status (0 only when the scenario ran to its end).
'use strict';

const readline = require('readline');

exports.call = (fn, ...args) =>
  new Promise((resolve, reject) => fn(...args, (err, res) => (err ? reject(err) : resolve(res))));

exports.stdinLine = () =>
  new Promise((resolve) => readline.createInterface({ input: process.stdin }).once('line', resolve));

exports.run = (main) =>
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    }
  );
