<?php
// PHP's memcached extension (Debian's php-memcached, on libmemcached) driven by tests/clients.rs.
//
//     php php_memcached_client.php text|binary PORT
//
// Prints one line per operation: `what -> result [libmemcached's result message]`, large
// strings as length and digest, so the test compares actual values. Nothing here depends on
// time passing: expiry uses a TTL in the past.

error_reporting(E_ALL);
[$mode, $port] = [$argv[1], (int)$argv[2]];
$binary = $mode === 'binary';
const ITEM_MAX = 1048576; // memcached's default -I

function show($v): string {
    if (is_string($v)) {
        return strlen($v) > 64 ? sprintf('<string len=%d sha1=%s>', strlen($v), substr(sha1($v), 0, 12)) : var_export($v, true);
    }
    if (is_array($v)) {
        $parts = [];
        foreach ($v as $k => $x) {
            $parts[] = show($k) . '=>' . show($x);
        }
        return '[' . implode(', ', $parts) . ']';
    }
    if (is_object($v)) {
        return get_class($v) . show(get_object_vars($v));
    }
    return var_export($v, true);
}

function client(int $port, array $options = []): Memcached {
    global $binary;
    $m = new Memcached();
    $m->setOptions($options + [
        Memcached::OPT_BINARY_PROTOCOL => $binary,
        Memcached::OPT_CONNECT_TIMEOUT => 2000,
        Memcached::OPT_SEND_TIMEOUT => 5000000,
        Memcached::OPT_RECV_TIMEOUT => 5000000,
        Memcached::OPT_POLL_TIMEOUT => 5000,
        Memcached::OPT_RETRY_TIMEOUT => 0,
    ]);
    $m->addServer('127.0.0.1', $port);
    return $m;
}

// The item as the text protocol sees it: [flags, length], or null. PHP's own flags (type,
// compression) are in the low bits and `get(..., GET_EXTENDED)` hides them, so look here.
$wire = fsockopen('127.0.0.1', $port, $errno, $errstr, 2);
function wire(string $key): ?array {
    global $wire;
    fwrite($wire, "get $key\r\n");
    $line = fgets($wire);
    if ($line === "END\r\n") {
        return null;
    }
    [, , $flags, $len] = explode(' ', trim($line));
    $left = (int)$len + 2;
    while ($left > 0) {
        $left -= strlen(fread($wire, min($left, 65536)));
    }
    if (fgets($wire) !== "END\r\n") {
        throw new Exception('no END');
    }
    return [(int)$flags, (int)$len];
}

$m = client($port);
// Flags on the wire without PHP's type flags in the way: no compression, values as given.
$plain = client($port, [Memcached::OPT_COMPRESSION => false]);

function step(string $label, callable $fn, ?Memcached $who = null): void {
    global $m;
    $who = $who ?? $m;
    try {
        $result = show($fn());
    } catch (Throwable $e) {
        $result = '!' . get_class($e) . '(' . $e->getMessage() . ')';
    }
    echo "$label -> $result [", $who->getResultMessage(), "]\n";
}

echo 'library php-memcached ', phpversion('memcached'), " (", $mode, ")\n";
step('getVersion starts 1.6.18', fn() => array_map(fn($v) => str_starts_with($v, '1.6.18'), array_values($m->getVersion())));
step('getServerList', fn() => array_map(fn($s) => $s['host'], $m->getServerList()));
step('isPristine', fn() => $m->isPristine());
step('flush', fn() => $m->flush());

