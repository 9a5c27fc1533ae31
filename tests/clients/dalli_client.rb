# Dalli 3.0 (Debian's ruby-dalli, binary protocol) driven by tests/clients.rs.
#
#     ruby dalli_client.rb PORT
#
# Prints one line per operation: `what -> result` (results with Ruby's inspect, exceptions as
# `!Class(message)`, large strings as length and digest), so the test compares actual values.
# `wire KEY` reads the item over a separate text connection to show the flags and length that
# Dalli put on the wire. Nothing here depends on time passing.

require 'dalli'
require 'digest'
require 'logger'
require 'socket'

Dalli.logger = Logger.new($stderr)
Dalli.logger.level = Logger::WARN

PORT = Integer(ARGV.fetch(0))
SERVER = "127.0.0.1:#{PORT}"
ITEM_MAX = 1024 * 1024 # memcached's default -I

def show(v)
  case v
  when String
    return "<String len=#{v.bytesize} sha1=#{Digest::SHA1.hexdigest(v)[0, 12]}>" if v.bytesize > 64

    v.inspect
  when Array then "[#{v.map { |x| show(x) }.join(', ')}]"
  when Hash then "{#{v.sort_by { |k, _| k.to_s }.map { |k, x| "#{show(k)}=>#{show(x)}" }.join(', ')}}"
  else v.inspect
  end
end

def step(label)
  result = begin
    show(yield)
  rescue StandardError => e
    "!#{e.class}(#{e.message})"
  end
  puts "#{label} -> #{result}"
  $stdout.flush
end

# The item as the text protocol sees it: [flags, length] or nil.
$wire = TCPSocket.new('127.0.0.1', PORT)
def wire(key)
  $wire.write("get #{key}\r\n")
  line = $wire.gets("\r\n")
  return nil if line == "END\r\n"

  _, _, flags, len = line.split
  $wire.read(Integer(len) + 2)
  raise "no END" unless $wire.gets("\r\n") == "END\r\n"

  [Integer(flags), Integer(len)]
end

opts = { socket_timeout: 5, socket_max_failures: 1, down_retry_delay: 0 }
dc = Dalli::Client.new(SERVER, opts)
# For large values: no compression, and no client-side size check so the server decides.
plain = Dalli::Client.new(SERVER, opts.merge(compress: false, value_max_bytes: 4 * ITEM_MAX))

puts "library dalli #{Dalli::VERSION}"
step('version starts 1.6.18') { dc.version.values.map { |v| v.start_with?('1.6.18') } }
step('alive!') { dc.alive!.class.name }
step('flush') { dc.flush }

# set / get / multi-get, serialization
step("set foo 'bar'") { dc.set('foo', 'bar').is_a?(Integer) }
step('get foo') { dc.get('foo') }
step('wire foo (Marshal)') { wire('foo') }
step("set raw 'bar' raw") { dc.set('raw', 'bar', 0, raw: true).is_a?(Integer) }
step('get raw') { dc.get('raw') }
step('get raw raw') { dc.get('raw', raw: true) }
step('wire raw') { wire('raw') }
step('get missing') { dc.get('missing') }
[['int', 42], ['bignum', 2**70], ['float', 1.5], ['array', [1, 'two', 3.0, nil]],
 ['hash', { 'a' => 1, :b => [2, 3] }], ['symbol', :sym], ['true', true], ['utf8', "h\u00e9llo \u2603"],
 ['range', (1..5)]].each do |name, value|
  step("set #{name}") { dc.set(name, value).is_a?(Integer) }
  step("get #{name}") { dc.get(name) }
  step("wire #{name} flags") { wire(name)[0] }
end
step('set nil') { dc.set('nilval', nil).is_a?(Integer) }
step('get nil') { dc.get('nilval') }
step('fetch nil with block (nil counts as missing)') { dc.fetch('nilval') { 'computed' } }
step('fetch missing with block (adds)') { dc.fetch('fetched', 100) { 'made' } }
step('get fetched') { dc.get('fetched') }
step('fetch present') { dc.fetch('fetched') { 'not used' } }
step('get_multi foo raw missing int') { dc.get_multi('foo', 'raw', 'missing', 'int') }
step('get_multi (none)') { dc.get_multi }
step('get_multi with block') do
  seen = []
  dc.get_multi(%w[foo int missing]) { |k, v| seen << [k, v] }
  seen.sort_by(&:first)
end
step('get_multi_cas foo missing values') { dc.get_multi_cas('foo', 'missing').transform_values(&:first) }
step('get_multi_cas cas is integer') { dc.get_multi_cas('foo').values.map { |_, c| c.is_a?(Integer) && c.positive? } }

# add / replace / append / prepend
step('add foo') { dc.add('foo', 'other') }
step('add newkey') { dc.add('newkey', 'new').is_a?(Integer) }
step('get newkey') { dc.get('newkey') }
step('replace nokey') { dc.replace('nokey', 'x') }
step('replace foo') { dc.replace('foo', 'baz').is_a?(Integer) }
step('get foo') { dc.get('foo') }
step("append raw '!'") { dc.append('raw', '!') }
step("prepend raw '<'") { dc.prepend('raw', '<') }
step('get raw raw') { dc.get('raw', raw: true) }
step('wire raw (flags kept)') { wire('raw') }
step('append nokey') { dc.append('nokey', 'x') }
step('prepend nokey') { dc.prepend('nokey', 'x') }

# CAS
step('get_cas foo') { v, c = dc.get_cas('foo'); [v, c.is_a?(Integer) && c.positive?] }
step('get_cas missing') { dc.get_cas('missing') }
_, cas = dc.get_cas('foo')
step('set_cas foo stale') { dc.set_cas('foo', 'stale', cas + 1000) }
step('replace_cas foo stale') { dc.replace_cas('foo', 'stale', cas + 1000) }
step('set_cas foo right') { (c = dc.set_cas('foo', 'swapped', cas)) && c != cas }
step('set_cas foo same again') { dc.set_cas('foo', 'again', cas) }
step('get foo') { dc.get('foo') }
_, cas = dc.get_cas('foo')
step('replace_cas foo right') { dc.replace_cas('foo', 'replaced', cas).is_a?(Integer) }
step('replace_cas nokey') { dc.replace_cas('nokey', 'x', 1) }
step('set_cas nokey') { dc.set_cas('nokey', 'x', 1) }
step("cas foo block") { dc.cas("foo") { |v| "#{v}+" }.is_a?(Integer) }
step('get foo') { dc.get('foo') }
step('cas missing block') { dc.cas('missing') { |_| 'never' } }
step('cas! missing block (stores)') { dc.cas!('casbang') { |v| "was #{v.inspect}" }.is_a?(Integer) }
step('get casbang') { dc.get('casbang') }
_, cas = dc.get_cas('casbang')
step('delete_cas casbang stale') { dc.delete_cas('casbang', cas + 1000) }
step('delete_cas casbang right') { dc.delete_cas('casbang', cas) }
step('get casbang') { dc.get('casbang') }
_, cas = dc.get_cas('foo')
step('touch keeps cas') { [dc.touch('foo', 100), dc.get_cas('foo')[1] == cas] }

# incr / decr (binary: initial value and TTL for missing keys)
step('incr missing (no default)') { dc.incr('counter') }
step('decr missing (no default)') { dc.decr('counter') }
step('incr missing default 10') { dc.incr('counter', 1, 0, 10) }
step('wire counter') { wire('counter') }
step('incr counter 5') { dc.incr('counter', 5) }
step('decr counter 3') { dc.decr('counter', 3) }
step('decr counter 100 (floors at 0)') { dc.decr('counter', 100) }
step('decr missing default 7') { dc.decr('dcounter', 1, 0, 7) }
step('get counter raw') { dc.get('counter', raw: true) }
step('set counter 2**64-1 raw') { dc.set('counter', (2**64 - 1).to_s, 0, raw: true).is_a?(Integer) }
step('incr counter 1 (wraps)') { dc.incr('counter', 1) }
step("set counter '99' raw") { dc.set('counter', '99', 0, raw: true).is_a?(Integer) }
step('incr counter 1 (grows)') { dc.incr('counter', 1) }
step('decr counter 91') { dc.decr('counter', 91) }
step('get counter raw') { dc.get('counter', raw: true) }
step('incr foo (not a number)') { dc.incr('foo', 1) }
step('incr -1') { dc.incr('counter', -1) }
step('incr by 2**64-1') { dc.incr('counter', 2**64 - 1) }

# delete / touch / gat
step('delete newkey') { dc.delete('newkey') }
step('delete newkey again') { dc.delete('newkey') }
step('get newkey') { dc.get('newkey') }
step('touch foo') { dc.touch('foo', 3600) }
step('touch nokey') { dc.touch('nokey', 3600) }
step('gat foo') { dc.gat('foo', 3600) }
step('gat nokey') { dc.gat('nokey', 3600) }

# multi: quiet (noreply) set/add/replace/delete, pipelined
step('multi block') do
  dc.multi do
    dc.set('q1', 'a')
    dc.add('q1', 'b')  # not stored: quiet error, swallowed by Dalli
    dc.replace('q1', 'c')
    dc.set('q2', 'x')
    dc.delete('q2')
    dc.delete('q3')    # not found: quiet error
    dc.add('q4', 'd')
  end
end
step('get_multi q1 q2 q3 q4') { dc.get_multi('q1', 'q2', 'q3', 'q4') }