// set / get / multi-get
step("set foo 'bar'", fn() => $m->set('foo', 'bar'));
step('get foo', fn() => $m->get('foo'));
step('get foo extended', fn() => array_keys($m->get('foo', null, Memcached::GET_EXTENDED)));
step('get foo extended flags', fn() => $m->get('foo', null, Memcached::GET_EXTENDED)['flags']);
step('wire foo', fn() => wire('foo'));
step('set foo with user flags (OPT_USER_FLAGS 7)', function () use ($port) {
    $u = client($port, [Memcached::OPT_USER_FLAGS => 7]);
    return [$u->set('uflags', 'u'), $u->get('uflags', null, Memcached::GET_EXTENDED)['flags']];
});
step('wire uflags (user flags in the high 16 bits)', fn() => wire('uflags'));
step('get missing', fn() => $m->get('missing'));
step('get missing with read-through callback', fn() => $m->get('rt', function ($memc, $key, &$value, &$expiration) {
    $value = "made for $key";
    return true;
}));
step('get rt (stored by the callback)', fn() => $m->get('rt'));
foreach ([['int', 42], ['negint', -7], ['float', 1.5], ['true', true], ['false', false], ['null', null],
          ['array', [1, 'two', 3.0, ['nested' => true]]], ['object', (object)['a' => 1]],
          ['utf8', "h\u{e9}llo \u{2603}"]] as [$name, $value]) {
    step("set $name", fn() => $m->set($name, $value));
    step("get $name", fn() => $m->get($name));
    step("wire $name", fn() => wire($name));
}
step('getMulti foo int missing array', fn() => $m->getMulti(['foo', 'int', 'missing', 'array']));
step('getMulti preserve order', fn() => $m->getMulti(['missing', 'int', 'foo'], Memcached::GET_PRESERVE_ORDER));
step('getMulti (empty list)', fn() => $m->getMulti([]));
step('getMulti extended', fn() => array_map(fn($x) => [$x['value'], is_int($x['cas']) || is_float($x['cas']), $x['flags']],
    $m->getMulti(['foo', 'int'], Memcached::GET_EXTENDED)));
step('setMulti 3', fn() => $m->setMulti(['m1' => 'one', 'm2' => 2, 'm3' => [3]]));
step('getMulti m1 m2 m3 m4', fn() => $m->getMulti(['m1', 'm2', 'm3', 'm4']));
step('getDelayed m1 m2 missing', fn() => $m->getDelayed(['m1', 'm2', 'missing']));
step('fetchAll', function () use ($m) {
    $rows = array_map(fn($r) => [$r['key'], $r['value']], $m->fetchAll());
    sort($rows);
    return $rows;
});
step('getDelayed with callback', function () use ($m) {
    $seen = [];
    $m->getDelayed(['m1', 'foo'], false, function ($memc, $item) use (&$seen) { $seen[] = $item['key'] . '=' . $item['value']; });
    sort($seen);
    return $seen;
});

// add / replace / append / prepend (append/prepend need compression off)
step('add foo', fn() => $m->add('foo', 'other'));
step('add newkey', fn() => $m->add('newkey', 'new'));
step('get newkey', fn() => $m->get('newkey'));
step('replace nokey', fn() => $m->replace('nokey', 'x'));
step('replace foo', fn() => $m->replace('foo', 'baz'));
step('get foo', fn() => $m->get('foo'));
step("append foo '!' with compression on", fn() => $m->append('foo', '!'));
step("append foo '!'", fn() => $plain->append('foo', '!'), $plain);
step("prepend foo '<'", fn() => $plain->prepend('foo', '<'), $plain);
step('get foo', fn() => $plain->get('foo'), $plain);
step('append nokey', fn() => $plain->append('nokey', 'x'), $plain);
step('prepend nokey', fn() => $plain->prepend('nokey', 'x'), $plain);

// CAS
$cas = $m->get('foo', null, Memcached::GET_EXTENDED)['cas'];
step('cas foo stale', fn() => $m->cas($cas + 1000, 'foo', 'stale'));
step('cas foo right', fn() => $m->cas($cas, 'foo', 'swapped'));
step('cas foo same again', fn() => $m->cas($cas, 'foo', 'again'));
step('get foo', fn() => $m->get('foo'));
step('cas missing', fn() => $m->cas(1, 'missing', 'x'));
$cas2 = $m->get('foo', null, Memcached::GET_EXTENDED)['cas'];
step('cas changed after cas', fn() => $cas2 != $cas);
step('touch keeps cas', fn() => [$m->touch('foo', 100), $m->get('foo', null, Memcached::GET_EXTENDED)['cas'] == $cas2]);

// increment / decrement (binary: initial value for missing keys)
step('increment missing', fn() => $m->increment('counter'));
step('decrement missing', fn() => $m->decrement('counter'));
step('increment missing initial 10', fn() => $m->increment('counter2', 1, 10));
step('get counter2', fn() => $m->get('counter2'));
step('set counter 10', fn() => $m->set('counter', 10));
step('increment counter 5', fn() => $m->increment('counter', 5));
step('get counter', fn() => $m->get('counter'));
step('decrement counter 3', fn() => $m->decrement('counter', 3));
step('decrement counter 100 (floors at 0)', fn() => $m->decrement('counter', 100));
step("set counter '18446744073709551615'", fn() => $plain->set('counter', '18446744073709551615'), $plain);
step('increment counter 1 (wraps)', fn() => $m->increment('counter', 1));
step("set counter '99'", fn() => $plain->set('counter', '99'), $plain);
step('increment counter 1 (grows)', fn() => $m->increment('counter', 1));
step('decrement counter 91', fn() => $m->decrement('counter', 91));
step('get counter raw bytes', fn() => $plain->get('counter'), $plain);
step('increment foo (not a number)', fn() => $m->increment('foo', 1));
step('increment counter -1', fn() => $m->increment('counter', -1));