# keys
key250 = 'k' * 250
step('set 250-byte key') { dc.set(key250, 'long').is_a?(Integer) }
step('get 250-byte key') { dc.get(key250) }
step('wire 250-byte key') { wire(key250) }
step('set 300-byte key (Dalli hashes it to 250)') { dc.set('x' * 300, 'hashed').is_a?(Integer) }
step('get 300-byte key') { dc.get('x' * 300) }
step('get blank key') { dc.get('') }
key_punct = 'user:42/{profile}|v=1&x=~!@#$%^*()'
step('set punctuation key') { dc.set(key_punct, 'p').is_a?(Integer) }
step('get punctuation key') { dc.get(key_punct) }
step('get_multi 250-byte key + foo') { dc.get_multi(key250, 'foo').keys.map(&:bytesize).sort }

# binary-safe values
tricky = "a\r\nb\r\nEND\r\nVALUE x 0 1\r\n\x00\xff".b + (0..255).map(&:chr).join.b
step('set tricky raw') { dc.set('tricky', tricky, 0, raw: true).is_a?(Integer) }
step('get tricky equal') { dc.get('tricky', raw: true).b == tricky }
step('set tricky marshal') { dc.set('tricky2', tricky).is_a?(Integer) }
step('get tricky2 equal') { dc.get('tricky2') == tricky }
step('set empty raw') { dc.set('empty', '', 0, raw: true).is_a?(Integer) }
step('get empty raw') { dc.get('empty', raw: true) }

# compression (values over 4 KB)
step('set compressible 100 KB') { dc.set('zipped', 'z' * 100_000, 0, raw: true).is_a?(Integer) }
step('wire zipped (compressed flag, small)') { f, l = wire('zipped'); [f, l < 1000] }
step('get zipped') { dc.get('zipped') }
step('set compressible 3 MB (compresses under 1 MB)') { dc.set('zipped3m', 'z' * 3 * ITEM_MAX).is_a?(Integer) }
step('get zipped3m') { dc.get('zipped3m') }

# large values: the largest that fits with flags 0 and a 3-byte key, and one byte more
limit = ITEM_MAX - 56 - (3 + 1) - 2 # memcached 1.6 item header + key + NUL + CRLF
big = Random.new(7).bytes(limit)
step("set big #{limit} bytes") { plain.set('big', big, 0, raw: true).is_a?(Integer) }
step('get big equal') { (v = plain.get('big', raw: true)) && [v.bytesize, v == big] }
step("set big #{limit + 1} bytes (server refuses)") { plain.set('big', big + 'x', 0, raw: true) }
step('get big after refused set (old value dropped)') { plain.get('big') }
step('get foo (connection usable)') { plain.get('foo') }
near = Random.new(8).bytes(ITEM_MAX - 512)
step('set near1m raw') { plain.set('near1m', near, 0, raw: true).is_a?(Integer) }
step('get_multi near1m foo') { plain.get_multi('near1m', 'foo').transform_values { |v| v.bytesize } }
step('append 600 bytes to near1m (too large)') { plain.append('near1m', 'z' * 600) }
step('get near1m intact') { plain.get('near1m', raw: true) == near }
step('set 2 MB incompressible (server refuses)') { plain.set('huge', Random.new(9).bytes(2 * ITEM_MAX), 0, raw: true) }
step('set 2 MB with default client (Dalli refuses)') { dc.set('huge', Random.new(9).bytes(2 * ITEM_MAX)) }
step('get huge') { dc.get('huge') }
step('delete near1m') { dc.delete('near1m') }

# stats / version / flush
s = dc.stats.values.first
%w[cmd_get get_hits get_misses cmd_set cmd_touch touch_hits touch_misses get_flushed delete_hits
   delete_misses incr_hits incr_misses decr_hits decr_misses cas_hits cas_misses cas_badval
   threads limit_maxbytes].each { |k| step("stats #{k}") { s[k] } }
step('stats keys server name') { dc.stats.keys == [SERVER] }
step('stats pid is numeric') { s['pid'].match?(/\A\d+\z/) }
settings = dc.stats(:settings).values.first
%w[maxbytes maxconns item_size_max cas_enabled evictions growth_factor binding_protocol].each do |k|
  step("stats settings #{k}") { settings[k] }
end
step('stats items has curr_items-like keys') { dc.stats(:items).values.first.keys.any? { |k| k.end_with?(':number') } }
step('stats slabs has active_slabs') { dc.stats(:slabs).values.first.key?('active_slabs') }
step('stats bogus type (Dalli sends plain stats)') { dc.stats(:bogus).values.first.key?('pid') }
step('reset_stats') { dc.reset_stats }
step('stats get_hits after reset') { dc.stats.values.first['get_hits'] }
step('flush') { dc.flush }
step('get_multi foo counter after flush') { dc.get_multi('foo', 'counter') }
step('set foo after flush') { dc.set('foo', 'fresh').is_a?(Integer) }
step('get foo') { dc.get('foo') }
step('close') { dc.close }
step('get foo after close (reconnects)') { dc.get('foo') }
plain.close
$wire.close