// delete / touch / expiry
step('delete newkey', fn() => $m->delete('newkey'));
step('delete newkey again', fn() => $m->delete('newkey'));
step('get newkey', fn() => $m->get('newkey'));
step('deleteMulti m1 m2 nokey', fn() => $m->deleteMulti(['m1', 'm2', 'nokey']));
step('getMulti m1 m2 m3', fn() => $m->getMulti(['m1', 'm2', 'm3']));
step('touch m3', fn() => $m->touch('m3', 3600));
step('touch nokey', fn() => $m->touch('nokey', 3600));
$past = time() - 3600;
step('set gone with absolute time in the past', fn() => $m->set('gone', 'x', $past));
step('get gone', fn() => $m->get('gone'));
step('touch m3 to a time in the past', fn() => $m->touch('m3', $past));
step('get m3', fn() => $m->get('m3'));

// keys
$key250 = str_repeat('k', 250);
step('set 250-byte key', fn() => $m->set($key250, 'long'));
step('get 250-byte key', fn() => $m->get($key250));
step('set 251-byte key', fn() => $m->set(str_repeat('k', 251), 'x'));
step('set key with space', fn() => $m->set('a b', 'x'));
step('set empty key', fn() => $m->set('', 'x'));
step('checkKey a b', fn() => $m->checkKey('a b'));
$punct = 'user:42/{profile}|v=1&x=~!@#$%^*()';
step('set punctuation key', fn() => $m->set($punct, 'p'));
step('get punctuation key', fn() => $m->get($punct));
$pm = client($port, [Memcached::OPT_PREFIX_KEY => 'app1:']);
step('prefixed set', fn() => $pm->set('user', 'u'), $pm);
step('prefixed get', fn() => $pm->get('user'), $pm);
step('unprefixed get app1:user', fn() => $m->get('app1:user'));
step('setByKey / getByKey', fn() => [$m->setByKey('server-key', 'bykey', 'v'), $m->getByKey('server-key', 'bykey')]);

// binary-safe values, compression
$tricky = "a\r\nb\r\nEND\r\nVALUE x 0 1\r\n\x00\xff" . implode('', array_map('chr', range(0, 255)));
step('set tricky', fn() => $m->set('tricky', $tricky));
step('get tricky equal', fn() => $m->get('tricky') === $tricky);
step('set empty value', fn() => $m->set('empty', ''));
step('get empty value', fn() => $m->get('empty'));
step('set compressible 100 KB', fn() => $m->set('zipped', str_repeat('z', 100000)));
step('wire zipped (compressed flag, small)', fn() => [wire('zipped')[0], wire('zipped')[1] < 10000]);
step('get zipped', fn() => $m->get('zipped'));
step('set compressible 3 MB (compresses under 1 MB)', fn() => $m->set('zipped3m', str_repeat('z', 3 * ITEM_MAX)));
step('get zipped3m', fn() => $m->get('zipped3m'));

// large values: the largest that fits with flags 0 and a 3-byte key, and one byte more
$limit = ITEM_MAX - 56 - (3 + 1) - 2; // memcached 1.6 item header + key + NUL + CRLF
mt_srand(7);
$big = '';
while (strlen($big) < $limit) {
    $big .= pack('N', mt_rand());
}
$big = substr($big, 0, $limit);
step("set big $limit bytes", fn() => $plain->set('big', $big), $plain);
step('get big equal', fn() => $plain->get('big') === $big, $plain);
step('set big ' . ($limit + 1) . ' bytes (too large)', fn() => $plain->set('big', $big . 'x'), $plain);
step('get big after refused set (old value dropped)', fn() => $plain->get('big'), $plain);
step('get foo (connection usable)', fn() => $plain->get('foo'), $plain);
$near = substr($big, 0, ITEM_MAX - 512);
step('set near1m', fn() => $plain->set('near1m', $near), $plain);
step('getMulti near1m foo', fn() => array_map('strlen', $plain->getMulti(['near1m', 'foo'])), $plain);
step('append 600 bytes to near1m (too large)', fn() => $plain->append('near1m', str_repeat('z', 600)), $plain);
step('get near1m intact', fn() => $plain->get('near1m') === $near, $plain);
step('set 2 MB (too large)', fn() => $plain->set('huge', $big . $big), $plain);
step('get huge', fn() => $plain->get('huge'), $plain);
step('delete near1m', fn() => $plain->delete('near1m'), $plain);

// noreply (OPT_NOREPLY) and buffered writes: replies are not read; a later get sees them all
// In binary mode libmemcached sends quiet opcodes, and a quiet command that fails still gets a
// reply (the protocol's rule); libmemcached then mistakes that reply for the answer to a later
// request, with results that depend on how the replies were split into reads. So failing
// noreply commands are sent in text mode only.
$nr = client($port, [Memcached::OPT_NOREPLY => true, Memcached::OPT_COMPRESSION => false]);
step('noreply set nr1', fn() => $nr->set('nr1', 'a'), $nr);
if (!$binary) {
    step('noreply add nr1 (not stored)', fn() => $nr->add('nr1', 'b'), $nr);
}
step('noreply replace nr1', fn() => $nr->replace('nr1', 'c'), $nr);
step('noreply append nr1', fn() => $nr->append('nr1', 'd'), $nr);
step('noreply prepend nr1', fn() => $nr->prepend('nr1', 'e'), $nr);
step('noreply set nr2', fn() => $nr->set('nr2', 'x'), $nr);
step('noreply delete nr2', fn() => $nr->delete('nr2'), $nr);
if (!$binary) {
    step('noreply increment nrc missing', fn() => $nr->increment('nrc', 1), $nr);
}
step('noreply touch nr1', fn() => $nr->touch('nr1', 100), $nr);
step('get nr1 nr2 on the same connection', fn() => $nr->getMulti(['nr1', 'nr2']), $nr);
$bw = client($port, [Memcached::OPT_BUFFER_WRITES => true, Memcached::OPT_COMPRESSION => false]);
step('buffered set bw1', fn() => $bw->set('bw1', 'one'), $bw);
step('buffered set bw2', fn() => $bw->set('bw2', 'two'), $bw);
step('flushBuffers', fn() => $bw->flushBuffers(), $bw);
step('get bw1 bw2', fn() => $bw->getMulti(['bw1', 'bw2']), $bw);

// stats / keys / flush
$stats = array_values($m->getStats())[0];
foreach (['cmd_get', 'get_hits', 'get_misses', 'cmd_set', 'cmd_touch', 'touch_hits', 'touch_misses',
          'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses',
          'cas_hits', 'cas_misses', 'cas_badval', 'threads', 'limit_maxbytes'] as $k) {
    step("stats $k", fn() => $stats[$k]);
}
step('stats version starts 1.6.18', fn() => str_starts_with($stats['version'], '1.6.18'));
step('stats pid is int', fn() => is_int($stats['pid']));
$settings = array_values($m->getStats('settings'))[0];
foreach (['maxbytes', 'maxconns', 'item_size_max', 'cas_enabled', 'evictions', 'growth_factor'] as $k) {
    step("stats settings $k", fn() => $settings[$k]);
}
step('stats items has number', fn() => count(array_filter(array_keys(array_values($m->getStats('items'))[0]),
    fn($k) => str_ends_with($k, ':number'))) > 0);
step('stats bogus', fn() => $m->getStats('bogus'));
// memcached 1.6 dumps only its COLD LRU (items get there on a background thread's schedule),
// so which keys come back is timing-dependent: check only that they are real keys.
step('getAllKeys returns stored keys only', function () use ($m) {
    $keys = $m->getAllKeys();
    return is_array($keys) && !array_diff($keys, ['foo', 'rt', 'int', 'negint', 'float', 'true', 'false', 'null',
        'array', 'object', 'utf8', 'uflags', 'm3', 'counter', str_repeat('k', 250), 'user:42/{profile}|v=1&x=~!@#$%^*()',
        'app1:user', 'bykey', 'tricky', 'empty', 'zipped', 'zipped3m', 'nr1', 'bw1', 'bw2']);
});
step('flush', fn() => $m->flush());
step('getMulti foo counter after flush', fn() => $m->getMulti(['foo', 'counter']));
step('set foo after flush', fn() => $m->set('foo', 'fresh'));
step('get foo', fn() => $m->get('foo'));
step('quit', fn() => $m->quit());
step('get foo after quit (reconnects)', fn() => $m->get('foo'));
